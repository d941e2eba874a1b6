"""numpy metrics of the library (TEMPORARY stand-in: the library half of issue #12 writes the real module).

`concordance_index` is re-exported from the model file, where it lives today; `per_gene_pearson` is the one per-gene
correlation the study's reports use.
"""

from __future__ import annotations

import numpy as np

from .modeling_gexbert import concordance_index


def per_gene_pearson(truth: np.ndarray, predicted: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Pearson r of each gene (column) between `truth` and `predicted` over the rows `mask` marks (all rows when
    None); NaN where it is undefined: fewer than two rows, or either side constant there."""
    truth, predicted = np.asarray(truth, dtype=float), np.asarray(predicted, dtype=float)
    mask = np.ones(truth.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    r = np.full(truth.shape[1], np.nan)
    for column in range(truth.shape[1]):
        rows = mask[:, column]
        a, b = truth[rows, column], predicted[rows, column]
        if len(a) >= 2 and np.std(a) > 0 and np.std(b) > 0:
            r[column] = np.corrcoef(a, b)[0, 1]
    return r


__all__ = ["concordance_index", "per_gene_pearson"]
