"""The pooled, type-stratified survival protocol (gexbert_hf/study/pooled_survival.py, stratified_cox.py): the
stratified Cox fit agrees with scikit-survival where there is one stratum, ignores per-type baseline hazards, and the
pooled comparison shows a gain exactly when the restored anchors carry the survival signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gexbert_hf.study.baselines import fit_cox, stratified_cox_z, univariate_cox_z
from gexbert_hf.study.benchmark_verdicts import pooled_survival_verdicts
from gexbert_hf.study.pooled_survival import run_pooled_survival
from gexbert_hf.study.stratified_cox import (
    bootstrap_arms,
    breslow_log_likelihood,
    fit_stratified_cox,
    stratified_c_index,
)
from gexbert_hf.study.survival_arms import ARMS, SurvivalCohort

GEXBERT_ARM, TRUE_ARM = ARMS[1], ARMS[2]
ANCHORS = ["G00", "G01", "G02"]


def _times(rng: np.random.Generator, log_hazard: np.ndarray, censoring: float = 0.25):
    """Exponential survival times with this log hazard, some censored at random (more with `censoring`)."""
    death = rng.exponential(np.exp(-log_hazard))
    censor = rng.exponential(np.exp(-log_hazard).mean() / censoring, size=len(death))
    return np.minimum(death, censor), (death <= censor).astype(int)


def _cohort(seed: int = 0, n_per_type: int = 160, n_genes: int = 24) -> SurvivalCohort:
    """Four types with very different baseline hazards and expression levels; within every type the hazard rises
    with G00 and G02 and falls with G01; the other genes are noise, so a panel of them predicts nothing."""
    rng = np.random.default_rng(seed)
    types = np.repeat(["T0", "T1", "T2", "T3"], n_per_type)
    offset = np.repeat([0.0, 2.0, -1.0, 4.0], n_per_type)
    values = rng.normal(size=(len(types), n_genes)) + offset[:, None]
    centred = values - offset[:, None]
    log_hazard = np.repeat([-2.0, 0.0, 1.0, 2.5], n_per_type) + 0.9 * centred[:, 0] - 0.9 * centred[:, 1] \
        + 0.7 * centred[:, 2]
    time, event = _times(rng, log_hazard)
    samples = pd.Index([f"S{i:04d}" for i in range(len(types))], name="sample")
    expression = pd.DataFrame(values, index=samples, columns=[f"G{j:02d}" for j in range(n_genes)])
    clinical = pd.DataFrame({"cancer_type": types, "os_months": time, "os_event": event}, index=samples)
    test = rng.random(len(types)) < 0.35
    return SurvivalCohort(expression[~test], expression[test], expression[~test], expression[test],
                          clinical[~test], clinical[test], "cancer_type", "os_months", "os_event")


def _restorer(cohort: SurvivalCohort, signal: bool):
    """Anchors 'restored' with the truth plus noise (signal), or pure noise of the same spread (none)."""
    truth = pd.concat([cohort.work_train, cohort.work_test])

    def restore(raw: pd.DataFrame, panel: list[str], anchors: list[str]) -> np.ndarray:
        noise = np.random.default_rng(len(raw)).normal(size=(len(raw), len(anchors)))
        return truth.loc[raw.index, anchors].to_numpy() + 0.3 * noise if signal else noise

    return restore


def test_stratified_fit_with_one_stratum_is_scikit_survivals_ridge_cox():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(250, 5))
    time, event = _times(rng, 0.8 * x[:, 0] - 0.5 * x[:, 1])
    time = np.round(time, 1) + 0.1  # ties, handled the Breslow way by both
    for penalty in (0.1, 10.0):
        ours = fit_stratified_cox(x, time, event, np.zeros(len(x)), penalty)
        theirs = fit_cox(x, time, event, penalty)[-1].coef_
        assert np.abs(ours.coef - theirs).max() < 1e-5


def test_breslow_log_likelihood_is_the_model_files_cox_loss():
    from gexbert_hf.modeling_gexbert import cox_partial_log_likelihood_loss

    rng = np.random.default_rng(2)
    eta, time = rng.normal(size=40), np.round(rng.exponential(size=40), 1)
    event = rng.random(40) < 0.7
    order = np.argsort(-time, kind="stable")
    last = np.searchsorted(-time[order], -time[order], side="right") - 1
    ours = breslow_log_likelihood(torch.as_tensor(eta), torch.as_tensor(order), torch.as_tensor(last),
                                  torch.as_tensor(event[order]))
    model_file = cox_partial_log_likelihood_loss(torch.as_tensor(eta), torch.as_tensor(time), torch.as_tensor(event),
                                                 ties="breslow")
    assert float(-ours / event.sum()) == pytest.approx(float(model_file), rel=1e-5)


def test_stratification_absorbs_type_baselines_that_would_bias_a_pooled_fit():
    cohort = _cohort()
    data = cohort.part(["T0", "T1", "T2", "T3"])
    x = data.work_train[["G00", "G01", "G02", "G03"]].to_numpy()
    model = fit_stratified_cox(x, data.t_train, data.e_train, data.types_train, 0.1)
    coef = model.coef * 1.0 / model.scale  # per unit of the raw values
    assert coef[0] == pytest.approx(0.9, abs=0.2) and coef[1] == pytest.approx(-0.9, abs=0.2)
    assert abs(coef[3]) < 0.15
    # unstratified, the type offsets of expression and hazard (both rising with the type) make noise look prognostic
    assert univariate_cox_z(x, data.t_train, data.e_train)[3] > 5
    assert abs(stratified_cox_z(x, data.t_train, data.e_train, data.types_train)[3]) < 3


def test_stratified_c_index_weighs_types_by_their_deaths_and_never_compares_across_types():
    time = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0])
    event = np.array([1, 1, 0, 1, 1, 1, 0])
    strata = np.array(["A"] * 3 + ["B"] * 4)
    risk = np.array([3.0, 2.0, 1.0, -1.0, -2.0, -4.0, -3.0])  # A perfectly ordered, B: 5 of 6 pairs, all below A
    assert stratified_c_index(risk, time, event, strata) == pytest.approx((2 * 1.0 + 3 * 5 / 6) / 5)
    boot = bootstrap_arms({"x": [risk]}, time, event, strata, n_boot=50)
    assert np.all((boot["x"][np.isfinite(boot["x"])] >= 0) & (boot["x"][np.isfinite(boot["x"])] <= 1))


@pytest.mark.parametrize("signal", [True, False])
def test_the_pooled_comparison_shows_a_gain_only_when_the_restored_anchors_carry_signal(signal):
    cohort = _cohort()
    pooled = run_pooled_survival(_restorer(cohort, signal), cohort, panel_sizes=(6,), seeds=(0, 1), n_anchors=3,
                                 n_boot=100, progress=False)
    assert pooled["types"] == ["T0", "T1", "T2", "T3"] and sorted(pooled["anchors"]) == ANCHORS
    entry = pooled["by_panel"]["6"]
    assert entry["seeds"] == [0, 1] and pooled["skipped_by_budget"] == []
    for value in entry["arms"].values():
        low, high = value["ci95"]
        assert low <= value["c_index"] <= high
    assert entry["vs_panel"][TRUE_ARM]["ci95"][0] > 0.05  # the true anchors carry the signal the panel lacks
    gain = entry["vs_panel"][GEXBERT_ARM]
    (verdict,) = pooled_survival_verdicts(pooled)
    if signal:
        assert gain["ci95"][0] > 0 and entry["share_of_gap_closed"][GEXBERT_ARM] > 0.7
        assert verdict["outcome"] == "met"
    else:
        assert gain["ci95"][0] <= 0 <= gain["ci95"][1] and entry["share_of_gap_closed"][GEXBERT_ARM] < 0.3
        assert verdict["outcome"] == "NOT met"


def test_too_few_types_or_deaths_leave_the_pooled_target_undecided():
    cohort = _cohort()
    pooled = run_pooled_survival(_restorer(cohort, True), cohort, panel_sizes=(6,), seeds=(0,), n_anchors=3,
                                 n_boot=30, progress=False)
    pooled["test_events"] = 10
    (verdict,) = pooled_survival_verdicts(pooled)
    assert verdict["outcome"].startswith("not decidable")
