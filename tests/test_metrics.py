"""numpy metrics: per-gene Pearson r (NaN where undefined) and RMSE over a mask of cells."""

from __future__ import annotations

import numpy as np
import pytest

from gexbert_hf.metrics import per_gene_pearson, rmse


def test_per_gene_pearson_is_nan_where_r_is_undefined():
    truth = np.array([[1.0, 5.0, 1.0, 2.0], [2.0, 5.0, 2.0, 4.0], [3.0, 5.0, 3.0, 6.0], [4.0, 5.0, 4.0, 8.0]])
    predicted = np.array([[2.0, 1.0, 7.0, 8.0], [4.0, 2.0, 7.0, 6.0], [6.0, 3.0, 7.0, 4.0], [8.0, 4.0, 7.0, 2.0]])
    r = per_gene_pearson(truth, predicted)
    assert r[0] == pytest.approx(1.0) and r[3] == pytest.approx(-1.0)
    assert np.isnan(r[1]) and np.isnan(r[2])  # a constant truth, a constant prediction


def test_per_gene_pearson_reads_only_the_masked_cells():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(40, 3))
    predicted = truth + rng.normal(scale=0.1, size=truth.shape)
    predicted[:20] = -truth[:20]  # anti-correlated where the mask is off
    mask = np.zeros(truth.shape, dtype=bool)
    mask[20:] = True
    mask[:, 2] = False
    mask[20:22, 2] = True  # two cells: r over two points says nothing
    r = per_gene_pearson(truth, predicted, mask)
    assert (r[:2] > 0.95).all() and np.isnan(r[2])


def test_rmse_over_a_mask():
    truth = np.zeros((2, 2))
    predicted = np.array([[3.0, 100.0], [4.0, -100.0]])
    assert rmse(truth, predicted, np.array([[True, False], [True, False]])) == pytest.approx(np.sqrt(12.5))
    assert rmse(truth, predicted) == pytest.approx(np.sqrt((9 + 16 + 2 * 10000) / 4))
