"""Baselines the benchmark holds GexBERT against, each tuned on a validation part carved out of train.

A weak baseline makes a meaningless win, so every method here picks its key hyperparameter (LR C, RF depth, HGB
learning rate, MLP size, KNN k, SoftImpute penalty, Cox penalty) on validation data and is then refitted on all of
train. Nothing here sees test samples except through `predict` / `transform` / the transductive imputers' input.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer
from sklearn.linear_model import BayesianRidge, LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.extmath import randomized_svd

from ..metrics import concordance_index, per_gene_pearson

# ----------------------------------------------------------------------------------------------------------------------
# classifiers
# ----------------------------------------------------------------------------------------------------------------------
CLASSIFIER_GRIDS: dict[str, list[dict]] = {
    "LR": [{"C": c} for c in (0.01, 0.1, 1.0, 10.0)],
    "RF": [{"max_depth": d, "min_samples_leaf": leaf} for d, leaf in ((None, 1), (16, 2))],
    "HGB": [{"learning_rate": lr} for lr in (0.05, 0.1)],  # 0.25 diverged on 31 classes
    "MLP": [{"hidden_layer_sizes": h, "alpha": a} for h, a in (((256,), 1e-3), ((512, 256), 1e-3), ((256,), 1e-1))],
}


def make_classifier(name: str, params: dict, seed: int = 0, quick: bool = False):
    """A standardising pipeline around one baseline classifier (costs capped for a 2-core CPU)."""
    if name == "LR":
        model = LogisticRegression(C=params["C"], max_iter=150 if quick else 400, tol=1e-3)
    elif name == "RF":
        model = RandomForestClassifier(n_estimators=40 if quick else 100, max_depth=params["max_depth"],
                                       min_samples_leaf=params["min_samples_leaf"], max_features="sqrt",
                                       random_state=seed, n_jobs=1)
    elif name == "HGB":
        # one tree per class and iteration: 31 classes make this the slowest baseline, hence the cap
        model = HistGradientBoostingClassifier(learning_rate=params["learning_rate"], max_iter=15 if quick else 40,
                                               max_leaf_nodes=15, early_stopping=False, random_state=seed)
    elif name == "MLP":
        model = MLPClassifier(hidden_layer_sizes=params["hidden_layer_sizes"], alpha=params["alpha"],
                              early_stopping=True, validation_fraction=0.1, n_iter_no_change=8,
                              max_iter=40 if quick else 150, batch_size=128, learning_rate_init=1e-3,
                              random_state=seed)
    else:
        raise ValueError(f"unknown classifier {name!r}; choose one of {sorted(CLASSIFIER_GRIDS)}")
    return make_pipeline(StandardScaler(), model)


@dataclass
class TunedClassifier:
    name: str
    params: dict
    validation_scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def tune_classifier(name: str, x_fit: np.ndarray, y_fit: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                    seed: int = 0, quick: bool = False, grid: list[dict] | None = None) -> TunedClassifier:
    """Pick the grid point with the best validation accuracy (train-carved validation only)."""
    started = time.perf_counter()
    grid = grid or CLASSIFIER_GRIDS[name]
    scores = {}
    for params in grid:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = make_classifier(name, params, seed, quick).fit(x_fit, y_fit)
        scores[repr(params)] = float(accuracy_score(y_val, model.predict(x_val)))
    best = max(grid, key=lambda params: scores[repr(params)])
    return TunedClassifier(name, best, scores, time.perf_counter() - started)


def fit_predict_proba(name: str, params: dict, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                      n_classes: int, seed: int = 0, quick: bool = False) -> np.ndarray:
    """Refit on all of train with the chosen params; class probabilities over all `n_classes` columns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make_classifier(name, params, seed, quick).fit(x_train, y_train)
    probabilities = np.zeros((len(x_test), n_classes))
    probabilities[:, model.classes_] = model.predict_proba(x_test)
    return probabilities


# ----------------------------------------------------------------------------------------------------------------------
# imputers: (reference, incomplete) -> completed copy of `incomplete`; values on the tokenizer's working scale
# ----------------------------------------------------------------------------------------------------------------------
def impute_mean(reference: np.ndarray, incomplete: np.ndarray) -> np.ndarray:
    """Column means of the (complete) training reference."""
    means = np.nanmean(reference, axis=0)
    return np.where(np.isnan(incomplete), means[None, :], incomplete)


def impute_knn(reference: np.ndarray, incomplete: np.ndarray, k: int = 10) -> np.ndarray:
    """KNNImputer fitted on the training reference: each test sample borrows its k nearest train samples' values."""
    imputer = KNNImputer(n_neighbors=k, weights="distance").fit(reference)
    filled = imputer.transform(incomplete)
    # KNNImputer drops columns that are all-NaN in the reference; the reference here is complete, so none
    return filled


# IterativeImputer's nearest-feature step builds a genes x genes correlation matrix: 20,530 genes took ~8 GB and
# minutes per mask. Above this many genes the genes are imputed in seeded random blocks of at most this size, each
# block on its own (correlations stay within a block), which keeps memory quadratic in the block, not the profile.
ITERATIVE_BLOCK_GENES = 1000


def impute_iterative(reference: np.ndarray, incomplete: np.ndarray, max_iter: int = 5, n_nearest: int = 30,
                     seed: int = 0, block_genes: int = ITERATIVE_BLOCK_GENES) -> np.ndarray:
    """Chained BayesianRidge regressions (MICE-style), fitted on reference + incomplete rows together.

    `n_nearest` features per regression and few rounds keep 1,500 genes affordable on one core; wider profiles are
    imputed in random blocks of `block_genes` genes (see ITERATIVE_BLOCK_GENES).
    """
    stacked = np.vstack([reference, incomplete])
    n_genes = stacked.shape[1]
    blocks = ([np.arange(n_genes)] if n_genes <= block_genes else
              np.array_split(np.random.default_rng(seed).permutation(n_genes), -(-n_genes // block_genes)))
    filled = np.empty_like(stacked, dtype=np.float64)
    for block in blocks:
        filled[:, block] = _iterative_block(stacked[:, block], max_iter, n_nearest, seed)
    return filled[len(reference):]


def _iterative_block(matrix: np.ndarray, max_iter: int, n_nearest: int, seed: int) -> np.ndarray:
    imputer = IterativeImputer(estimator=BayesianRidge(), max_iter=max_iter,
                               n_nearest_features=min(n_nearest, matrix.shape[1] - 1), initial_strategy="mean",
                               random_state=seed, tol=1e-3, skip_complete=False, keep_empty_features=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return imputer.fit_transform(matrix)


def soft_impute(matrix: np.ndarray, penalty: float, max_iter: int = 40, max_rank: int = 100, tol: float = 1e-4,
                seed: int = 0) -> np.ndarray:
    """SoftImpute (Mazumder, Hastie & Tibshirani 2010) on a column-standardised matrix with NaNs.

    Iterates Z <- S_lambda(P_obs(X) + P_miss(Z)), S_lambda soft-thresholding singular values; a randomized SVD
    capped at `max_rank` keeps each step cheap. `penalty` is a fraction of the largest singular value.
    """
    observed = ~np.isnan(matrix)
    filled = np.where(observed, matrix, 0.0)
    rank = min(max_rank, min(matrix.shape) - 1)
    top = randomized_svd(filled, 1, random_state=seed)[1][0]
    threshold = penalty * top
    estimate = filled
    for _ in range(max_iter):
        u, s, vt = randomized_svd(filled, rank, n_iter=2, random_state=seed)
        s = np.maximum(s - threshold, 0.0)
        keep = s > 0
        new = (u[:, keep] * s[keep]) @ vt[keep]
        change = np.linalg.norm(new - estimate) / max(np.linalg.norm(estimate), 1e-12)
        estimate = new
        filled = np.where(observed, matrix, estimate)
        if change < tol:
            break
    return estimate


@dataclass
class Standardizer:
    """Per-gene centre/scale fitted on the training reference (imputers that need comparable columns)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, reference: np.ndarray) -> Standardizer:
        std = np.nanstd(reference, axis=0)
        return cls(np.nanmean(reference, axis=0), np.where(std > 1e-8, std, 1.0))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.std + self.mean


def impute_soft(reference: np.ndarray, incomplete: np.ndarray, penalty: float, max_reference: int = 2000,
                seed: int = 0, max_iter: int = 40) -> np.ndarray:
    """SoftImpute on [a train subsample; incomplete rows], standardised by the train reference; `max_iter` caps
    its SVD rounds (each costs rows x genes x rank: wide profiles get fewer)."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(reference), size=min(max_reference, len(reference)), replace=False)
    scaler = Standardizer.fit(reference)
    stacked = np.vstack([scaler.forward(reference[rows]), scaler.forward(incomplete)])
    estimate = soft_impute(stacked, penalty, max_iter=max_iter, seed=seed)[len(rows):]
    return np.where(np.isnan(incomplete), scaler.inverse(estimate), incomplete)


def mcar_mask(shape: tuple[int, int], rate: float, rng: np.random.Generator) -> np.ndarray:
    """True where a value is removed completely at random; every row keeps at least one value."""
    mask = rng.random(shape) < rate
    full = mask.all(axis=1)
    if full.any():
        mask[np.flatnonzero(full), rng.integers(0, shape[1], full.sum())] = False
    return mask


IMPUTER_GRIDS: dict[str, tuple] = {
    "KNN": (1, 3, 5, 10, 20, 40, 80),
    "SoftImpute": (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4),
}
MAX_GRID_EXTENSIONS = 3  # times a grid is extended past an edge its best value sits on


def tune_imputer(name: str, reference: np.ndarray, validation: np.ndarray, grid: list, rate: float = 0.5,
                 seed: int = 0) -> tuple[object, dict]:
    """Choose KNN k or SoftImpute penalty by RMSE of measured validation values removed at `rate` (MCAR).

    A best value on an edge of `grid` says the grid was too narrow: the grid is extended past that edge (k and the
    penalty halved or doubled) up to MAX_GRID_EXTENSIONS times, so the choice is an interior one wherever the data
    allow; `edge_note(scores, best)` says when it still is not."""
    mask = mcar_mask(validation.shape, rate, np.random.default_rng([seed, 99])) & ~np.isnan(validation)
    incomplete = np.where(mask, np.nan, validation)
    scores: dict = {}

    def score(value) -> None:
        if name == "KNN":
            filled = impute_knn(reference, incomplete, k=value)
        elif name == "SoftImpute":
            filled = impute_soft(reference, incomplete, penalty=value, seed=seed)
        else:
            raise ValueError(name)
        scores[value] = float(np.sqrt(np.mean((filled[mask] - validation[mask]) ** 2)))

    for value in grid:
        score(value)
    for _ in range(MAX_GRID_EXTENSIONS):
        best, tried = min(scores, key=scores.get), sorted(scores)
        beyond = _beyond_edge(name, best, tried, len(reference))
        if beyond is None:
            break
        score(beyond)
    best = min(scores, key=scores.get)
    return best, {str(key): scores[key] for key in sorted(scores)}


def _beyond_edge(name: str, best, tried: list, n_reference: int):
    """The next grid value past the edge `best` sits on; None when it is interior or the edge cannot move."""
    if best == tried[-1]:
        step = best * 2
        if name == "KNN":
            return step if step <= n_reference and step not in tried else None
        return step if step <= 1.0 else None
    if best == tried[0]:
        step = best // 2 if name == "KNN" else best / 2
        return step if step >= (1 if name == "KNN" else 1e-5) and step not in tried else None
    return None


def edge_note(scores: dict, best) -> str | None:
    """A sentence when the chosen value is still at an edge of what was tried (None when interior)."""
    tried = sorted(float(key) for key in scores)
    if len(tried) < 2 or float(best) not in (tried[0], tried[-1]):
        return None
    side = "smallest" if float(best) == tried[0] else "largest"
    return f"chosen {best} is the {side} value tried ({tried[0]:g}-{tried[-1]:g}), after extending the grid"


# ----------------------------------------------------------------------------------------------------------------------
# survival: univariate Cox screening, penalised Cox with a validation-chosen penalty, bootstrap C-index
# ----------------------------------------------------------------------------------------------------------------------
def univariate_cox_z(x: np.ndarray, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Cox score-test z statistic of every column at beta = 0, vectorised over genes (Breslow risk sets).

    The score test needs no fitting, so 1,500 genes x 31 types cost milliseconds; |z| ranks prognostic genes.
    A missing value counts as the gene's mean (0 after standardising), so it adds nothing to the score.
    """
    score, information = _cox_score_information(x, time, event)
    return score / np.sqrt(np.maximum(information, 1e-12))


def stratified_cox_z(x: np.ndarray, time: np.ndarray, event: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """The score-test z of a Cox model stratified by `strata` (a baseline hazard per stratum, one coefficient):
    scores and informations of the strata add up, each stratum standardised on its own."""
    score = information = 0.0
    for stratum in np.unique(strata):
        rows = np.asarray(strata) == stratum
        stratum_score, stratum_information = _cox_score_information(x[rows], time[rows], event[rows])
        score, information = score + stratum_score, information + stratum_information
    return score / np.sqrt(np.maximum(information, 1e-12))


def _cox_score_information(x: np.ndarray, time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the Cox partial-likelihood score and information at beta = 0 (columns standardised first)."""
    x = np.asarray(x, dtype=float)
    spread = np.nanstd(x, 0)
    x = np.nan_to_num((x - np.nanmean(x, 0)) / np.where(spread > 1e-12, spread, 1.0))
    order = np.argsort(-time, kind="stable")  # descending time: cumulative sums build the risk sets
    xs, ts, es = x[order], time[order], event[order].astype(bool)
    cum_n = np.arange(1, len(ts) + 1, dtype=float)
    cum_x = np.cumsum(xs, axis=0)
    cum_x2 = np.cumsum(xs**2, axis=0)
    # risk set of sample i = everyone with time >= t_i: extend each index to the last tie of its time
    last = np.searchsorted(-ts, -ts, side="right") - 1
    n_risk, sum_x, sum_x2 = cum_n[last], cum_x[last], cum_x2[last]
    mean_x = sum_x / n_risk[:, None]
    var_x = sum_x2 / n_risk[:, None] - mean_x**2
    return ((xs - mean_x)[es]).sum(0), var_x[es].sum(0)


def harrell_c(risk: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    """The model's C-index (scikit-survival conventions), NaN instead of an error where no pair is comparable (a
    bootstrap resample or a validation fold without events)."""
    try:
        return concordance_index(risk, time, event)
    except ValueError:
        return float("nan")


def mean_gene_r(truth: np.ndarray, predicted: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean over genes of r between measured and predicted values (over the rows `mask` marks), genes where r is
    undefined left out; NaN when it is undefined for every gene."""
    r = per_gene_pearson(truth, predicted, mask)
    return float(np.mean(r[np.isfinite(r)])) if np.isfinite(r).any() else float("nan")


COX_PENALTIES = (0.1, 1.0, 10.0, 100.0, 1000.0)


def fit_cox(x: np.ndarray, time: np.ndarray, event: np.ndarray, penalty: float, ties: str = "breslow",
            n_iter: int = 50, tol: float = 1e-7):
    """Ridge-penalised Cox (scikit-survival CoxPH with `alpha`), on standardised inputs."""
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    model = make_pipeline(StandardScaler(), CoxPHSurvivalAnalysis(alpha=penalty, ties=ties, n_iter=n_iter, tol=tol))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, Surv.from_arrays(event.astype(bool), time))
    return model


def choose_cox_penalty(x: np.ndarray, time: np.ndarray, event: np.ndarray, folds: Sequence[tuple[np.ndarray,
                       np.ndarray]], penalties: Sequence[float] = COX_PENALTIES, **fit_options) -> float:
    """The penalty with the best mean C-index over `folds` ((fit rows, held rows) pairs of the train rows); a fold
    where a fit fails or no pair is comparable does not count; the largest penalty when none could be scored."""
    scores = {}
    for penalty in penalties:
        values = []
        for fit_rows, held_rows in folds:
            try:
                model = fit_cox(x[fit_rows], time[fit_rows], event[fit_rows], penalty, **fit_options)
                values.append(harrell_c(model.predict(x[held_rows]), time[held_rows], event[held_rows]))
            except (ValueError, np.linalg.LinAlgError, ArithmeticError):
                continue
        values = [value for value in values if np.isfinite(value)]
        if values:
            scores[penalty] = float(np.mean(values))
    return max(scores, key=scores.get) if scores else max(penalties)


def tuned_cox_risk(x_train: np.ndarray, t_train: np.ndarray, e_train: np.ndarray, x_test: np.ndarray,
                   validation: np.ndarray, penalties: tuple[float, ...] = COX_PENALTIES) -> tuple[np.ndarray, float]:
    """Pick the Cox penalty by validation C-index (validation = boolean mask over the train rows), refit on all
    train rows, return test risk scores and the chosen penalty."""
    best = choose_cox_penalty(x_train, t_train, e_train, [(~validation, validation)], penalties)
    model = fit_cox(x_train, t_train, e_train, best)
    return model.predict(x_test), best


def bootstrap_interval(metric: Callable[..., float], arrays: Sequence[np.ndarray], n_boot: int,
                       seed: int | Sequence[int]) -> tuple[float, float]:
    """Percentile 95% interval of `metric(*arrays)` over resamples of the rows (how much n test samples allow);
    a resample where the metric is undefined (ValueError or NaN: one class, no comparable pair) is skipped."""
    rng = np.random.default_rng(seed)
    size = len(arrays[0])
    values = []
    for _ in range(n_boot):
        rows = rng.integers(0, size, size)
        try:
            value = metric(*(array[rows] for array in arrays))
        except ValueError:
            continue
        if np.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def mean_c_index(time: np.ndarray, event: np.ndarray, *risks: np.ndarray) -> float:
    """Mean C-index of several risk scores of the same samples (one per seed); NaN when none is defined."""
    values = [value for value in (harrell_c(risk, time, event) for risk in risks) if np.isfinite(value)]
    return float(np.mean(values)) if values else float("nan")


def bootstrap_c_index(risks: list[np.ndarray], time: np.ndarray, event: np.ndarray, n_boot: int = 200,
                      seed: int = 0) -> tuple[float, float, float]:
    """Mean over seeds of the test C-index, with a percentile bootstrap 95% interval over test samples."""
    low, high = bootstrap_interval(mean_c_index, (time, event, *risks), n_boot, seed)
    return mean_c_index(time, event, *risks), low, high
