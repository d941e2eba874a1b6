"""The release checkpoints' validation scores: the same hidden cells for every run, so designs and read-outs compare
(`modeling/pretrain_release_gpu.py` records them, `modeling/decoding_probe.py` reads the same masks)."""

from __future__ import annotations

import numpy as np

from ..inference import impute
from ..metrics import per_gene_pearson, rmse
from ..tokenization_gexbert import GexBertTokenizer

VALIDATION_RATES = (0.5, 0.7, 0.9)


def validation_mask(truth: np.ndarray, rate: float, seed: int = 0) -> np.ndarray:
    """The measured validation values hidden at MCAR `rate`: the same cells for every run (and for
    `modeling/decoding_probe.py`), so runs compare."""
    return (np.random.default_rng([seed, int(rate * 100)]).random(truth.shape) < rate) & ~np.isnan(truth)


def validation_scores(model, tokenizer: GexBertTokenizer, validation, seed: int = 0) -> dict:
    """RMSE on the working scale and mean per-gene r of hidden validation values at each MCAR rate (the same masks
    for every run, so runs compare)."""
    genes = list(validation.columns)
    truth = tokenizer.normalize(validation.to_numpy(), genes)
    scores = {}
    for rate in VALIDATION_RATES:
        hidden = validation_mask(truth, rate, seed)
        filled, _ = impute(model, tokenizer, validation.mask(hidden), batch_size=32)
        predicted = tokenizer.normalize(filled.to_numpy(), genes)
        scores[f"mcar{int(rate * 100)}"] = {"rmse": rmse(truth, predicted, hidden),
                                            "per_gene_r": float(np.nanmean(per_gene_pearson(truth, predicted, hidden)))}
    return scores


__all__ = ["VALIDATION_RATES", "validation_mask", "validation_scores"]
