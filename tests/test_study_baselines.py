"""The study's one Cox fit, one bootstrap and one per-gene r (gexbert_hf/study/baselines.py and the imputation
benchmark's metric built on them)."""

from __future__ import annotations

import numpy as np
import pytest

from gexbert_hf.study.baselines import (
    COX_PENALTIES,
    bootstrap_c_index,
    bootstrap_interval,
    choose_cox_penalty,
    fit_cox,
    harrell_c,
    mean_gene_r,
)
from gexbert_hf.study.imputation_benchmark import mean_per_gene_r


def _survival(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    time = rng.exponential(np.exp(-1.2 * x[:, 0]))
    event = (rng.random(n) < 0.7).astype(float)
    return x, time, event


def test_bootstrap_interval_is_the_percentile_interval_of_the_defined_resamples():
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1])  # many resamples hold one class only: the metric is undefined there
    scores = np.linspace(0.0, 1.0, 8)

    def separation(y, s):
        if len(np.unique(y)) < 2:
            raise ValueError("one class")
        return float(s[y == 1].mean() - s[y == 0].mean()) if y.sum() != 3 else float("nan")

    low, high = bootstrap_interval(separation, (labels, scores), 300, [4, 97])
    rng, expected = np.random.default_rng([4, 97]), []
    for _ in range(300):  # the same resamples, drawn the same way
        rows = rng.integers(0, 8, 8)
        if len(np.unique(labels[rows])) == 2 and labels[rows].sum() != 3:
            expected.append(separation(labels[rows], scores[rows]))
    assert len(expected) < 300
    assert (low, high) == (np.percentile(expected, 2.5), np.percentile(expected, 97.5))
    assert low < high


def test_bootstrap_interval_without_a_defined_resample_is_undefined():
    def never(values):
        raise ValueError("undefined")

    low, high = bootstrap_interval(never, (np.arange(5.0),), 20, 0)
    assert np.isnan(low) and np.isnan(high)


def test_bootstrap_c_index_averages_seeds_and_leaves_out_resamples_without_events():
    x, time, event = _survival(40)
    event[:30] = 0.0  # few events: some resamples have none
    risks = [x[:, 0], x[:, 0] + 0.5 * x[:, 1]]
    point, low, high = bootstrap_c_index(risks, time, event, n_boot=200, seed=3)
    assert point == pytest.approx(np.mean([harrell_c(risk, time, event) for risk in risks]))
    rng, values = np.random.default_rng(3), []
    for _ in range(200):
        rows = rng.integers(0, 40, 40)
        if event[rows].sum() > 0:
            values.append(np.nanmean([harrell_c(risk[rows], time[rows], event[rows]) for risk in risks]))
    assert (low, high) == tuple(np.nanpercentile(values, [2.5, 97.5]))


def test_choose_cox_penalty_takes_the_best_mean_c_index_over_the_folds():
    x, time, event = _survival()
    folds = [(np.arange(120) % 3 != fold, np.arange(120) % 3 == fold) for fold in range(3)]
    options = {"ties": "efron", "n_iter": 200, "tol": 1e-9}
    chosen = choose_cox_penalty(x, time, event, folds, COX_PENALTIES, **options)
    means = {penalty: np.mean([harrell_c(fit_cox(x[fit], time[fit], event[fit], penalty, **options).predict(x[held]),
                                         time[held], event[held]) for fit, held in folds])
             for penalty in COX_PENALTIES}
    assert chosen == max(means, key=means.get)
    assert fit_cox(x, time, event, chosen, **options).steps[-1][1].ties == "efron"


def test_choose_cox_penalty_falls_back_to_the_largest_when_no_fold_can_be_scored():
    x, time, event = _survival()
    held = np.flatnonzero(event == 0)[:10]  # censored samples only: no comparable pair, no C-index
    fit = np.setdiff1d(np.arange(len(x)), held)
    assert choose_cox_penalty(x, time, event, [(fit, held)], (1.0, 10.0)) == 10.0


def test_mean_gene_r_leaves_out_genes_where_r_is_undefined():
    truth = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0]])  # the second gene is constant
    predicted = np.array([[1.0, 1.0], [2.5, 2.0], [2.5, 3.0], [4.0, 4.0]])
    assert mean_gene_r(truth, predicted) == pytest.approx(np.corrcoef(truth[:, 0], predicted[:, 0])[0, 1])
    assert np.isnan(mean_gene_r(truth[:, 1:], predicted[:, 1:]))


def test_imputation_per_gene_r_scores_a_constant_prediction_zero_and_needs_five_removed_values():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(30, 3))
    removed = np.zeros_like(truth, dtype=bool)
    removed[:10, 0] = removed[:10, 1] = True
    removed[:4, 2] = True  # too few removed values: not scored
    filled = truth + 0.1 * rng.normal(size=truth.shape)
    filled[:, 1] = truth[:10, 1].mean()  # a column mean carries no per-gene information
    expected = np.corrcoef(truth[:10, 0], filled[:10, 0])[0, 1] / 2
    assert mean_per_gene_r(truth, filled, removed) == pytest.approx(expected)


def test_iterative_imputation_of_wide_profiles_runs_in_gene_blocks():
    """Above `block_genes` genes each seeded block is imputed on its own (no genes x genes matrix of the profile)."""
    from gexbert_hf.study.baselines import _iterative_block, impute_iterative

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(40, 5)) @ rng.normal(size=(5, 90)) + rng.normal(scale=0.1, size=(40, 90))
    holes = matrix.copy()
    holes[rng.random(holes.shape) < 0.3] = np.nan
    reference, incomplete = holes[:30], holes[30:]
    filled = impute_iterative(reference, incomplete, max_iter=2, seed=3, block_genes=40)
    assert filled.shape == incomplete.shape and np.isfinite(filled).all()
    blocks = np.array_split(np.random.default_rng(3).permutation(90), 3)
    for block in blocks:  # each block's result is that block imputed alone
        alone = _iterative_block(holes[:, block], max_iter=2, n_nearest=30, seed=3)[30:]
        np.testing.assert_allclose(filled[:, block], alone)
    whole = impute_iterative(reference, incomplete, max_iter=2, seed=3)  # under the cap: one block, as before
    assert not np.allclose(whole, filled)


def test_imputer_tuning_of_wide_profiles_reads_a_seeded_gene_subset(monkeypatch):
    """KNN's k and SoftImpute's penalty are chosen on at most TUNING_MAX_GENES genes (a 20,530-gene profile made
    every grid point a full-width fill); narrower profiles are tuned on all their genes, as before."""
    from gexbert_hf.study import imputation_benchmark

    monkeypatch.setattr(imputation_benchmark, "TUNING_MAX_GENES", 20)
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(60, 4)) @ rng.normal(size=(4, 50)) + 0.1 * rng.normal(size=(60, 50))
    k, penalty, tuning = imputation_benchmark._tune_baselines(matrix[:40], matrix[40:], ("KNN", "SoftImpute"),
                                                              (3, 9), (0.02, 0.2))
    assert tuning["genes"] == 20 and k in (3, 9) and penalty in (0.02, 0.2)
    _, _, narrow = imputation_benchmark._tune_baselines(matrix[:40, :15], matrix[40:, :15], ("KNN",), (3, 9), ())
    assert narrow["genes"] == 15 and set(narrow) == {"genes", "reference_rows", "validation_rows", "KNN", "seconds"}
