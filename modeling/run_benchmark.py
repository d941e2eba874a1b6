"""Run the GexBERT benchmark on one data folder (the same library call as `gexbert benchmark`).

    OMP_NUM_THREADS=1 python modeling/run_benchmark.py --data_dir ../shared/data/tcga31_mirna_log2rpm \
        --output reports/benchmark/tcga31_mirna_log2rpm --time_budget_minutes 30
    python modeling/run_benchmark.py modeling/configs/tcga31_mirna_log2rpm.json   # the committed report's settings
"""

from __future__ import annotations

import sys

from transformers import HfArgumentParser

from gexbert_hf.benchmarks.benchmark import BenchmarkArguments, run_benchmark


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = HfArgumentParser(BenchmarkArguments)
    if len(argv) == 1 and argv[0].endswith(".json"):
        (arguments,) = parser.parse_json_file(argv[0])
    else:
        (arguments,) = parser.parse_args_into_dataclasses(argv)
    return run_benchmark(arguments)


if __name__ == "__main__":
    raise SystemExit(main())
