#!/usr/bin/env python
"""Pretrain GexBERT (masked-expression restoration) on a `gexbert build-dataset` folder.

    python train/pretrain.py --dataset data/tcga3 --output_dir runs/tcga3 --preset small
    accelerate launch --config_file train/configs/multi_gpu.yaml train/pretrain.py --dataset ... --preset base
    python train/pretrain.py run.json            # every argument from one JSON file

A thin face over `gexbert_hf.training.pretrain.pretrain`, the same call as `gexbert pretrain`.
"""

import sys

from gexbert_hf.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["pretrain", *sys.argv[1:]]))
