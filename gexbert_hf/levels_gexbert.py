"""The working scale and its levels: the normalisation rule, and the per-gene statistics a tokenizer is fitted to
(quantile level edges, the value each level decodes to, a robust centre and scale).

This file travels with every checkpoint beside the tokenizer as hub remote code, so it imports only numpy and its
siblings `errors_gexbert` and `expression_input_gexbert` (for the shared optional pandas).

Decoding is robust to extreme training values: a predicted level decodes to the mean of the training values in that
level, except the lowest and highest levels (open on one side), which decode to their median; so one cell of 1e300
(or tcga13's z-scores of 3.7e4) can neither move the level edges nor the values any imputation returns.
"""

from __future__ import annotations

import numpy as np

from .errors_gexbert import ExpressionInputError
from .expression_input_gexbert import pd

NORMALIZATIONS = ("log1p", "none")
AUTO_NORMALIZATION = "auto"  # fit-time only: resolved to one of NORMALIZATIONS by `auto_normalization`
LOG1P_MIN_MAXIMUM = 50.0  # raw counts / TPM reach far above this; logged or z-scored values stay below it
_FIT_CHUNK = 512  # genes per chunk when fitting quantiles: bounds the temporary copies nanquantile makes


def auto_normalization(values: pd.DataFrame | np.ndarray) -> str:
    """The one rule behind `normalization='auto'` (Python, CLI, demo, benchmark alike): `log1p` for non-negative,
    raw-looking values (maximum at least 50), `none` for data already logged or z-scored."""
    values = values.to_numpy(dtype=np.float64) if isinstance(values, pd.DataFrame) else np.asarray(values, float)
    return "none" if np.nanmin(values) < 0 or np.nanmax(values) < LOG1P_MIN_MAXIMUM else "log1p"


def check_normalization(normalization: str, fitting: bool = False) -> str:
    """`normalization` if it names a rule (`auto` too when `fitting`: a fitted tokenizer holds a resolved one), else
    a `ValueError` listing the choices: the one check of the name, wherever one is given."""
    allowed = (*NORMALIZATIONS, AUTO_NORMALIZATION) if fitting else NORMALIZATIONS
    if normalization not in allowed:
        raise ValueError(f"normalization must be one of {allowed}, got {normalization!r}")
    return normalization


def resolve_normalization(normalization: str, values: pd.DataFrame | np.ndarray) -> str:
    """`auto` -> the normalisation `values` call for; an explicit choice is checked and kept."""
    if check_normalization(normalization, fitting=True) == AUTO_NORMALIZATION:
        return auto_normalization(values)
    return normalization


def normalize_frame(frame: pd.DataFrame, normalization: str, source: str) -> np.ndarray:
    """A validated matrix -> its values on the working scale (a copy); log1p refuses a negative cell, naming it."""
    values = frame.to_numpy(dtype=np.float64)
    if normalization == "none":
        return values.copy()
    negative = values < 0
    if negative.any():
        rows, cols = np.nonzero(negative)
        raise ExpressionInputError(
            f"{source}: normalization='log1p' needs non-negative values, but gene {frame.columns[cols[0]]!r} is "
            f"{values[rows[0], cols[0]]:g} in sample {frame.index[rows[0]]!r} ({negative.sum()} negative cells); "
            "use normalization='none' for data already logged or z-scored"
        )
    return np.log1p(values)


def fit_level_statistics(values: np.ndarray, num_levels: int) -> dict[str, np.ndarray]:
    """Per-gene `level_edges`, `level_values`, `center` and `scale` of normalised training values (samples x genes,
    NaN = not measured; every gene measured at least once): the arrays a tokenizer is built from."""
    # Even quantiles are the edges between levels; odd ones (bin medians) stand in for empty levels.
    quantile_levels = np.arange(1, 2 * num_levels) / (2 * num_levels)
    n_genes = values.shape[1]
    quantiles = np.empty((n_genes, len(quantile_levels)))
    spread = np.empty((n_genes, 5))  # quartiles and median, then the 1st/99th percentiles for the fallback
    for start in range(0, n_genes, _FIT_CHUNK):
        chunk = values[:, start : start + _FIT_CHUNK]
        quantiles[start : start + _FIT_CHUNK] = np.nanquantile(chunk, quantile_levels, axis=0).T
        spread[start : start + _FIT_CHUNK] = np.nanquantile(chunk, [0.25, 0.5, 0.75, 0.01, 0.99], axis=0).T
    # Median and IQR: a handful of extreme outliers moves neither (a winsorised SD would still move with n=200).
    center = spread[:, 1]
    scale = (spread[:, 2] - spread[:, 0]) / 1.349  # the SD of a normal distribution with that IQR
    fallback = (spread[:, 4] - spread[:, 3]) / 4.653  # genes whose IQR is zero (mostly unexpressed)
    scale = np.where(scale > 1e-8, scale, np.where(fallback > 1e-8, fallback, 1.0))
    edges = quantiles[:, 1::2]
    return {"level_edges": edges, "level_values": _level_values(values, edges, fallback=quantiles[:, 0::2]),
            "center": center, "scale": scale}


def level_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Level of each value. A value tied with edges (a mass of zeros spanning many quantiles) takes the lowest of
    their levels, so the rare values above the tie still land in levels of their own: with 97% zeros every edge is
    0, and counting ties upwards would put zeros and non-zeros into one top level."""
    return np.searchsorted(edges, values, side="left")


def _level_values(values: np.ndarray, edges: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Per gene and level, the value a predicted level decodes to (working scale).

    An interior level is bounded by its two edges, so its mean training value (the squared-error-optimal value; a
    level's median is further off in a skewed gene) cannot leave the bin. The lowest and the highest level are open
    on one side: there a single extreme cell (a z-score of 3.7e4, a typo of 1e300) would drag the mean anywhere, so
    they decode to their median (of two values, the one nearer the interior, so the extreme one never decides).
    Empty levels keep the quantile midpoint."""
    num_levels = edges.shape[1] + 1
    decoded = fallback.copy()
    for gene in range(values.shape[1]):
        column = values[:, gene]
        column = column[~np.isnan(column)]
        levels = level_index(edges[gene], column)
        counts = np.bincount(levels, minlength=num_levels)
        sums = np.bincount(levels, weights=column, minlength=num_levels)
        filled = counts > 0
        filled[[0, -1]] = False
        decoded[gene, filled] = sums[filled] / counts[filled]
        for level, interior_most in ((0, np.max), (num_levels - 1, np.min)):
            if counts[level]:
                members = column[levels == level]
                decoded[gene, level] = np.median(members) if len(members) > 2 else interior_most(members)
    return decoded


__all__ = ["AUTO_NORMALIZATION", "NORMALIZATIONS", "auto_normalization", "check_normalization", "fit_level_statistics", "level_index",
           "normalize_frame", "resolve_normalization"]
