#!/usr/bin/env bash
# The three committed benchmark reports, run in parallel with one thread each (a 2-core CPU), logs beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}"
for folder in tcga31_mirna_log2rpm tcga13_cbioportal_zscore tcga3_xena_log2tpm; do
    mkdir -p "reports/benchmark/$folder"
    nohup "$PYTHON" modeling/run_benchmark.py "modeling/configs/$folder.json" > "reports/benchmark/$folder/run.log" 2>&1 &
done
wait
