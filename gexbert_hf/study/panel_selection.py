"""Classical panel designs the GexBERT design is held against, each given the same train rows and candidates.

Every selector returns a full ranking (the first K genes are the K-gene panel), with the genes kept by
`--must_include` first. Libraries: scikit-learn (mutual information, L1 and L2 logistic regression, ANOVA F) and
SciPy (pivoted QR). Greedy forward LR runs the same two-stage search as the GexBERT design (score test, then the best
few verified by refitting), but reads the raw panel alone: the pair isolates what the model's restoration adds.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np
from scipy.linalg import qr
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import f_classif, mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

CLASSIFY_SELECTORS = ("variance", "mRMR", "L1 LR", "greedy LR")
RESTORE_SELECTORS = ("variance", "pivoted QR")
RANDOM_SEEDS = 5


def _rest(order: list[int], kept: list[int], pool: list[int], size: int) -> list[int]:
    """`kept` first, then `order` restricted to the pool, `size` genes in all."""
    allowed = set(pool) - set(kept)
    return (kept + [i for i in order if i in allowed])[:size]


def variance_ranking(work: np.ndarray, kept: list[int], pool: list[int], size: int) -> list[int]:
    """The most variable genes on train (working scale)."""
    return _rest(list(np.argsort(-work.var(0), kind="stable")), kept, pool, size)


def mrmr_ranking(work: np.ndarray, labels: np.ndarray, kept: list[int], pool: list[int], size: int, seed: int = 0,
                 shortlist: int = 200) -> list[int]:
    """Minimum redundancy, maximum relevance: mutual information with the class (scikit-learn's kNN estimator) minus
    the mean absolute correlation with the genes already chosen (the MID criterion with correlation as the
    redundancy measure, as in Ding & Peng 2005's continuous variant)."""
    relevance = np.zeros(work.shape[1])
    candidates = [i for i in pool if i not in set(kept)]
    relevance[candidates] = mutual_info_classif(work[:, candidates], labels, random_state=seed)
    candidates = sorted(candidates, key=lambda i: -relevance[i])[:shortlist]
    chosen = list(kept)
    correlation = np.abs(np.corrcoef(work[:, candidates + kept].T))
    index = {gene: position for position, gene in enumerate(candidates + kept)}
    while len(chosen) < size and len(chosen) < len(kept) + len(candidates):
        left = [i for i in candidates if i not in set(chosen)]
        redundancy = (np.array([correlation[index[i], [index[j] for j in chosen]].mean() for i in left])
                      if chosen else np.zeros(len(left)))
        chosen.append(left[int(np.argmax(relevance[left] - redundancy))])
    return chosen


def l1_ranking(work: np.ndarray, labels: np.ndarray, kept: list[int], pool: list[int], size: int,
               strengths: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1)) -> list[int]:
    """L1-penalised multinomial logistic regression (saga) along a path of C: genes in the order they enter (first
    C with a non-zero coefficient row), ties by the row norm at the largest C."""
    candidates = [i for i in pool if i not in set(kept)]
    x = (work[:, candidates] - work[:, candidates].mean(0)) / (work[:, candidates].std(0) + 1e-8)
    entry, norms = np.full(len(candidates), len(strengths)), np.zeros(len(candidates))
    for step, c in enumerate(strengths):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = LogisticRegression(l1_ratio=1.0, solver="saga", C=c, max_iter=60, tol=1e-3).fit(x, labels)
        norms = np.linalg.norm(model.coef_, axis=0)
        entry = np.where((norms > 0) & (entry == len(strengths)), step, entry)
        if (entry < len(strengths)).sum() >= size:
            break
    order = np.lexsort((-norms, entry))
    return _rest([candidates[i] for i in order], kept, pool, size)


def greedy_lr_ranking(work: np.ndarray, labels: np.ndarray, fit: np.ndarray, kept: list[int], pool: list[int],
                      size: int, verified: int = 12, prescreen: int = 120, c: float = 1.0,
                      deadline: float | None = None, notes: list[str] | None = None) -> list[int]:
    """Greedy forward selection by logistic regression on the raw panel: ANOVA prescreen to `prescreen` genes, then
    per step the `verified` best by the multinomial score test, each refitted, the lowest validation log-loss (rows
    outside `fit`) added. Past `deadline` the rest follow the last score test (said in `notes`)."""
    score_rows = ~fit
    candidates = [i for i in pool if i not in set(kept)]
    separation, _ = f_classif(work[fit][:, candidates], labels[fit])
    candidates = [candidates[i] for i in np.argsort(-np.nan_to_num(separation, nan=-1.0))[:prescreen]]
    x = (work - work[fit].mean(0)) / (work[fit].std(0) + 1e-8)
    classes = np.unique(labels[fit])
    onehot = (labels[fit][:, None] == classes[None, :]).astype(float)
    chosen, residual = list(kept), onehot - onehot.mean(0)
    if chosen:
        residual = onehot - _fit_lr(x[fit][:, chosen], labels[fit], c).predict_proba(x[fit][:, chosen])
    while len(chosen) < size:
        left = [i for i in candidates if i not in set(chosen)]
        if not left:
            break
        test = ((x[fit][:, left].T @ (residual - residual.mean(0)) / fit.sum()) ** 2).sum(1)
        if deadline is not None and time.perf_counter() > deadline:
            rest = [left[j] for j in np.argsort(-test)[: size - len(chosen)]]
            if notes is not None:
                notes.append(f"greedy LR: time budget spent after {len(chosen)} genes; the last {len(rest)} follow "
                             "the last score test")
            return chosen + rest
        trials = []
        for i in [left[j] for j in np.argsort(-test)[:verified]]:
            model = _fit_lr(x[fit][:, chosen + [i]], labels[fit], c)
            trials.append((log_loss(labels[score_rows], model.predict_proba(x[score_rows][:, chosen + [i]]),
                                    labels=model.classes_), i, model))
        _, best, model = min(trials, key=lambda trial: trial[0])
        chosen.append(best)
        residual = onehot - model.predict_proba(x[fit][:, chosen])
    return chosen


def _fit_lr(x: np.ndarray, y: np.ndarray, c: float) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=c, max_iter=200, tol=1e-3).fit(x, y)


def pivoted_qr_ranking(work: np.ndarray, kept: list[int], pool: list[int], size: int) -> list[int]:
    """Column-subset selection by QR with column pivoting (SciPy) on the standardised train matrix: each pivot is the
    gene with the most variance not yet explained linearly by the genes before it. Kept genes are projected out
    first."""
    x = (work - work.mean(0)) / (work.std(0) + 1e-8)
    if kept:
        basis, _ = np.linalg.qr(x[:, kept])
        x = x - basis @ (basis.T @ x)
    candidates = [i for i in pool if i not in set(kept)]
    _, pivots = qr(x[:, candidates], mode="r", pivoting=True)
    return _rest([candidates[i] for i in pivots], kept, pool, size)


def random_panel(kept: list[int], pool: list[int], size: int, seed: int) -> list[int]:
    """A seeded random draw from the pool after the kept genes: the floor every design must clear."""
    order = np.random.default_rng([seed, size, 31]).permutation([i for i in pool if i not in set(kept)]).tolist()
    return _rest(order, kept, pool, size)


def classical_rankings(work: np.ndarray, labels: np.ndarray | None, fit: np.ndarray, kept: list[int],
                       pool: list[int], size: int, objective: str, max_rows: int = 2500, seed: int = 0,
                       deadline: float | None = None, say: Callable[[str], None] = print,
                       notes: list[str] | None = None) -> tuple[dict, dict]:
    """method -> ranking of `size` genes (gene indices), and method -> seconds it took; the supervised selectors
    on at most `max_rows` seeded train rows. A selector that would start past `deadline` is skipped."""
    rows = np.sort(np.random.default_rng([seed, 37]).choice(len(work), min(max_rows, len(work)), replace=False))
    sub, sub_labels, sub_fit = work[rows], None if labels is None else labels[rows], fit[rows]
    selectors: dict[str, Callable[[], list[int]]] = {
        "variance": lambda: variance_ranking(work[fit], kept, pool, size)}
    if objective in ("restore", "both"):
        selectors["pivoted QR"] = lambda: pivoted_qr_ranking(work[fit], kept, pool, size)
    if objective in ("classify", "both"):  # the strongest rival first: a budget that runs out drops the weakest
        selectors["greedy LR"] = lambda: greedy_lr_ranking(sub, sub_labels, sub_fit, kept, pool, size,
                                                           deadline=deadline, notes=notes)
        selectors["L1 LR"] = lambda: l1_ranking(sub[sub_fit], sub_labels[sub_fit], kept, pool, size)
        # scikit-learn's kNN estimate of mutual information is the slowest step: 1,000 rows keep it to a minute
        selectors["mRMR"] = lambda: mrmr_ranking(sub[sub_fit][:1000], sub_labels[sub_fit][:1000], kept, pool, size,
                                                 seed)
    rankings, seconds = {}, {}
    for name, select in selectors.items():
        if deadline is not None and time.perf_counter() > deadline:
            say(f"classical selection: {name} skipped (time budget)")
            if notes is not None:
                notes.append(f"classical selection: {name} skipped, the time budget was spent")
            continue
        started = time.perf_counter()
        rankings[name] = select()
        seconds[name] = time.perf_counter() - started
        say(f"classical selection: {name} in {seconds[name]:.0f} s")
    return rankings, seconds
