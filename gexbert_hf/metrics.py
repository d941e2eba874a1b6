"""The numbers a result is judged by, in numpy: one of each, shared by fine-tuning, the demo and the benchmarks.

numpy, not torch: these run in bootstrap loops over small arrays, where torch's per-call overhead dominates, and on
predictions that are numpy arrays already. The model file keeps only the torch Cox loss it trains with.
"""

from __future__ import annotations

import numpy as np

MIN_CELLS_FOR_R = 3  # a correlation over two points is always ±1: no evidence


def concordance_index(risk, survival_time, event, tied_tol: float = 1e-8) -> float:
    """Harrell's C-index with scikit-survival's conventions: a pair is comparable when the earlier time is an event
    (or equal times with the other censored); tied risks count one half. `risk` may be a torch tensor."""
    risk = np.asarray(risk.detach().cpu() if hasattr(risk, "detach") else risk, dtype=np.float64).reshape(-1)
    time = np.asarray(survival_time, dtype=np.float64).reshape(-1)
    event = np.asarray(event).reshape(-1).astype(bool)
    comparable = event[:, None] & ((time[:, None] < time[None, :]) | ((time[:, None] == time[None, :]) & ~event[None, :]))
    if not comparable.any():
        raise ValueError("no comparable pairs: the C-index needs at least one event before another sample's time")
    difference = risk[:, None] - risk[None, :]
    tied = np.abs(difference) <= tied_tol
    score = ((difference > 0) & ~tied) + 0.5 * tied
    return float(score[comparable].sum() / comparable.sum())


def per_gene_pearson(truth: np.ndarray, predicted: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Pearson r of each gene (column) between `truth` and `predicted` over the cells of `mask` (default all).

    NaN where r is undefined: fewer than three cells, or either side without spread. A constant prediction whose
    floating-point spread is not exactly zero (a column mean) gives r near 0, as it should.
    """
    truth, predicted = np.asarray(truth, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    mask = np.ones(truth.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    r = np.full(truth.shape[1], np.nan)
    for gene in range(truth.shape[1]):
        rows = mask[:, gene]
        x, y = truth[rows, gene], predicted[rows, gene]
        if len(x) >= MIN_CELLS_FOR_R and np.std(x) > 0 and np.std(y) > 0:
            r[gene] = np.corrcoef(x, y)[0, 1]
    return r


def rmse(truth: np.ndarray, predicted: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root mean squared error over the cells of `mask` (default all)."""
    error = np.asarray(predicted, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    if mask is not None:
        error = error[np.asarray(mask, dtype=bool)]
    return float(np.sqrt(np.mean(error**2)))


__all__ = ["concordance_index", "per_gene_pearson", "rmse"]
