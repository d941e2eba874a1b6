#!/usr/bin/env python
"""Fine-tune a pretrained GexBERT with the Hugging Face Trainer: classification or survival.

    python train/finetune.py classify --model runs/tcga3 --dataset data/tcga3 --output_dir runs/tcga3-type
    python train/finetune.py survival --model runs/tcga3 --dataset data/tcga3 --output_dir runs/tcga3-os \
        --panel_size 16 --panel_seed 0 --query_unseen

A thin face over `gexbert_hf.training.finetune.finetune`, the same call as `gexbert finetune`.
"""

import sys

from gexbert_hf.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["finetune", *sys.argv[1:]]))
