"""A Cox model stratified by cancer type, its C-index and its bootstrap: what pooling types needs.

scikit-survival's CoxPHSurvivalAnalysis has no strata, and one model per type wastes the few deaths each type has.
Stratified: one baseline hazard per type, one coefficient vector shared by all, fitted on the sum of the types'
Breslow partial log-likelihoods with the same ridge penalty scale as `baselines.fit_cox` (alpha / 2 * |beta|^2 on
standardised inputs), by float64 L-BFGS (the model file's `cox_partial_log_likelihood_loss` runs in float32, too
coarse to converge a fit on: its loss stops changing before the gradient vanishes). Risks are comparable
only within a type, so the C-index is Harrell's within each type, averaged with weights = the type's events, and the
bootstrap resamples within each type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .baselines import COX_PENALTIES, harrell_c


@dataclass
class StratifiedCox:
    """A fitted stratified Cox model: the input standardisation and the shared coefficients."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    penalty: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Risk scores (log relative hazard), comparable within a stratum."""
        return ((np.asarray(x, dtype=float) - self.mean) / self.scale) @ self.coef


def breslow_log_likelihood(eta: torch.Tensor, order: torch.Tensor, last: torch.Tensor, events: torch.Tensor
                           ) -> torch.Tensor:
    """Breslow partial log-likelihood of one stratum in float64: samples in descending time (`order`), each
    sample's risk set reaching to the last of its tied times (`last`), summed over the deaths (`events`, sorted)."""
    sorted_eta = eta[order]
    log_risk_set = torch.logcumsumexp(sorted_eta, 0)[last]
    return (sorted_eta - log_risk_set)[events].sum()


def _strata_terms(time: np.ndarray, event: np.ndarray, strata: np.ndarray) -> list[tuple]:
    """Per stratum with deaths: its rows, their descending-time order, the last-tie index, the sorted events."""
    terms = []
    for stratum in np.unique(strata):
        rows = np.flatnonzero(np.asarray(strata) == stratum)
        if event[rows].sum() == 0:  # a stratum without deaths adds nothing to the likelihood
            continue
        order = np.argsort(-time[rows], kind="stable")
        sorted_time = time[rows][order]
        last = np.searchsorted(-sorted_time, -sorted_time, side="right") - 1
        terms.append((torch.as_tensor(rows), torch.as_tensor(order), torch.as_tensor(last),
                      torch.as_tensor(event[rows][order].astype(bool))))
    return terms


def fit_stratified_cox(x: np.ndarray, time: np.ndarray, event: np.ndarray, strata: np.ndarray, penalty: float,
                       max_iter: int = 200) -> StratifiedCox:
    """Ridge-penalised Cox model with one baseline hazard per stratum (Breslow ties), float64 L-BFGS."""
    x = np.asarray(x, dtype=float)
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = torch.as_tensor((x - mean) / scale, dtype=torch.float64)
    terms = _strata_terms(np.asarray(time, dtype=float), np.asarray(event), strata)
    deaths = max(float(np.sum(event)), 1.0)
    beta = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([beta], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                                  history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:  # the penalised objective per death (the same optimum, a scale near 1)
        optimizer.zero_grad()
        eta = z @ beta
        log_likelihood = sum(breslow_log_likelihood(eta[rows], order, last, events)
                             for rows, order, last, events in terms)
        loss = (0.5 * penalty * (beta**2).sum() - log_likelihood) / deaths
        loss.backward()
        return loss

    if terms:
        optimizer.step(closure)
    return StratifiedCox(mean, scale, beta.detach().numpy().copy(), penalty)


def stratified_c_index(risk: np.ndarray, time: np.ndarray, event: np.ndarray, strata: np.ndarray) -> float:
    """Harrell's C within each stratum, averaged with weights = the stratum's events (strata where it is
    undefined left out); NaN when it is undefined in every stratum."""
    total = weight = 0.0
    for stratum in np.unique(strata):
        rows = np.asarray(strata) == stratum
        c = harrell_c(risk[rows], time[rows], event[rows])
        if np.isfinite(c):
            total += event[rows].sum() * c
            weight += event[rows].sum()
    return total / weight if weight > 0 else float("nan")


def tuned_stratified_risk(x_train: np.ndarray, t_train: np.ndarray, e_train: np.ndarray, s_train: np.ndarray,
                          x_test: np.ndarray, validation: np.ndarray, penalties: Sequence[float] = COX_PENALTIES
                          ) -> tuple[np.ndarray, float]:
    """The penalty with the best stratified C-index on the validation rows (fitted on the others), refitted on all
    train rows: test risk scores and the chosen penalty (the largest when none could be scored)."""
    fit = ~validation
    scores = {}
    for penalty in penalties:
        model = fit_stratified_cox(x_train[fit], t_train[fit], e_train[fit], s_train[fit], penalty)
        score = stratified_c_index(model.predict(x_train[validation]), t_train[validation], e_train[validation],
                                   s_train[validation])
        if np.isfinite(score):
            scores[penalty] = score
    best = max(scores, key=scores.get) if scores else max(penalties)
    return fit_stratified_cox(x_train, t_train, e_train, s_train, best).predict(x_test), best


def mean_stratified_c(risks: Sequence[np.ndarray], time: np.ndarray, event: np.ndarray, strata: np.ndarray) -> float:
    """Mean over seeds (one risk vector each) of the stratified C-index; NaN when none is defined."""
    values = [stratified_c_index(risk, time, event, strata) for risk in risks]
    values = [value for value in values if np.isfinite(value)]
    return float(np.mean(values)) if values else float("nan")


def bootstrap_arms(risks: Mapping[str, Sequence[np.ndarray]], time: np.ndarray, event: np.ndarray,
                   strata: np.ndarray, n_boot: int, seed: int | Sequence[int] = 0) -> dict[str, np.ndarray]:
    """Per arm, the mean-over-seeds stratified C-index on `n_boot` resamples of the test rows drawn within each
    stratum (every stratum keeps its size); the same resamples for every arm, so differences are paired."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(np.asarray(strata) == s) for s in np.unique(strata)]
    values = {arm: np.full(n_boot, np.nan) for arm in risks}
    for b in range(n_boot):
        rows = np.concatenate([rng.choice(group, size=len(group)) for group in members])
        for arm, arm_risks in risks.items():
            values[arm][b] = mean_stratified_c([risk[rows] for risk in arm_risks], time[rows], event[rows],
                                               strata[rows])
    return values


def percentile_interval(values: np.ndarray) -> list[float]:
    """The 95% percentile interval of the finite bootstrap values ([NaN, NaN] when none is)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return [float("nan"), float("nan")]
    return [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))]
