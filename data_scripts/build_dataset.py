"""Build a tokenized DatasetDict from expression + clinical files; the same as `gexbert build-dataset`.

    python data_scripts/build_dataset.py --expression ../shared/data/tcga3_xena_log2tpm/expression.tsv.gz \
        --clinical ../shared/data/tcga3_xena_log2tpm/clinical.tsv --split ../shared/data/tcga3_xena_log2tpm/split.tsv \
        --label_column cancer_type --time_column os_months --event_column os_event --output data/tcga3
    python data_scripts/build_dataset.py args.json
"""

from __future__ import annotations

import sys

from transformers import HfArgumentParser

from gexbert_hf.data.build import BuildDatasetArguments, build_dataset_from_arguments


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = HfArgumentParser(BuildDatasetArguments)
    if len(argv) == 1 and argv[0].endswith(".json"):
        (arguments,) = parser.parse_json_file(argv[0])
    else:
        (arguments,) = parser.parse_args_into_dataclasses(argv)
    return build_dataset_from_arguments(arguments)


if __name__ == "__main__":
    raise SystemExit(main())
