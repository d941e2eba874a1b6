"""Cox partial likelihood (Breslow, Efron) against brute-force formulas; C-index against scikit-survival."""

import math

import numpy as np
import pytest
import torch
from sksurv.metrics import concordance_index_censored

from gexbert_hf import concordance_index, cox_partial_log_likelihood_loss


def brute_force_cox(risk, time, event, ties):
    total, events = 0.0, 0
    for t in sorted({t for t, e in zip(time, event) if e}):
        tied = [i for i in range(len(time)) if time[i] == t and event[i]]
        at_risk = sum(math.exp(risk[j]) for j in range(len(time)) if time[j] >= t)
        tied_hazard = sum(math.exp(risk[i]) for i in tied)
        for rank, i in enumerate(tied):
            fraction = rank / len(tied) if ties == "efron" else 0.0
            total += risk[i] - math.log(at_risk - fraction * tied_hazard)
            events += 1
    return -total / events


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_cox_loss_matches_brute_force_with_ties(ties):
    rng = np.random.default_rng(0)
    time = rng.integers(1, 8, size=30).astype(float)  # few distinct times: many ties
    event = rng.integers(0, 2, size=30)
    risk = rng.normal(size=30)
    loss = cox_partial_log_likelihood_loss(torch.tensor(risk), torch.tensor(time), torch.tensor(event), ties=ties)
    assert loss.item() == pytest.approx(brute_force_cox(risk, time, event, ties), rel=1e-6)


def test_efron_and_breslow_agree_without_ties():
    rng = np.random.default_rng(1)
    time, event, risk = rng.permutation(20).astype(float), rng.integers(0, 2, size=20), rng.normal(size=20)
    args = (torch.tensor(risk), torch.tensor(time), torch.tensor(event))
    assert cox_partial_log_likelihood_loss(*args, ties="efron").item() == pytest.approx(
        cox_partial_log_likelihood_loss(*args, ties="breslow").item(), rel=1e-9)


def test_cox_loss_is_shift_invariant_and_stable_for_large_risks():
    time, event = torch.tensor([1.0, 2, 3, 4]), torch.tensor([1, 1, 0, 1])
    risk = torch.tensor([0.3, -0.2, 0.5, 0.1])
    base = cox_partial_log_likelihood_loss(risk, time, event)
    shifted = cox_partial_log_likelihood_loss(risk + 500.0, time, event)
    assert torch.isfinite(shifted) and shifted.item() == pytest.approx(base.item(), rel=1e-5)


def test_batch_without_events_gives_zero_loss_with_a_gradient_path():
    risk = torch.randn(5, requires_grad=True)
    loss = cox_partial_log_likelihood_loss(risk, torch.arange(5.0), torch.zeros(5))
    assert loss.item() == 0.0
    loss.backward()
    assert risk.grad is not None and torch.all(risk.grad == 0)


def test_cox_loss_gradient_points_towards_concordance():
    risk = torch.zeros(4, requires_grad=True)
    cox_partial_log_likelihood_loss(risk, torch.tensor([1.0, 2, 3, 4]), torch.tensor([1, 1, 1, 1])).backward()
    assert risk.grad[0] < 0 < risk.grad[3]  # descending raises the risk of the earliest death


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_concordance_index_matches_scikit_survival(seed):
    rng = np.random.default_rng(seed)
    time = rng.integers(1, 15, size=60).astype(float)  # tied times
    event = rng.integers(0, 2, size=60).astype(bool)
    risk = np.round(rng.normal(size=60), 1)  # tied risks
    expected = concordance_index_censored(event, time, risk)[0]
    assert concordance_index(risk, time, event) == pytest.approx(expected, abs=1e-12)


def test_concordance_index_refuses_data_without_comparable_pairs():
    with pytest.raises(ValueError, match="no comparable pairs"):
        concordance_index([0.1, 0.2], [1.0, 2.0], [0, 0])
