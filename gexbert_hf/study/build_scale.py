"""Scale measurement: build a dataset from an n x g synthetic float64 matrix, recording time and peak memory.

It runs in a fresh subprocess so the peak resident set (`ru_maxrss`, plus a sampler of /proc/self/status for the
anonymous part) belongs to this build alone. `python -m gexbert_hf.study.build_scale --samples 11000 --genes 20000`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .rss import lifetime_peak_rss, process_memory


def measure_build_scale(n_samples: int, n_genes: int, workdir: str | Path | None = None, seed: int = 0,
                        timeout: float | None = None) -> dict:
    """Run `_measure` in a subprocess and return its measurements (times in s, memory in bytes)."""
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        result_path = Path(scratch) / "result.json"
        command = [sys.executable, "-m", "gexbert_hf.study.build_scale", "--samples", str(n_samples), "--genes",
                   str(n_genes), "--seed", str(seed), "--scratch", scratch, "--result", str(result_path)]
        subprocess.run(command, check=True, timeout=timeout)
        return json.loads(result_path.read_text())


class _RssSampler(threading.Thread):
    """Peak VmRSS and RssAnon (file-backed pages, e.g. memory-mapped Arrow, are reclaimable; anonymous ones are not)."""

    def __init__(self, interval: float = 0.05):
        super().__init__(daemon=True)
        self.interval, self.peak_rss, self.peak_anon, self._done = interval, 0, 0, threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            rss, anon = _rss()
            self.peak_rss, self.peak_anon = max(self.peak_rss, rss), max(self.peak_anon, anon)
            time.sleep(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _rss() -> tuple[int, int]:
    memory = process_memory()
    return memory["VmRSS"], memory["RssAnon"]


def _measure(n_samples: int, n_genes: int, seed: int, scratch: Path) -> dict:
    import warnings

    from ..data.build import build_dataset
    from ..data.cohorts import make_synthetic_cohort

    baseline_rss, baseline_anon = _rss()
    sampler = _RssSampler()
    sampler.start()
    started = time.perf_counter()
    cohort = make_synthetic_cohort(n_samples=n_samples, n_genes=n_genes, n_types=10, n_modules=50, seed=seed)
    generated = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = build_dataset(cohort, output=scratch / "dataset", seed=seed, verbose=False)
    built = time.perf_counter()
    sampler.stop()
    matrix_bytes = cohort.expression.to_numpy().nbytes
    peak_rss = max(lifetime_peak_rss(), sampler.peak_rss)
    disk = sum(path.stat().st_size for path in (scratch / "dataset").rglob("*") if path.is_file())
    return {
        "samples": n_samples,
        "genes": n_genes,
        "matrix_bytes": matrix_bytes,
        "generate_seconds": round(generated - started, 2),
        "build_seconds": round(built - generated, 2),
        "baseline_rss_bytes": baseline_rss,
        "peak_rss_bytes": peak_rss,
        "peak_anon_bytes": sampler.peak_anon,
        "baseline_anon_bytes": baseline_anon,
        "peak_rss_over_matrix": round(peak_rss / matrix_bytes, 3),
        "peak_increment_over_matrix": round((peak_rss - baseline_rss) / matrix_bytes, 3),
        "dataset_disk_bytes": disk,
        "normalization": summary["normalization"],
        "splits": summary["splits"],
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=11_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    result = _measure(args.samples, args.genes, args.seed, args.scratch)
    args.result.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
