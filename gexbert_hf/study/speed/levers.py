"""Issue 22's imputation levers, each measured for accuracy and speed on tcga13 against the unmodified model.

`gexbert bench-levers --section S` (`python modeling/bench_speed.py levers --section S`; `levers_run.py`) runs one
short section and merges its rows into
`<output_dir>/<section>.json`, so a shared machine runs minutes at a time; `--section render` writes report.md.

- accuracy: the release benchmark's test rows and MCAR masks (seed 0: `default_rng([0, 3])` over its 400 rows,
  the first `rows` of them), every variant against fp32 with the whole context on the same masks.
- speed: on one masked test split (50% MCAR), KNNImputer (k=10, fitted on train; `knn_rows` samples) and
  SoftImpute (the whole split) timed beside the GexBERT variants (`speed_rows` samples each, twice, in alternating
  order), the 1-minute load average beside every row, and the thread count.
- command: the whole `gexbert impute` (a fresh process: imports, loading, reading, writing) against the same flow
  with the fast levers (`python -m gexbert_hf.study.speed.levers_command`), on the same file.
- onnx: torch fp32 against ONNX Runtime fp32 and int8, timed and scored in one run (`levers_onnx.py`).
- profile: one synthetic 20,000-gene profile (half missing) through an untrained model of tcga13-mrna's shape,
  whole context against bounded passes, each in a fresh process for its peak RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...errors import GexBertError
from ...fast_inference import cpu_autocast, impute_in_passes, quantize_linear_int8
from ...inference import impute
from ..baselines import impute_knn, impute_soft, mcar_mask
from ..imputation_benchmark import imputation_metrics
from ..reports import atomic_write

RELEASE_TEST_ROWS = 400  # the release benchmark's imputation rows: default_rng(1) choice over the test split
SOFT_PENALTY = 0.2  # chosen on validation by the tcga13 benchmark
KNN_K = 10
PASS_KINDS = {"passes": "embedding", "random": "random"}  # variant word -> impute_in_passes grouping


class LeverOutputError(GexBertError, ValueError):
    """A levers file that is not a bench-levers record, or rows an earlier run stored, without --overwrite."""


@dataclass
class LeverArguments:
    """Arguments of `python modeling/bench_speed.py levers`."""

    section: str = field(metadata={"help": "accuracy | speed | command | profile | onnx | render"})
    output_dir: str = field(default="reports/speed_release/levers")
    data_dir: str = field(default="../shared/data/tcga13_cbioportal_zscore")
    model: str = field(default="tcga13-mrna")
    rates: str = field(default="50,70,90", metadata={"help": "MCAR rates in percent (accuracy)"})
    variants: str = field(default="fp32,int8,fp32/passes256,int8/passes256",
                          metadata={"help": "dtype[/passesN|/randomN]: fp32 | bf16 | int8, N measured genes per "
                                             "pass grouped by gene embeddings (passes) or at random"})
    rows: int = field(default=100, metadata={"help": "accuracy: the first rows of the release benchmark's 400"})
    speed_rows: int = field(default=64, metadata={"help": "speed: test samples each GexBERT variant imputes"})
    threads: str = field(default="1", metadata={"help": "speed: torch thread counts to time the variants with"})
    knn_rows: int = field(default=256, metadata={"help": "speed: test samples KNN imputes (SoftImpute: all)"})
    command_rows: int = field(default=128, metadata={"help": "command: samples in the file imputed"})
    profile_genes: int = field(default=20000)
    onnx_parts: str = field(default="speed,accuracy", metadata={
        "help": "onnx: speed and/or accuracy of ORT fp32 / int8 against torch fp32 (levers_onnx.py)"})
    overwrite: bool = field(default=False, metadata={
        "help": "Replace rows an earlier run stored under the same key (model, threads, rate, variant) of a "
                "section's JSON file; without it they are refused before anything is measured. Nothing else in "
                "--output_dir is touched."})
    cache_dir: str = field(default="/tmp/gexbert_levers_cache", metadata={
        "help": "accuracy: where the fp32 whole-context reference fill is kept between runs"})


# ----------------------------------------------------------------------------------------------------------------------
# variants
# ----------------------------------------------------------------------------------------------------------------------
def parse_variant(spec: str) -> tuple[str, int | None, str]:
    """"int8/passes256" -> ("int8", 256, "embedding"); "fp32/random128" -> ("fp32", 128, "random"); "fp32" ->
    ("fp32", None, "embedding"): dtype, measured genes per pass (None: whole context), grouping of the passes."""
    dtype, _, passes = spec.partition("/")
    kind = next((name for name in PASS_KINDS if passes.startswith(name)), None)
    if dtype not in ("fp32", "bf16", "int8") or (passes and (kind is None or not passes[len(kind):].isdigit())):
        raise ValueError(f"variant {spec!r}: expected fp32|bf16|int8 with an optional /passesN or /randomN")
    return dtype, int(passes[len(kind):]) if passes else None, PASS_KINDS.get(kind, "embedding")


def make_imputer(model, tokenizer, spec: str, quantized: dict) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The filled frame of one variant; the int8 copy is made once and kept in `quantized`."""
    dtype, per_pass, grouping = parse_variant(spec)
    if dtype == "int8" and "int8" not in quantized:
        quantized["int8"] = quantize_linear_int8(model)
    chosen = quantized["int8"] if dtype == "int8" else model

    def fill(frame: pd.DataFrame) -> pd.DataFrame:
        with cpu_autocast("bf16" if dtype == "bf16" else "fp32"):
            if per_pass is None:
                return impute(chosen, tokenizer, frame, batch_size=32)[0]
            return impute_in_passes(chosen, tokenizer, frame, measured_per_pass=per_pass, grouping=grouping,
                                    batch_size=32)[0]

    return fill


def load_release_data(args: LeverArguments):
    """(model, tokenizer, train, test, release rows) as the release benchmark read them."""
    from ...loading import load_model_and_tokenizer
    from ..benchmark_data import load_folder

    data = load_folder(args.data_dir)
    model, tokenizer = load_model_and_tokenizer(args.model)
    rows = np.sort(np.random.default_rng(1).choice(len(data.raw_test), size=min(RELEASE_TEST_ROWS,
                                                                                 len(data.raw_test)), replace=False))
    return model.eval(), tokenizer, data.raw_train, data.raw_test, rows


def _stored(path: Path) -> dict:
    """The rows a section's JSON file holds; a file of that name that is no bench-levers record is refused."""
    if not path.exists():
        return {}
    try:
        stored = json.loads(path.read_text())
    except ValueError:
        stored = None
    if not isinstance(stored, dict):
        raise LeverOutputError(f"{path}: not a bench-levers record (a JSON object of runs); choose another --output_dir")
    return stored


def claim_key(path: Path, key: str, replace: bool) -> dict:
    """The section's stored rows, refusing rows under `key` without `replace`: called before a section measures,
    so it refuses at once what `_merge` would refuse after minutes of work."""
    stored = _stored(path)
    if key in stored and not replace:
        raise LeverOutputError(f"{path} already holds {key!r}; pass --overwrite to replace those rows")
    return stored


def _merge(path: Path, key: str, rows: list[dict] | dict, replace: bool) -> None:
    """Store `rows` under `key` of the section's JSON file, keeping what earlier runs stored under other keys; rows
    already stored under `key` are replaced only with `replace` (`--overwrite`)."""
    stored = claim_key(path, key, replace)
    stored[key] = rows
    atomic_write(path, json.dumps(stored, indent=1))


def _context() -> dict:
    return {"load_1min": os.getloadavg()[0], "threads": torch.get_num_threads(), "time": time.strftime("%H:%M:%S")}


# ----------------------------------------------------------------------------------------------------------------------
# sections
# ----------------------------------------------------------------------------------------------------------------------
def accuracy_section(args: LeverArguments) -> None:
    """Each variant's RMSE and per-gene r on the release masks, and its change against fp32 whole context."""
    model, tokenizer, train, test, release_rows = load_release_data(args)
    raw = test.iloc[release_rows]
    truth_all = tokenizer.normalize(raw.to_numpy(), list(raw.columns))
    scale = np.std(tokenizer.normalize(train.to_numpy(), list(train.columns)), axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    quantized: dict = {}
    for rate in [int(r) for r in args.rates.split(",")]:
        mask = mcar_mask(truth_all.shape, rate / 100, np.random.default_rng([0, 3]))[: args.rows]
        truth, frame = truth_all[: args.rows], raw.iloc[: args.rows].mask(mask)
        reference, reference_s = _cached_reference(args, rate, lambda frame=frame: tokenizer.normalize(
            make_imputer(model, tokenizer, "fp32", quantized)(frame).to_numpy(), list(frame.columns)))
        for spec in args.variants.split(","):
            context, begin = _context(), time.perf_counter()
            if spec == "fp32":  # the reference itself, with the time it took when it was computed
                working, seconds = reference, reference_s
            else:
                filled = make_imputer(model, tokenizer, spec, quantized)(frame)
                seconds = time.perf_counter() - begin
                working = tokenizer.normalize(filled.to_numpy(), list(filled.columns))
            metrics = imputation_metrics(truth, working, mask, scale)
            change = np.abs(working - reference)[mask]
            row = {"variant": spec, **metrics, "seconds": seconds, "samples_per_s": len(frame) / seconds,
                   "max_abs_change_vs_fp32": float(change.max()), "mean_abs_change_vs_fp32": float(change.mean()),
                   **context}
            print(f"[accuracy {rate}%] {spec}: RMSE {metrics['rmse']:.4f} per-gene r {metrics['per_gene_r']:.4f} "
                  f"{seconds:.0f}s load {context['load_1min']:.1f}", flush=True)
            _merge_variant(Path(args.output_dir) / "accuracy.json", f"MCAR {rate}%", args.rows, row, args.overwrite)


def _cached_reference(args: LeverArguments, rate: int, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    """fp32 whole-context fill of these rows and masks and its seconds, computed once per (rate, rows) and kept in
    `cache_dir`: later runs add variants without paying for the reference again."""
    path = Path(args.cache_dir) / f"reference_{Path(args.model).name}_{rate}_{args.rows}.npz"
    if path.exists():
        stored = np.load(path)
        return stored["filled"], float(stored["seconds"])
    begin = time.perf_counter()
    reference = compute()
    seconds = time.perf_counter() - begin
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, filled=reference, seconds=seconds)
    return reference, seconds


def _merge_variant(path: Path, key: str, rows: int, row: dict, replace: bool) -> None:
    """Add one variant's row under `key` (replace it with `replace`); rows of other variants stored earlier stay."""
    stored = _stored(path).get(key)
    entry = stored or {"rows": rows, "mask": "release benchmark seed 0", "variants": []}
    if entry["rows"] != rows:
        raise ValueError(f"{path} holds {key} on {entry['rows']} rows; this run used {rows}: use another output_dir")
    if not replace and any(old["variant"] == row["variant"] for old in entry["variants"]):
        raise LeverOutputError(f"{path} already holds {row['variant']} under {key!r}; pass --overwrite to replace it")
    entry["variants"] = [old for old in entry["variants"] if old["variant"] != row["variant"]] + [row]
    _merge(path, key, entry, replace=True)


def speed_section(args: LeverArguments) -> None:
    """KNN (k=10, fitted on train) and SoftImpute on the whole masked test split, beside each GexBERT variant on
    `speed_rows` of it, twice in alternating order, per thread count."""
    claim_key(Path(args.output_dir) / "speed.json", f"{args.model}, threads {args.threads}", args.overwrite)
    model, tokenizer, train, test, _ = load_release_data(args)
    masked = test.mask(mcar_mask(test.shape, 0.5, np.random.default_rng([0, 3])))
    train_work = tokenizer.normalize(train.to_numpy(), list(train.columns))
    incomplete = tokenizer.normalize(masked.to_numpy(), list(masked.columns))
    rows: list[dict] = []

    def timed(name: str, samples: int, run: Callable[[], object], **extra) -> None:
        context, begin = _context(), time.perf_counter()
        run()
        seconds = time.perf_counter() - begin
        rows.append({"method": name, "samples": samples, "seconds": seconds, "samples_per_s": samples / seconds,
                     **context, **extra})
        print(f"[speed] {name} ({context['threads']} threads): {samples / seconds:.1f} samples/s, load "
              f"{context['load_1min']:.1f}", flush=True)

    subset = masked.iloc[: args.speed_rows]
    quantized: dict = {}
    variants = args.variants.split(",")
    imputers = {spec: make_imputer(model, tokenizer, spec, quantized) for spec in variants}
    imputers[variants[0]](subset.iloc[:2])  # warm-up
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        knn_rows = min(args.knn_rows, len(incomplete))  # KNN's cost per sample is set by the train rows it searches
        timed(f"KNNImputer (k={KNN_K}, fitted on train)", knn_rows,
              lambda knn_rows=knn_rows: impute_knn(train_work, incomplete[:knn_rows], k=KNN_K))
        for order in (variants, variants[::-1]):
            for spec in order:
                timed(f"GexBERT {spec}", len(subset), lambda spec=spec: imputers[spec](subset))
        timed(f"SoftImpute (penalty {SOFT_PENALTY})", len(masked),
              lambda: impute_soft(train_work, incomplete, SOFT_PENALTY))
    _merge(Path(args.output_dir) / "speed.json", f"{args.model}, threads {args.threads}",
           {"test_samples": len(masked), "genes": masked.shape[1], "rows": rows, "cpu_count": os.cpu_count()},
           args.overwrite)


def command_section(args: LeverArguments) -> None:
    """The whole `gexbert impute` command against the fast flow, each a fresh process on the same file."""
    from ..benchmark_data import load_folder

    claim_key(Path(args.output_dir) / "command.json", "runs", args.overwrite)
    test = load_folder(args.data_dir).raw_test.iloc[: args.command_rows]
    with tempfile.TemporaryDirectory() as work:  # cohort data never lands in the report folder (the repository)
        rows = _time_commands(args, test, Path(work))
    _merge(Path(args.output_dir) / "command.json", "runs", rows, args.overwrite)


def _time_commands(args: LeverArguments, test: pd.DataFrame, folder: Path) -> list[dict]:
    """Each command once, on a half-masked copy of `test` written into `folder`."""
    source = folder / "masked.tsv"
    test.mask(mcar_mask(test.shape, 0.5, np.random.default_rng(7))).to_csv(source, sep="\t")
    environment = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    gexbert = str(Path(sys.executable).with_name("gexbert"))
    runs = {"gexbert impute (default path)": [gexbert, "impute", "--model", args.model, "--input", str(source)],
            "fast flow: int8": [sys.executable, "-m", "gexbert_hf.study.speed.levers_command", args.model,
                                str(source), "int8"],
            "fast flow: int8/passes256": [sys.executable, "-m", "gexbert_hf.study.speed.levers_command", args.model,
                                          str(source), "int8/passes256"]}
    rows = []
    for name, command in runs.items():
        output = folder / f"{len(rows)}.tsv"
        flags = ["--output", str(output), "--only_input_genes", "--progress", "false"] if "impute" in command else \
            [str(output)]
        context, begin = _context(), time.perf_counter()
        subprocess.run(command + flags, check=True, env=environment, capture_output=True)
        seconds = time.perf_counter() - begin
        rows.append({"method": name, "samples": len(test), "seconds": seconds, "samples_per_s": len(test) / seconds,
                     **context, "threads": int(environment["OMP_NUM_THREADS"])})
        print(f"[command] {name}: {seconds:.1f}s = {len(test) / seconds:.1f} samples/s", flush=True)
    return rows


def profile_section(args: LeverArguments) -> None:
    """One synthetic profile of `profile_genes` genes per variant, each in a fresh process (peak RSS)."""
    claim_key(Path(args.output_dir) / "profile.json", f"{args.profile_genes} genes", args.overwrite)
    rows = []
    for spec in ["fp32", "fp32/passes256", "int8/passes256"]:
        context = _context()
        finished = subprocess.run([sys.executable, "-m", "gexbert_hf.study.speed.levers_command", "--profile",
                                   str(args.profile_genes), spec], check=True, capture_output=True, text=True)
        result = json.loads(finished.stdout.strip().splitlines()[-1])
        rows.append({"variant": spec, **result, **context})
        print(f"[profile] {spec}: {result['seconds']:.2f}s, peak {result['peak_mib']:.0f} MiB", flush=True)
    _merge(Path(args.output_dir) / "profile.json", f"{args.profile_genes} genes", rows, args.overwrite)
