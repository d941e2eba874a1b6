#!/usr/bin/env python
"""Pretrain a release model on a GPU in bf16 within a fixed time: one data folder in, a `from_pretrained`-ready
model and its validation scores out.

    python modeling/pretrain_release_gpu.py --data_dir ../shared/data/tcga31_mirna_log2rpm --output runs/tcga31 \
        --minutes 5 --hidden_size 128 --num_hidden_layers 4 --mask_fraction 0.1 --max_mask_fraction 0.9

The data folder is in the shared layout (expression.tsv.gz, clinical.tsv, split.tsv). The tokenizer is fitted on the
train split as `gexbert benchmark` fits it; the model trains on the train split less the validation part the
benchmark carves (seed 0) and sees whole profiles (every measured gene is context), each sample masked at its own
rate when `--max_mask_fraction` is given. The number of steps is set from the step time measured on the machine at
the start, so the cosine schedule ends within `--minutes`; `max_seconds` stops it regardless. The validation part
is then scored at 50/70/90% MCAR (RMSE on the working scale, mean per-gene r), written to `validation.json`.
Without a GPU it runs on the CPU in fp32 (a smoke test). Then ship it with `modeling/package_release.py`.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from gexbert_hf import GexBertForMaskedExpression, GexBertTokenizer
from gexbert_hf.data.samples import EncodedSamples
from gexbert_hf.outputs import claim_output_dir
from gexbert_hf.study.benchmark_data import load_folder
from gexbert_hf.study.release_validation import validation_scores
from gexbert_hf.training.presets import build_config
from gexbert_hf.training.pretrain import PretrainingOptions, pretrain_model

CALIBRATION_STEPS = 30
def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time, calibration included")
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--num_hidden_layers", type=int, default=4)
    parser.add_argument("--num_attention_heads", type=int, default=4)
    parser.add_argument("--num_levels", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--mask_fraction", type=float, default=0.5)
    parser.add_argument("--max_mask_fraction", type=float, default=None)
    parser.add_argument("--validation_rows", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup_ratio", type=float, default=0.05)
    parser.add_argument("--encoder_skips_queries", action="store_true",
                        help="asymmetric MAE layout (fresh model only): the encoder reads measured tokens only, "
                             "MASK tokens join in the decoder")
    parser.add_argument("--init_from", type=Path, default=None,
                        help="continue from this saved model (its tokenizer and config are kept): a second stage")
    return parser.parse_args(argv)


def options(args: argparse.Namespace, steps: int, seconds: float, cuda: bool) -> PretrainingOptions:
    return PretrainingOptions(
        max_steps=steps, batch_size=args.batch_size, learning_rate=args.learning_rate, warmup_ratio=args.warmup_ratio,
        mask_fraction=args.mask_fraction, max_mask_fraction=args.max_mask_fraction,
        mixed_precision="bf16" if cuda else "no", seed=args.seed, logging_steps=max(1, steps // 50),
        eval_steps=max(1, steps // 50) * 10, save_steps=0, progress=False, max_seconds=seconds)


def measured_speed(model, tokenizer, train: EncodedSamples, args, cuda: bool) -> float:
    """Training samples per second on this machine now, from a short run of a copy of the model (its first steps
    pay for kernel selection, so only the second half is timed)."""
    trial = copy.deepcopy(model)
    result = pretrain_model(trial, tokenizer, train, options(args, CALIBRATION_STEPS, 1e9, cuda))
    late = [record for record in result.history if record["step"] > CALIBRATION_STEPS // 2]
    return float(np.mean([record["samples_per_second"] for record in late]))


def initial_model(args: argparse.Namespace, data) -> tuple[GexBertForMaskedExpression, GexBertTokenizer]:
    """A fresh model on a tokenizer fitted as `gexbert benchmark` fits it, or the `--init_from` model and its own
    tokenizer (a second stage of the same run)."""
    if args.init_from is not None:
        return (GexBertForMaskedExpression.from_pretrained(args.init_from),
                GexBertTokenizer.from_pretrained(args.init_from))
    tokenizer = GexBertTokenizer.fit(data.raw_train, normalization=data.normalization, num_levels=args.num_levels)
    config = build_config(tokenizer, "small", hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers,
                          num_attention_heads=args.num_attention_heads, intermediate_size=4 * args.hidden_size,
                          max_genes=data.raw_train.shape[1], value_embedding="level",
                          encoder_skips_queries=args.encoder_skips_queries)
    torch.manual_seed(args.seed)
    return GexBertForMaskedExpression(config), tokenizer


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    deadline = time.perf_counter() + args.minutes * 60
    cuda = torch.cuda.is_available()
    folder = claim_output_dir(args.output, "pretrain-release-gpu", {"--data_dir": args.data_dir}, args.overwrite)
    data = load_folder(args.data_dir, seed=0)
    train_rows, validation = data.raw_train[~data.validation], data.raw_train[data.validation]
    model, tokenizer = initial_model(args, data)
    train = EncodedSamples.from_frame(tokenizer, train_rows)
    n_genes = len(tokenizer.genes)
    model = model.to("cuda" if cuda else "cpu")
    speed = measured_speed(model, tokenizer, train, args, cuda)
    seconds = deadline - time.perf_counter()
    steps = max(10, int(0.9 * seconds * speed / args.batch_size))  # others may start and slow it
    print(f"{args.data_dir.name}: {model.num_parameters():,} parameters, {len(train)} x {n_genes} train profiles, "
          f"{speed:.0f} samples/s -> {steps} steps in {seconds:.0f} s", flush=True)
    with folder.writing():
        result = pretrain_model(model, tokenizer, train, options(args, steps, seconds, cuda),
                                eval_samples=EncodedSamples.from_frame(tokenizer, validation.iloc[:256]),
                                output_dir=args.output)
        model = result.model.float().eval()
        rows = validation.iloc[: args.validation_rows]
        record = {"data": args.data_dir.name, "arguments": {k: str(v) for k, v in vars(args).items()},
                  "device": torch.cuda.get_device_name() if cuda else "cpu", "parameters": model.num_parameters(),
                  "samples_per_second": speed, "steps": result.steps, "planned_steps": steps,
                  "train_seconds": result.seconds, "final_loss": result.final_loss, "eval_loss": result.eval_loss,
                  "validation_rows": len(rows), "validation": validation_scores(model, tokenizer, rows)}
        model.cpu().save_pretrained(args.output / "model")
        tokenizer.save_pretrained(args.output / "model")
        (args.output / "validation.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
