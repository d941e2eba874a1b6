"""Run the GexBERT benchmark on one data folder: exactly `gexbert benchmark` (same parser, same library call).

    OMP_NUM_THREADS=1 python modeling/run_benchmark.py --data_dir ../shared/data/tcga31_mirna_log2rpm \
        --output reports/benchmark/tcga31_mirna_log2rpm --time_budget_minutes 30
    python modeling/run_benchmark.py modeling/configs/tcga31_mirna_log2rpm.json   # the committed report's settings
"""

from __future__ import annotations

import sys

from gexbert_hf.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["benchmark", *sys.argv[1:]]))
