"""`gexbert bench-speed`: what GexBERT costs beside a stock transformers encoder, and how far it scales.

Everything in `reports/speed/` (report.md, results.json, PNG plots) comes from one run on one machine, because
speed numbers from different machines or different loads cannot be compared. The machine may be shared, so the two
models of a comparison are timed step by step in alternation (ABBA order) and the 1-minute load average is recorded
beside every section. Peak memory is measured in a fresh subprocess per point (CPU) or from the CUDA allocator.

Run `gexbert bench-speed` (about 15 minutes on 2 CPU cores) or `gexbert bench-speed --quick` (seconds, tiny sizes,
synthetic data: checks the code, not the machine).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
import transformers

from ...outputs import claim_output_dir
from .measure import (
    attention_dropout_cost,
    compare_training,
    cuda_section,
    full_transcriptome,
    imputation,
    measure_compare_memory,
    scaling_sweep,
)
from .memory import run_memory_point
from .models import NO_ATTENTION, build_model, make_batch, training_flops
from .plan import (
    TARGET_FULL_PROFILE_GIB,
    TARGET_FULL_PROFILE_S,
    TARGET_IMPUTATION_SAMPLES_PER_S,
    TARGET_RATIO,
    SpeedBenchmarkArguments,
    default_imputation_row,
    make_plan,
)
from .report import write_report


def environment() -> dict:
    """The machine and software a run measured, for the report's first lines."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30}


def run_speed_benchmark(args: SpeedBenchmarkArguments) -> dict:
    """Measure everything in one run and write report.md, results.json and the PNG plots to `args.output_dir`.

    An existing report folder is replaced only with `overwrite` (or `render_only`), and only if bench-speed wrote it.
    """
    folder = claim_output_dir(args.output_dir, "bench-speed", {"--data_dir": args.data_dir},
                              args.overwrite or args.render_only, argument="--output_dir")
    if args.render_only:  # wording changes without re-measuring: the numbers stay those of the stored run
        results = json.loads((folder.path / "results.json").read_text())
        results["targets"] = evaluate_targets(results)
        with folder.writing() as output:
            write_report(results, output)
        return results
    with folder.writing() as output:
        return _measure_and_report(args, output)


def _measure_and_report(args: SpeedBenchmarkArguments, output: Path) -> dict:
    if args.quick:  # seconds, not minutes: in-process memory points and a short measuring budget
        args.isolate_memory = False
        args.point_seconds = min(args.point_seconds, 0.2)
    plan = make_plan(args)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[bench-speed {time.perf_counter() - started:6.0f}s load {os.getloadavg()[0]:.2f}] {message}",
              flush=True)

    results: dict = {"quick": args.quick, "arguments": asdict(args), "plan": asdict(plan), "environment": environment(),
                     "load_start": os.getloadavg(), "sections_s": {}}
    sections: list[tuple[str, Callable[[], object]]] = [
        ("comparison", lambda: compare_training(plan, args, torch.device("cpu"), plan.architecture, log)),
        ("attention_dropout", lambda: attention_dropout_cost(plan, args, log)),
        ("comparison_memory", lambda: measure_compare_memory(plan, args, plan.architecture, log)),
        ("scaling", lambda: scaling_sweep(plan, args, log)),
        ("full_transcriptome", lambda: full_transcriptome(plan, args, log)),
        ("imputation", lambda: imputation(plan, args, log)),
        ("cuda", lambda: cuda_section(plan, args, log)),
    ]
    for name, section in sections:
        log(f"--- {name}")
        begin = time.perf_counter()
        results[name] = section()
        results["sections_s"][name] = time.perf_counter() - begin
    results["load_end"] = os.getloadavg()
    results["total_s"] = time.perf_counter() - started
    results["targets"] = evaluate_targets(results)
    write_report(results, output)
    log(f"wrote {output}/report.md, results.json and plots in {results['total_s']:.0f}s")
    return results


def evaluate_targets(results: dict) -> list[dict]:
    """Each target of the issue with its measured value and whether it was met."""
    targets = []
    for row in results["comparison"]:
        targets.append({"target": f"GexBERT/BERT training throughput >= {TARGET_RATIO} at {row['genes']} genes, "
                                  f"{row['dtype']}", "value": row["ratio"], "met": row["ratio"] >= TARGET_RATIO})
    gexbert = default_imputation_row(results["imputation"]["methods"])
    targets.append({"target": f"imputation >= {TARGET_IMPUTATION_SAMPLES_PER_S:.0f} samples/s "
                              f"({gexbert['method']})", "value": gexbert["samples_per_s"],
                    "met": gexbert["samples_per_s"] >= TARGET_IMPUTATION_SAMPLES_PER_S})
    full = results["full_transcriptome"]
    best = min(full["inference"], key=lambda r: r["seconds"])
    targets.append({"target": f"one {full['genes']}-gene profile < {TARGET_FULL_PROFILE_S:.0f} s "
                              f"(best: {best['dtype']})", "value": best["seconds"],
                    "met": best["seconds"] < TARGET_FULL_PROFILE_S})
    peak_gib = max(r["peak_mb"] for r in full["inference"]) / 1024
    targets.append({"target": f"one {full['genes']}-gene profile < {TARGET_FULL_PROFILE_GIB:.0f} GiB peak "
                              "(whole process RSS, worst dtype)", "value": peak_gib,
                    "met": peak_gib < TARGET_FULL_PROFILE_GIB})
    return targets


__all__ = ["NO_ATTENTION", "SpeedBenchmarkArguments", "build_model", "make_batch", "run_memory_point",
           "run_speed_benchmark", "training_flops"]
