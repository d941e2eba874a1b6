"""Choosing the K genes worth measuring with a pretrained GexBERT: greedy forward selection judged by the model.

A panel is grown one gene at a time. At each step the model reads the current panel (one forward pass over a
validation subsample of the train split) and restores the genes that matter: for `restore`, a fixed set of target
genes; for `classify`, the genes that best separate the classes. Which gene to add next is decided in two stages:

1. a score test ranks every remaining candidate cheaply: how strongly its measured value covaries with what the model
   still gets wrong given the current panel (the restoration residuals of the targets, or the class residuals
   `one-hot - p` of a logistic regression on [panel, restored genes]);
2. the best few of that ranking are verified: for `restore` (and `both`) the model reads panel + candidate and the
   candidate that most improves the mean per-gene r of the held-out targets is added; for `classify` the logistic
   regression is refitted on [panel + candidate, the current restoration] and the candidate with the lowest
   validation log-loss is added, then read by the model. The winner's forward pass is the next step's starting
   point, so an unchanged panel is never re-encoded.

How many candidates are verified per step follows the time budget; when the budget runs out the remaining genes
follow the last score test, and the result says so. Everything is fitted and scored on the train split only
(`validation` marks the rows scores are taken on).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from .errors import GexBertError, preview
from .inference import restore_from_panel
from .metrics import per_gene_pearson
from .tokenization_gexbert import GexBertTokenizer

OBJECTIVES = ("classify", "restore", "both")
READER_C = 0.1  # inverse L2 strength of the logistic regression that scores a panel (standardised features)


class PanelInputError(GexBertError, ValueError):
    """A panel request that cannot be met: unknown genes in a gene list, a size beyond the candidates, no labels."""


@dataclass
class PanelDesign:
    """The greedy path: `genes` in the order chosen (genes kept by `must_include` first), so every prefix is a
    panel; per step the validation score after adding the gene and its gain over the step before."""

    genes: list[str]
    objective: str
    score_name: str
    scores: list[float]
    gains: list[float]
    validation_accuracy: list[float]
    forced: list[bool]
    verified: list[int]  # candidates measured by a forward pass at each step (0: chosen by the score test alone)
    sizes: list[int]
    targets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    forward_passes: int = 0

    def panel(self, size: int) -> list[str]:
        """The first `size` genes: the panel of that size."""
        return self.genes[:size]

    def table(self) -> pd.DataFrame:
        """One row per gene in the order chosen: the `panel.tsv` layout (first column `gene`)."""
        return pd.DataFrame({"gene": self.genes, "step": range(1, len(self.genes) + 1), "gain": self.gains,
                             f"validation_{self.score_name}": self.scores,
                             "validation_accuracy": self.validation_accuracy, "forced": self.forced,
                             "candidates_verified": self.verified})


# ----------------------------------------------------------------------------------------------------------------------
# checks at the edge
# ----------------------------------------------------------------------------------------------------------------------
def check_gene_list(genes: Sequence[str], available: Sequence[str], source: str) -> list[str]:
    """`genes` in order without duplicates, each one of `available`; a clear error naming the unknown ones."""
    known = set(available)
    unknown = [gene for gene in genes if gene not in known]
    if unknown:
        raise PanelInputError(f"{source}: {len(unknown)} gene(s) not among the {len(known)} usable genes of the data "
                              f"(known to the model, measured in every sample): {preview(unknown)}")
    return list(dict.fromkeys(genes))


def resolve_request(genes: Sequence[str], sizes: Sequence[int], objective: str, has_labels: bool,
                    candidates: Sequence[str] | None, must_include: Sequence[str] | None,
                    candidates_source: str = "--candidates", must_include_source: str = "--must_include"
                    ) -> tuple[list[str], list[str], list[int], str]:
    """(candidate pool, genes kept, sorted sizes, objective) after every check a panel request needs."""
    objective = ("classify" if has_labels else "restore") if objective in (None, "", "auto") else objective
    if objective not in OBJECTIVES:
        raise PanelInputError(f"--objective must be one of {OBJECTIVES} (or auto), got {objective!r}")
    if objective in ("classify", "both") and not has_labels:
        raise PanelInputError(f"--objective {objective} needs class labels; the data has none (see --label_column)")
    kept = check_gene_list(must_include or [], genes, must_include_source)
    pool = check_gene_list(candidates, genes, candidates_source) if candidates is not None else list(genes)
    pool = [gene for gene in pool if gene not in set(kept)]
    sizes = sorted(set(int(size) for size in sizes))
    if not sizes or sizes[0] < 1:
        raise PanelInputError(f"--size must be positive panel sizes, got {sizes}")
    if sizes[-1] > len(pool) + len(kept):
        raise PanelInputError(f"--size {sizes[-1]} is larger than the {len(pool) + len(kept)} genes available "
                              f"({len(pool)} candidates + {len(kept)} kept by --must_include)")
    if sizes[0] < len(kept):
        raise PanelInputError(f"--size {sizes[0]} is smaller than the {len(kept)} genes of --must_include")
    return pool, kept, sizes, objective


# ----------------------------------------------------------------------------------------------------------------------
# the state of a panel: what the model restores from it, and how well that serves the objective
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class _Rows:
    """The subsample every panel is judged on: rows to fit the reader on and rows to score, on the working scale."""

    raw: pd.DataFrame  # fit rows then score rows
    work: np.ndarray  # standardised by the train spread
    labels: np.ndarray | None
    n_fit: int

    @property
    def score(self) -> slice:
        return slice(self.n_fit, None)

    @property
    def fit(self) -> slice:
        return slice(0, self.n_fit)


@dataclass
class _State:
    """One panel read by the model: its validation numbers and the residuals the next score test needs."""

    panel: list[str]
    neg_log_loss: float
    accuracy: float
    gene_r: dict[str, float]  # per-gene r of each restored query on the scoring rows
    residual: np.ndarray  # rows x outputs: what is still wrong (restoration error or class residual)
    residual_rows: slice
    queries: list[str] = field(default_factory=list)
    restored: np.ndarray | None = None  # standardised restored queries on every row (classification)


class _Judge:
    """Forward passes and scores of panels on one subsample, for one objective."""

    def __init__(self, model, tokenizer: GexBertTokenizer, rows: _Rows, genes: list[str], objective: str,
                 queries: list[str], batch_size: int, center: np.ndarray, scale: np.ndarray):
        self.model, self.tokenizer, self.rows, self.genes = model, tokenizer, rows, genes
        self.objective, self.queries, self.batch_size = objective, queries, batch_size
        self.center, self.scale = center, scale
        self.column = {gene: i for i, gene in enumerate(genes)}
        self.forward_passes, self.forward_seconds, self.refit_seconds = 0, [], []

    def _restore(self, panel: list[str], queries: list[str], rows: slice) -> np.ndarray:
        started = time.perf_counter()
        restored, _ = restore_from_panel(self.model, self.tokenizer, self.rows.raw.iloc[rows][panel], queries,
                                              batch_size=self.batch_size)
        self.forward_passes += 1
        self.forward_seconds.append(time.perf_counter() - started)
        return restored

    def score(self, state: _State, scored: Sequence[str] | None = None) -> float:
        """The objective's validation score of `state` (higher is better); restoration over `scored` genes."""
        if self.objective == "classify":
            return state.neg_log_loss
        values = [state.gene_r.get(gene, math.nan) for gene in (scored if scored is not None else state.gene_r)]
        mean_r = float(np.nanmean(values)) if np.isfinite(values).any() else 0.0
        return mean_r if self.objective == "restore" else state.accuracy + mean_r

    def state(self, panel: list[str]) -> _State:
        """Read `panel` once: restoration of every query outside it and, for classification, the reader's scores."""
        queries = [gene for gene in self.queries if gene not in set(panel)]
        rows = self.rows.score if self.objective == "restore" else slice(None)
        if panel:
            restored = self._standardise(self._restore(panel, queries, rows), queries)
        else:  # nothing measured: the train mean of every query
            restored = np.zeros((len(self.rows.work[rows]), len(queries)))
        truth = self.rows.work[rows][:, [self.column[g] for g in queries]]
        on_score = slice(self.rows.n_fit, None) if rows == slice(None) else slice(None)
        gene_r = dict(zip(queries, per_gene_pearson(truth[on_score], restored[on_score]).tolist()))
        if self.objective == "restore":
            return _State(panel, math.nan, math.nan, gene_r, truth - restored, rows)
        neg_log_loss, accuracy, residual = self._classification(panel, restored)
        return _State(panel, neg_log_loss, accuracy, gene_r, residual, self.rows.fit, queries, restored)

    def refit_score(self, state: _State, gene: str) -> float:
        """-validation log-loss of the reader on `state`'s panel plus `gene`, with the restoration of `state`
        (the candidate's own restored column dropped): a refit, no forward pass."""
        keep = [i for i, query in enumerate(state.queries) if query != gene]
        started = time.perf_counter()
        score = self._classification([*state.panel, gene], state.restored[:, keep])[0]
        self.refit_seconds.append(time.perf_counter() - started)
        return score

    def _standardise(self, restored: np.ndarray, queries: list[str]) -> np.ndarray:
        """The model's restored values on the same standardised scale as `rows.work`."""
        return (restored - self.center[[self.column[g] for g in queries]]) / self.scale[[self.column[g]
                                                                                          for g in queries]]

    def _classification(self, panel: list[str], restored: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(-validation log-loss, validation accuracy, class residuals on the fit rows) of the reader."""
        measured = self.rows.work[:, [self.column[g] for g in panel]]
        features = np.hstack([measured, restored])  # the pooled embedding overfitted the reader on few rows
        y, fit, score = self.rows.labels, self.rows.fit, self.rows.score
        classes = np.unique(y[fit])
        onehot = (y[fit][:, None] == classes[None, :]).astype(float)
        if features.shape[1] == 0:
            prior = onehot.mean(0)
            probabilities = np.tile(prior, (len(y[score]), 1))
            return -log_loss(y[score], probabilities, labels=classes), float(np.mean(y[score] == classes[
                prior.argmax()])), onehot - prior
        scaler = StandardScaler().fit(features[fit])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reader = LogisticRegression(C=READER_C, max_iter=200, tol=1e-3).fit(scaler.transform(features[fit]),
                                                                               y[fit])
        held = reader.predict_proba(scaler.transform(features[score]))
        residual = onehot - reader.predict_proba(scaler.transform(features[fit]))
        return (-log_loss(y[score], held, labels=reader.classes_),
                float(accuracy_score(y[score], reader.classes_[held.argmax(1)])), residual)

    def score_test(self, state: _State, pool: list[str]) -> np.ndarray:
        """Per candidate: the squared covariance of its measured value with the residuals, summed over outputs (the
        score statistic of adding it to a linear reader of the residuals). Candidates are standardised."""
        values = self.rows.work[state.residual_rows][:, [self.column[g] for g in pool]]
        values = values - values.mean(0)
        residual = state.residual - state.residual.mean(0)
        covariance = values.T @ residual / len(values)
        return (covariance**2).sum(1)


# ----------------------------------------------------------------------------------------------------------------------
# the greedy loop
# ----------------------------------------------------------------------------------------------------------------------
def _subsample(raw: pd.DataFrame, work: np.ndarray, labels: np.ndarray | None, validation: np.ndarray,
               max_fit_rows: int, max_score_rows: int, seed: int) -> _Rows:
    """Seeded rows: reader-fitting rows from the train part, scoring rows from the validation part."""
    rng = np.random.default_rng([seed, 23])
    fit_rows = np.flatnonzero(~validation)
    score_rows = np.flatnonzero(validation)
    fit_rows = np.sort(rng.choice(fit_rows, min(max_fit_rows, len(fit_rows)), replace=False))
    score_rows = np.sort(rng.choice(score_rows, min(max_score_rows, len(score_rows)), replace=False))
    order = np.concatenate([fit_rows, score_rows])
    return _Rows(raw.iloc[order], work[order], None if labels is None else np.asarray(labels)[order], len(fit_rows))


def _queries(work: np.ndarray, genes: list[str], labels: np.ndarray | None, objective: str, fit: slice,
             max_queries: int, seed: int) -> list[str]:
    """The genes the model restores for every panel: for classification the best class separators on the fit rows
    (ANOVA F); for restoration a seeded random set of targets whose per-gene r is scored."""
    if len(genes) <= max_queries:
        return list(genes)
    if objective == "restore":
        chosen = np.random.default_rng([seed, 29]).choice(len(genes), max_queries, replace=False)
        return [genes[i] for i in np.sort(chosen)]
    scores, _ = f_classif(work[fit], np.asarray(labels)[fit])
    return [genes[i] for i in np.argsort(-np.nan_to_num(scores, nan=-1.0))[:max_queries]]


def design_panel(model, tokenizer: GexBertTokenizer, raw_train: pd.DataFrame, labels: np.ndarray | None,
                 validation: np.ndarray, sizes: Sequence[int], objective: str = "auto",
                 candidates: Sequence[str] | None = None, must_include: Sequence[str] | None = None,
                 minutes: float = 10.0, max_fit_rows: int = 600, max_score_rows: int = 300, max_queries: int = 64,
                 max_verified: int = 4, max_refits: int = 12, prescreen: int = 120, batch_size: int = 128, seed: int = 0,
                 progress: bool = True) -> PanelDesign:
    """Grow a panel to `max(sizes)` genes from `raw_train` (samples x genes, the model's genes, train split only).

    `labels` are the class of each row (None: restoration only); `validation` marks the rows scores are taken on;
    `candidates` restricts the choice (for classification further to the `prescreen` best class separators, ANOVA F
    on the fit rows), `must_include` genes come first. `minutes` bounds the search: each step
    verifies as many score-test leaders (up to `max_verified`) as the time left allows; once not even one fits,
    the remaining genes follow the last score test (said in `notes`).
    """
    started = time.perf_counter()
    genes = list(raw_train.columns)
    pool, kept, sizes, objective = resolve_request(genes, sizes, objective, labels is not None, candidates,
                                                   must_include)
    work = tokenizer.normalize(raw_train.to_numpy(), genes)
    center, scale = work[~validation].mean(0), work[~validation].std(0) + 1e-8
    work = (work - center) / scale
    rows = _subsample(raw_train, work, labels, validation, max_fit_rows, max_score_rows, seed)
    queries = _queries(rows.work, genes, rows.labels, objective, rows.fit, max_queries, seed)
    if objective != "restore" and len(pool) > prescreen:  # drop genes that separate no class before the search
        separation, _ = f_classif(rows.work[rows.fit][:, [genes.index(g) for g in pool]], rows.labels[rows.fit])
        pool = [pool[i] for i in np.sort(np.argsort(-np.nan_to_num(separation, nan=-1.0))[:prescreen])]
    judge = _Judge(model, tokenizer, rows, genes, objective, queries, batch_size, center, scale)
    design = PanelDesign([], objective, "r" if objective == "restore" else (
        "score" if objective == "both" else "neg_log_loss"), [], [], [], [], [], sizes, queries)
    state = judge.state(list(kept))
    for gene in kept:
        _record(design, gene, judge.score(state), state.accuracy, math.nan, forced=True, verified=0)
    deadline = started + minutes * 60
    steps = tqdm(total=sizes[-1], initial=len(kept), desc="designing panel", unit="gene", disable=not progress)
    while len(design.genes) < sizes[-1]:
        remaining = [gene for gene in pool if gene not in set(design.genes)]
        ranking = [remaining[i] for i in np.argsort(-judge.score_test(state, remaining), kind="stable")]
        verify, chunk = _plan_step(judge, deadline, sizes[-1] - len(design.genes), max_verified, max_refits)
        if verify == 0:
            fill = ranking[: sizes[-1] - len(design.genes)]
            design.notes.append(f"time budget spent after {len(design.genes)} genes: the last {len(fill)} follow "
                                "the last score test, without verification")
            for gene in fill:
                _record(design, gene, math.nan, math.nan, math.nan, forced=False, verified=0)
            steps.update(len(fill))
            break
        if chunk > 1:  # short of time: the score test's leaders join together, read in one forward pass
            state = _add_group(design, judge, state, ranking[:chunk])
            steps.update(chunk)
            continue
        shortlist = ranking[:verify]
        if objective == "classify":  # refits with the current restoration; the winner is then read by the model
            best = shortlist[int(np.argmax([judge.refit_score(state, gene) for gene in shortlist]))]
            trial = judge.state([*design.genes, best])
            _record(design, best, judge.score(trial), trial.accuracy, judge.score(trial) - judge.score(state),
                    forced=False, verified=len(shortlist))
            state = trial
        else:  # each candidate read by the model, restoration compared on targets outside every candidate
            scored = [gene for gene in queries if gene not in set(design.genes) | set(shortlist)]
            trials = [judge.state([*design.genes, gene]) for gene in shortlist]
            scores = [judge.score(trial, scored) for trial in trials]
            best = int(np.argmax(scores))
            _record(design, shortlist[best], scores[best], trials[best].accuracy,
                    scores[best] - judge.score(state, scored), forced=False, verified=len(shortlist))
            state = trials[best]
        steps.update(1)
    steps.close()
    design.seconds, design.forward_passes = time.perf_counter() - started, judge.forward_passes
    return design


def _plan_step(judge: _Judge, deadline: float, steps_left: int, max_verified: int, max_refits: int
               ) -> tuple[int, int]:
    """(candidates verified, genes added) for this step so that the remaining steps fit the deadline: verification
    shrinks first, then genes are added in groups (one forward pass each); (0, 0) once not even one pass fits."""
    left = deadline - time.perf_counter()
    if left <= 0:
        return 0, 0
    if not judge.forward_seconds:
        return (max_refits if judge.objective == "classify" else max_verified), 1
    per_forward = float(np.mean(judge.forward_seconds[-8:])) * 1.15  # panels grow: a little headroom
    if judge.objective == "classify":
        per_step = per_forward + max_refits * float(np.mean(judge.refit_seconds[-24:] or [0.0]))
        if steps_left * per_step <= left:
            return max_refits, 1
        affordable = left / (steps_left * per_forward)
        if affordable >= 1:
            return max(1, int((left / steps_left - per_forward) / max(per_step - per_forward, 1e-9) * max_refits)), 1
    else:
        affordable = left / (steps_left * per_forward)
        if affordable >= 1:
            return min(max_verified, int(affordable)), 1
    if left < per_forward:
        return 0, 0
    return 1, min(steps_left, math.ceil(1 / affordable))


def _add_group(design: PanelDesign, judge: _Judge, state: _State, group: list[str]) -> _State:
    """Add `group` at once; the gain of the group is recorded on its last gene."""
    trial = judge.state([*design.genes, *group])
    for position, gene in enumerate(group):
        last = position == len(group) - 1
        _record(design, gene, judge.score(trial) if last else math.nan, trial.accuracy if last else math.nan,
                judge.score(trial) - judge.score(state) if last else math.nan, forced=False, verified=1)
    design.notes.append(f"short of time: genes {len(design.genes) - len(group) + 1}-{len(design.genes)} were added "
                        "together (score-test leaders, one forward pass)")
    return trial


def _record(design: PanelDesign, gene: str, score: float, accuracy: float, gain: float, forced: bool,
            verified: int) -> None:
    design.genes.append(gene)
    design.scores.append(score)
    design.gains.append(gain)
    design.validation_accuracy.append(accuracy)
    design.forced.append(forced)
    design.verified.append(verified)


__all__ = ["OBJECTIVES", "PanelDesign", "PanelInputError", "check_gene_list", "design_panel", "resolve_request"]
