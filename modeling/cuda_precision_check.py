#!/usr/bin/env python
"""CUDA check of mixed precision: the same model, data and seed trained for a few steps in fp32, bf16 and fp16
through the package's Accelerate loop; losses and restored values must agree closely and stay finite.

    python modeling/cuda_precision_check.py --data_dir ../shared/data/tcga31_mirna_log2rpm --output check.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from gexbert_hf import GexBertForMaskedExpression, GexBertTokenizer
from gexbert_hf.data.readers import load_cohort
from gexbert_hf.data.samples import EncodedSamples
from gexbert_hf.inference import predict_distribution
from gexbert_hf.training.presets import build_config
from gexbert_hf.training.pretrain import PretrainingOptions, pretrain_model


def run(precision: str, tokenizer: GexBertTokenizer, samples: EncodedSamples, probe, steps: int) -> dict:
    torch.manual_seed(0)
    model = GexBertForMaskedExpression(build_config(tokenizer, "small", max_genes=256)).cuda()
    options = PretrainingOptions(max_steps=steps, batch_size=64, mask_fraction=0.5, mixed_precision=precision,
                                 save_steps=0, logging_steps=10, progress=False)
    result = pretrain_model(model, tokenizer, samples, options)
    restored = predict_distribution(result.model.float(), tokenizer, probe).mean
    return {"losses": [record["loss"] for record in result.history], "restored": restored}


def one_precision(args: argparse.Namespace) -> None:
    """In its own process: Accelerate fixes the precision once per process."""
    expression = load_cohort(args.data_dir).expression.iloc[:2000]
    tokenizer = GexBertTokenizer.fit(expression.iloc[:1800], num_levels=32)
    samples = EncodedSamples.from_frame(tokenizer, expression.iloc[:1800])
    probe = expression.iloc[1800:1900].mask(np.random.default_rng(0).random((100, expression.shape[1])) < 0.5)
    outcome = run(args.one, tokenizer, samples, probe, args.steps)
    np.savez(args.output, losses=outcome["losses"], restored=outcome["restored"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--one", choices=("no", "bf16", "fp16"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_precision(args)
        return 0
    runs = {}
    for precision in ("no", "bf16", "fp16"):
        part = args.output.with_name(f"{args.output.stem}_{precision}.npz")
        subprocess.run([sys.executable, __file__, "--data_dir", str(args.data_dir), "--output", str(part),
                        "--steps", str(args.steps), "--one", precision], check=True)
        with np.load(part) as saved:
            runs[precision] = {"losses": saved["losses"], "restored": saved["restored"]}
    reference = runs["no"]["restored"]
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "steps": args.steps}
    for precision, outcome in runs.items():
        report[precision] = {
            "first_loss": float(outcome["losses"][0]), "final_loss": float(outcome["losses"][-1]),
            "finite": bool(np.isfinite(outcome["losses"]).all() and np.isfinite(outcome["restored"]).all()),
            "restored_rmse_vs_fp32": float(np.sqrt(np.nanmean((outcome["restored"] - reference) ** 2)))}
    args.output.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0 if all(report[p]["finite"] for p in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
