"""What both survival protocols (per type, and pooled over types) compare: the Cox inputs of each arm for one random
panel, built from the same samples the same way, so the two protocols differ only in how the Cox model is fitted
and scored.

Arms: (a) the panel, (b) panel + anchors restored by GexBERT from the panel, (c) panel + the true anchors (the
ceiling), (d) panel + anchors predicted from the panel by ridge regression or KNN fitted on all train samples.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..data.splits import split_validation
from ..inference import predict_distribution
from ..tokenization_gexbert import GexBertTokenizer
from .baselines import mean_gene_r, stratified_cox_z, univariate_cox_z
from .working_scale import working_frame

ARMS = ("a: panel", "b: panel + GexBERT anchors", "c: panel + true anchors", "d: panel + ridge anchors",
        "d: panel + KNN anchors")
# (raw values of some samples, panel genes, anchor genes) -> the anchors restored from the panel, working scale
Restorer = Callable[[pd.DataFrame, list[str], list[str]], np.ndarray]


@dataclass
class SurvivalCohort:
    """The folder's samples, raw and on the working scale, their clinical tables, and which have a known outcome."""

    raw_train: pd.DataFrame
    raw_test: pd.DataFrame
    work_train: pd.DataFrame
    work_test: pd.DataFrame
    clinical_train: pd.DataFrame
    clinical_test: pd.DataFrame
    type_column: str
    time_column: str
    event_column: str

    @classmethod
    def build(cls, tokenizer: GexBertTokenizer, raw_train: pd.DataFrame, clinical_train: pd.DataFrame,
              raw_test: pd.DataFrame, clinical_test: pd.DataFrame, type_column: str, time_column: str,
              event_column: str) -> SurvivalCohort:
        """The cohort with its working-scale copies (the tokenizer's normalisation)."""
        return cls(raw_train, raw_test, working_frame(tokenizer, raw_train), working_frame(tokenizer, raw_test),
                   clinical_train, clinical_test, type_column, time_column, event_column)

    def known(self, clinical: pd.DataFrame, types: Sequence[str]) -> np.ndarray:
        """Rows of `clinical` in one of `types` with a known time and event."""
        return (clinical[self.time_column].notna() & clinical[self.event_column].notna()
                & clinical[self.type_column].isin(list(types))).to_numpy()

    def part(self, types: Sequence[str]) -> SurvivalPart:
        """The samples of `types` with a known outcome; the Cox-penalty validation part is a 25% share of their
        train samples, stratified by event (and by type when there are several)."""
        rows_tr, rows_te = self.known(self.clinical_train, types), self.known(self.clinical_test, types)
        train, test = self.clinical_train[rows_tr], self.clinical_test[rows_te]
        events = train[self.event_column].to_numpy(int)
        strata = events if len(types) == 1 else (train[self.type_column].astype(str) + "|" + events.astype(str))
        return SurvivalPart(
            self.raw_train[rows_tr], self.raw_test[rows_te], self.work_train[rows_tr], self.work_test[rows_te],
            train[self.time_column].to_numpy(float), events, test[self.time_column].to_numpy(float),
            test[self.event_column].to_numpy(int), split_validation(np.asarray(strata), 0.25, seed=7),
            train[self.type_column].astype(str).to_numpy(), test[self.type_column].astype(str).to_numpy())


@dataclass
class SurvivalPart:
    """Samples with known outcome (one type, or the pool): values, times, events, types, the validation rows."""

    raw_train: pd.DataFrame
    raw_test: pd.DataFrame
    work_train: pd.DataFrame
    work_test: pd.DataFrame
    t_train: np.ndarray
    e_train: np.ndarray
    t_test: np.ndarray
    e_test: np.ndarray
    validation: np.ndarray  # boolean over the train rows: where the Cox penalty is chosen
    types_train: np.ndarray
    types_test: np.ndarray


def eligible_types(types_train: pd.Series, events_train: np.ndarray, types_test: pd.Series, events_test: np.ndarray,
                   min_train_events: int, min_test_events: int) -> list[str]:
    """Cancer types with enough deaths to fit and to test a Cox model."""
    chosen = []
    for cancer in sorted(types_train.dropna().unique()):
        n_train = events_train[(types_train == cancer).to_numpy()].sum()
        n_test = events_test[(types_test == cancer).to_numpy()].sum()
        if n_train >= min_train_events and n_test >= min_test_events:
            chosen.append(cancer)
    return chosen


def types_to_run(cohort: SurvivalCohort, min_train_events: int, min_test_events: int, max_types: int | None = None
                 ) -> list[str]:
    """The types with enough train and test deaths; with `max_types`, those with most train events (the most
    reliable C-indices)."""
    train, test = cohort.clinical_train, cohort.clinical_test
    has_train, has_test = (cohort.known(clinical, clinical[cohort.type_column].dropna().unique())
                           for clinical in (train, test))
    events = cohort.event_column
    types = eligible_types(train[cohort.type_column][has_train], train[events][has_train].to_numpy(),
                           test[cohort.type_column][has_test], test[events][has_test].to_numpy(),
                           min_train_events, min_test_events)
    if max_types is not None:
        counts = {cancer: train.loc[has_train & (train[cohort.type_column] == cancer).to_numpy(), events].sum()
                  for cancer in types}
        types = sorted(sorted(types, key=lambda cancer: -counts[cancer])[:max_types])
    return types


def anchor_genes(data: SurvivalPart, n_anchors: int, stratified: bool = False) -> tuple[list[str], list[float]]:
    """The `n_anchors` most prognostic genes of these train samples (|Cox score z|; `stratified`: within types,
    combined), and their z."""
    x = data.work_train.to_numpy()
    z = (stratified_cox_z(x, data.t_train, data.e_train, data.types_train) if stratified else
         univariate_cox_z(x, data.t_train, data.e_train))
    z = np.nan_to_num(z, nan=0.0)
    genes = list(data.work_train.columns)
    chosen = np.argsort(-np.abs(z))[:n_anchors]
    return [genes[i] for i in chosen], [float(z[i]) for i in chosen]


def predict_anchors_regression(kind: str, x_train: np.ndarray, a_train: np.ndarray, x_apply: list[np.ndarray],
                               seed: int = 0) -> list[np.ndarray]:
    """Panel -> anchors by ridge (alpha by internal CV on train) or KNN (k by CV on train)."""
    if kind == "ridge":
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
    else:
        knn = KNeighborsRegressor(weights="distance", algorithm="brute")
        model = GridSearchCV(make_pipeline(StandardScaler(), knn), {"kneighborsregressor__n_neighbors": [5, 15, 40]},
                             cv=3)
    model.fit(x_train, a_train)
    return [model.predict(x) for x in x_apply]


def gexbert_restorer(model, tokenizer: GexBertTokenizer) -> Restorer:
    """GexBERT's restored anchors (working scale) from the panel's values alone."""
    def restore(raw: pd.DataFrame, panel: list[str], anchors: list[str]) -> np.ndarray:
        restored = predict_distribution(model, tokenizer, raw[panel], genes=anchors)
        return restored.mean[:, [restored.genes.index(gene) for gene in anchors]]

    return restore


def random_panel(others: Sequence[str], k: int, seed: int) -> list[str]:
    """The seeded random K-gene panel among the non-anchor genes (the same draw in both protocols)."""
    return sorted(np.random.default_rng([seed, k, 11]).choice(list(others), size=min(k, len(others)),
                                                              replace=False).tolist())


def panel_arms(restore: Restorer, data: SurvivalPart, work_reference: pd.DataFrame, panel: list[str],
               anchors: list[str], seed: int) -> tuple[dict, float, float]:
    """The Cox inputs (train, test) of arms (a)-(d) for one panel, and the anchors' restoration r of GexBERT and of
    ridge regression on test; the regressions are fitted on `work_reference` (all train samples of the folder)."""
    p_tr, p_te = data.work_train[panel].to_numpy(), data.work_test[panel].to_numpy()
    true_tr, true_te = data.work_train[anchors].to_numpy(), data.work_test[anchors].to_numpy()
    g_tr, g_te = restore(data.raw_train, panel, anchors), restore(data.raw_test, panel, anchors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ridge_tr, ridge_te = predict_anchors_regression(
            "ridge", work_reference[panel].to_numpy(), work_reference[anchors].to_numpy(), [p_tr, p_te], seed)
        knn_tr, knn_te = predict_anchors_regression(
            "knn", work_reference[panel].to_numpy(), work_reference[anchors].to_numpy(), [p_tr, p_te], seed)
    arms = {
        ARMS[0]: (p_tr, p_te),
        ARMS[1]: (np.hstack([p_tr, g_tr]), np.hstack([p_te, g_te])),
        ARMS[2]: (np.hstack([p_tr, true_tr]), np.hstack([p_te, true_te])),
        ARMS[3]: (np.hstack([p_tr, ridge_tr]), np.hstack([p_te, ridge_te])),
        ARMS[4]: (np.hstack([p_tr, knn_tr]), np.hstack([p_te, knn_te])),
    }
    return arms, mean_gene_r(true_te, g_te), mean_gene_r(true_te, ridge_te)
