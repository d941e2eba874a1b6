"""Build a tokenized DatasetDict from expression + clinical files: a thin face over `gexbert build-dataset` (the same
parser, JSON-file form and error handling).

    python data_scripts/build_dataset.py --expression ../shared/data/tcga3_xena_log2tpm/expression.tsv.gz \
        --clinical ../shared/data/tcga3_xena_log2tpm/clinical.tsv --split ../shared/data/tcga3_xena_log2tpm/split.tsv \
        --label_column cancer_type --time_column os_months --event_column os_event --output data/tcga3
    python data_scripts/build_dataset.py args.json
"""

import sys

from gexbert_hf.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["build-dataset", *sys.argv[1:]]))
