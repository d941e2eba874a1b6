"""Lever 5 of issue 22, ONNX Runtime: torch fp32, ORT fp32 and ORT int8 timed in one run on the same samples, and
their imputations scored on the release masks against torch fp32.

`python modeling/bench_speed.py levers --section onnx --model tcga13-mrna [--onnx_parts speed,accuracy]` exports
the checkpoint to a temporary folder (`gexbert_hf.onnx_export`: checked against torch before use), then
- variants: torch fp32; ORT fp32 with attention as ORT's fused MultiHeadAttention op; ORT fp32 of standard ONNX
  operators only (portable); ORT dynamic int8 of the fused graph's MatMuls;
- speed: on the 50% MCAR test split the speed section uses, `speed_rows` samples per variant, twice in alternating
  order, per thread count (ORT's session follows torch's thread count), the load average beside every row;
- accuracy: the accuracy section's release rows and masks (seed 0, the first `rows`), RMSE and per-gene r of each
  variant, their change against torch fp32 and the change of each restored value.
Rows go to `<output_dir>/onnx.json` under "<model> speed" and "<model> accuracy".
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...inference import impute
from ...onnx_export import ONNX_INT8_NAME, ONNX_NAME, OnnxMaskedExpression, export_onnx, quantize_onnx_int8
from ..baselines import mcar_mask
from ..imputation_benchmark import imputation_metrics
from .levers import LeverArguments, _context, _merge, _stored, claim_key, load_release_data

# fused: attention as ORT's MultiHeadAttention op; ONNX ops: the portable graph of standard operators
VARIANTS = ("torch fp32", "ORT fp32 fused", "ORT fp32 ONNX ops", "ORT int8 fused")
BATCH_SIZE = 32


def onnx_section(args: LeverArguments) -> None:
    """Export, then time and score torch fp32 against ORT fp32 and ORT int8 in this one process."""
    parts = set(args.onnx_parts.split(","))
    if not parts or not parts <= {"speed", "accuracy"}:
        raise ValueError(f"onnx_parts must name speed and/or accuracy, got {args.onnx_parts!r}")
    output = Path(args.output_dir) / "onnx.json"
    for part in sorted(parts):
        claim_key(output, f"{args.model} {part}", args.overwrite)
    model, tokenizer, train, test, release_rows = load_release_data(args)
    with tempfile.TemporaryDirectory() as work:
        begin = time.perf_counter()
        fp32_path = export_onnx(model, Path(work) / ONNX_NAME)
        export_seconds = time.perf_counter() - begin
        plain_path = export_onnx(model, Path(work) / "plain.onnx", fused_attention=False)
        int8_path = quantize_onnx_int8(fp32_path, Path(work) / ONNX_INT8_NAME)
        models = {"torch fp32": model, **{name: OnnxMaskedExpression(path, model.config, args.model) for name, path
                                          in zip(VARIANTS[1:], (fp32_path, plain_path, int8_path))}}
        files = {"export_seconds": export_seconds, "onnx_mib": fp32_path.stat().st_size / 2**20,
                 "onnx_int8_mib": int8_path.stat().st_size / 2**20}
        if "speed" in parts:
            masked = test.mask(mcar_mask(test.shape, 0.5, np.random.default_rng([0, 3])))
            rows = _time_variants(models, tokenizer, masked.iloc[: args.speed_rows], args.threads)
            _merge(output, f"{args.model} speed", {**files, "genes": masked.shape[1], "rows": rows}, args.overwrite)
        if "accuracy" in parts:
            scenarios = _score_variants(models, tokenizer, train, test.iloc[release_rows], args)
            _merge(output, f"{args.model} accuracy", {**files, "rows": args.rows,
                                                      "scenarios": {**_stored_scenarios(output, args), **scenarios}},
                   args.overwrite)


def _stored_scenarios(output: Path, args: LeverArguments) -> dict:
    """The MCAR rates an earlier run scored on the same rows, kept beside this run's (one rate per run fits a
    few minutes on tcga13)."""
    stored = _stored(output).get(f"{args.model} accuracy")
    return stored["scenarios"] if stored and stored["rows"] == args.rows else {}


def _time_variants(models: dict, tokenizer, subset: pd.DataFrame, threads: str) -> list[dict]:
    """Each variant on `subset`, twice in alternating order, per thread count; ORT sessions are built and their
    memory arenas grown in a one-batch warm-up (a thread change rebuilds them), outside the timing."""
    rows = []
    for count in [int(t) for t in threads.split(",")]:
        torch.set_num_threads(count)
        for model in models.values():  # one full batch: ORT's memory arena grows to its size on the first
            impute(model, tokenizer, subset.iloc[:BATCH_SIZE], batch_size=BATCH_SIZE)
        for order in (VARIANTS, VARIANTS[::-1]):
            for name in order:
                context, begin = _context(), time.perf_counter()
                impute(models[name], tokenizer, subset, batch_size=BATCH_SIZE)
                seconds = time.perf_counter() - begin
                rows.append({"method": name, "samples": len(subset), "seconds": seconds,
                             "samples_per_s": len(subset) / seconds, **context})
                print(f"[onnx speed] {name} ({count} threads): {len(subset) / seconds:.2f} samples/s, load "
                      f"{context['load_1min']:.1f}", flush=True)
    return rows


def _score_variants(models: dict, tokenizer, train: pd.DataFrame, raw: pd.DataFrame,
                    args: LeverArguments) -> dict[str, list[dict]]:
    """Per MCAR rate: RMSE and per-gene r of every variant on the release masks, and its change against torch."""
    truth_all = tokenizer.normalize(raw.to_numpy(), list(raw.columns))
    scale = np.std(tokenizer.normalize(train.to_numpy(), list(train.columns)), axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    scenarios = {}
    for rate in [int(r) for r in args.rates.split(",")]:
        mask = mcar_mask(truth_all.shape, rate / 100, np.random.default_rng([0, 3]))[: args.rows]
        truth, frame = truth_all[: args.rows], raw.iloc[: args.rows].mask(mask)
        rows, reference = [], None
        for name in VARIANTS:
            context, begin = _context(), time.perf_counter()
            filled = impute(models[name], tokenizer, frame, batch_size=BATCH_SIZE)[0]
            seconds = time.perf_counter() - begin
            working = tokenizer.normalize(filled.to_numpy(), list(filled.columns))
            reference = working if reference is None else reference
            change = np.abs(working - reference)[mask]
            rows.append({"variant": name, **imputation_metrics(truth, working, mask, scale), "seconds": seconds,
                         "samples_per_s": len(frame) / seconds, "max_abs_change_vs_torch": float(change.max()),
                         "mean_abs_change_vs_torch": float(change.mean()), **context})
            print(f"[onnx accuracy {rate}%] {name}: RMSE {rows[-1]['rmse']:.4f} per-gene r "
                  f"{rows[-1]['per_gene_r']:.4f}, max change {change.max():.2e}", flush=True)
        scenarios[f"MCAR {rate}%"] = rows
    return scenarios
