"""Imputation benchmark: remove test values (MCAR at several rates, missing-not-at-random, whole genes) and compare
GexBERT's restoration with column mean, KNN, iterative (MICE-style) and SoftImpute imputers on the removed entries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..inference import predict_distribution
from ..metrics import per_gene_pearson
from ..tokenization_gexbert import GexBertTokenizer
from .baselines import impute_iterative, impute_knn, impute_mean, impute_soft, mcar_mask, tune_imputer
from .stage_budget import StageBudget, budgeted_rounds

IMPUTERS = ("GexBERT", "column mean", "KNN", "Iterative", "SoftImpute")


def chunked_distribution(model, tokenizer: GexBertTokenizer, raw: pd.DataFrame, absent: Sequence[str],
                         chunk: int, seed: int = 0, batch_size: int = 64) -> dict[str, np.ndarray]:
    """GexBERT's restored mean and 80% interval for every NaN of `raw` and every gene of `absent`, reading the
    genes in random groups of about `chunk` (the gene-set size the model was pretrained on; attention cost grows with
    its square). Returns working-scale arrays over `list(raw.columns) + list(absent)`."""
    columns = list(raw.columns) + list(absent)
    n_groups = max(1, int(np.ceil(len(columns) / chunk)))
    order = np.random.default_rng([seed, 5]).permutation(len(columns))
    mean = np.full((len(raw), len(columns)), np.nan)
    lower, upper = mean.copy(), mean.copy()
    present = set(raw.columns)
    for group in np.array_split(order, n_groups):
        names = [columns[i] for i in group]
        shown = [name for name in names if name in present]
        asked = [name for name in names if name not in present]
        frame = raw[shown] if shown else raw.iloc[:, :0]
        restored = predict_distribution(model, tokenizer, frame, genes=asked, batch_size=batch_size)
        position = {gene: j for j, gene in enumerate(restored.genes)}
        for i in group:
            j = position[columns[i]]
            mean[:, i], lower[:, i], upper[:, i] = restored.mean[:, j], restored.lower[:, j], restored.upper[:, j]
    return {"mean": mean, "lower": lower, "upper": upper}


def imputation_metrics(truth: np.ndarray, filled: np.ndarray, removed: np.ndarray, scale: np.ndarray) -> dict:
    """RMSE, MAE, pooled r over removed entries; mean per-gene r; RMSE of per-gene standardised values."""
    error = filled[removed] - truth[removed]
    pooled = np.corrcoef(truth[removed], filled[removed])[0, 1] if removed.sum() > 2 else np.nan
    standardized = (filled - truth) / scale[None, :]
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error))),
            "pearson_r": float(pooled), "per_gene_r": mean_per_gene_r(truth, filled, removed),
            "rmse_standardized": float(np.sqrt(np.mean(standardized[removed] ** 2)))}


def mean_per_gene_r(truth: np.ndarray, filled: np.ndarray, removed: np.ndarray, min_removed: int = 5) -> float:
    """Mean over genes with at least `min_removed` removed, varying entries of their r (removed truth vs filled);
    a constant prediction (column mean) carries no per-gene information and scores 0, not undefined."""
    r = per_gene_pearson(truth, filled, removed)
    scored = (removed.sum(axis=0) >= min_removed) & (_spread(truth, removed) >= 1e-12)
    r = np.where(_spread(filled, removed) < 1e-12, 0.0, r)
    return float(np.mean(r[scored])) if scored.any() else float("nan")


def _spread(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per column: the standard deviation of the entries `rows` marks (0 where fewer than one)."""
    return np.array([np.std(matrix[rows[:, j], j]) if rows[:, j].any() else 0.0 for j in range(matrix.shape[1])])


def scenario_mask(name: str, truth: np.ndarray, center: np.ndarray, scale: np.ndarray, rng: np.random.Generator
                  ) -> tuple[np.ndarray, list[int]]:
    """Boolean removal mask and, for the whole-gene scenario, the removed columns."""
    if name.startswith("MCAR"):
        return mcar_mask(truth.shape, int(name.split()[1].rstrip("%")) / 100, rng), []
    if name.startswith("MNAR"):
        # low values leave more often: removal probability falls logistically with the standardised value
        z = (truth - center[None, :]) / scale[None, :]
        weight = 1.0 / (1.0 + np.exp(2.0 * z))
        probability = np.clip(weight * (0.5 / weight.mean()), 0, 0.98)
        mask = rng.random(truth.shape) < probability
        full = mask.all(axis=1)
        mask[np.flatnonzero(full), 0] = False
        return mask, []
    if name.startswith("whole-gene"):
        share = int(name.split()[1].rstrip("%")) / 100
        columns = sorted(rng.choice(truth.shape[1], size=max(1, int(round(share * truth.shape[1]))),
                                    replace=False).tolist())
        mask = np.zeros(truth.shape, dtype=bool)
        mask[:, columns] = True
        return mask, columns
    raise ValueError(f"unknown missingness scenario {name!r}")


@dataclass
class _Imputers:
    """Every method of the benchmark, ready to fill the test rows: GexBERT and the baselines fitted on train."""

    model: object
    tokenizer: GexBertTokenizer
    raw: pd.DataFrame  # the test rows as given
    truth: np.ndarray  # the same on the working scale
    fit_rows: np.ndarray  # train minus validation, working scale
    reference: np.ndarray  # a random subsample of fit_rows (KNN, iterative, SoftImpute)
    knn_k: int | None
    soft_penalty: float | None
    chunk: int
    max_reference_rows: int
    iterative_rounds: int
    soft_max_iter: int = 40

    def fill(self, method: str, mask: np.ndarray, absent_columns: list[int], seed: int
             ) -> tuple[np.ndarray, float | None]:
        """`truth` with the `mask` entries filled by `method`, and GexBERT's 80% interval coverage (else None)."""
        if method == "GexBERT":
            return self._gexbert(mask, absent_columns, seed)
        incomplete = np.where(mask, np.nan, self.truth)
        if method == "column mean":
            return impute_mean(self.fit_rows, incomplete), None
        if method == "KNN":
            return impute_knn(self.reference, incomplete, k=self.knn_k), None
        if method == "Iterative":
            return impute_iterative(self.reference[:self.max_reference_rows], incomplete,
                                    max_iter=self.iterative_rounds, seed=seed), None
        if method == "SoftImpute":
            return impute_soft(self.reference, incomplete, self.soft_penalty, max_reference=self.max_reference_rows,
                               seed=seed, max_iter=self.soft_max_iter), None
        raise ValueError(f"unknown imputer {method!r}; choose from {IMPUTERS}")

    def _gexbert(self, mask: np.ndarray, absent_columns: list[int], seed: int) -> tuple[np.ndarray, float]:
        """GexBERT reads the kept values (whole removed genes left out of its input) and restores the rest."""
        genes = list(self.raw.columns)
        shown = [g for j, g in enumerate(genes) if j not in set(absent_columns)]
        raw_incomplete = pd.DataFrame(np.where(mask, np.nan, self.raw.to_numpy()), index=self.raw.index,
                                      columns=genes)[shown]
        absent = [genes[j] for j in absent_columns]
        out = chunked_distribution(self.model, self.tokenizer, raw_incomplete, absent, self.chunk, seed)
        order = [(shown + absent).index(g) for g in genes]
        lower, upper = out["lower"][:, order], out["upper"][:, order]
        inside = (self.truth[mask] >= lower[mask] - 1e-9) & (self.truth[mask] <= upper[mask] + 1e-9)
        return np.where(mask, out["mean"][:, order], self.truth), float(inside.mean())


# Tuning fills the validation rows once per grid point (7 full-width fills before any test value is imputed: ~55 s
# at 300 samples x 20,000 genes on one core, growing with samples x genes). k and the penalty (a fraction of the top
# singular value) are chosen on a seeded random subset of at most this many genes instead; narrower profiles
# (every committed folder) are tuned on all their genes, as before.
TUNING_MAX_GENES = 2000


def _tune_baselines(reference: np.ndarray, validation_rows: np.ndarray, methods: Sequence[str],
                    knn_grid: Sequence[int], soft_grid: Sequence[float]) -> tuple[int | None, float | None, dict]:
    """KNN's k and SoftImpute's penalty chosen on validation rows (50% MCAR), with the scores of every choice; wide
    profiles are tuned on a random subset of TUNING_MAX_GENES genes."""
    started = time.perf_counter()
    genes = np.sort(np.random.default_rng(12).choice(reference.shape[1], size=min(TUNING_MAX_GENES,
                                                                                   reference.shape[1]), replace=False))
    reference, validation_rows = reference[:, genes], validation_rows[:, genes]
    tuning: dict = {"genes": len(genes), "reference_rows": len(reference), "validation_rows": len(validation_rows)}
    knn_k = soft_penalty = None
    if "KNN" in methods:
        knn_k, tuning["KNN"] = tune_imputer("KNN", reference, validation_rows, list(knn_grid))
    if "SoftImpute" in methods:
        soft_penalty, tuning["SoftImpute"] = tune_imputer("SoftImpute", reference, validation_rows, list(soft_grid))
    tuning["seconds"] = time.perf_counter() - started
    return knn_k, soft_penalty, tuning


def _run_seed(imputers: _Imputers, entry: dict, scenario: str, seed: int, methods: Sequence[str],
              center: np.ndarray, scale: np.ndarray) -> None:
    """One scenario's removal mask for one seed: every method's fill, its metrics and its time, added to `entry`."""
    mask, absent_columns = scenario_mask(scenario, imputers.truth, center, scale, np.random.default_rng([seed, 3]))
    mask &= ~np.isnan(imputers.truth)  # a cohort's own missing cells: filled by every method, scored by none
    for method in methods:
        started = time.perf_counter()
        filled, coverage = imputers.fill(method, mask, absent_columns, seed)
        if coverage is not None:
            entry["calibration_80"].append(coverage)
        entry["seconds"].setdefault(method, []).append(time.perf_counter() - started)
        metrics = imputation_metrics(imputers.truth, filled, mask, scale)
        record = entry["methods"].setdefault(method, {key: [] for key in metrics})
        for key, value in metrics.items():
            record[key].append(value)
    entry["seeds"].append(seed)


def run_scenario(imputers: _Imputers, scenario: str, seeds: Sequence[int], methods: Sequence[str],
                 center: np.ndarray, scale: np.ndarray) -> dict:
    """One missingness scenario over `seeds`: per seed a removal mask, every method's fill, its metrics and time."""
    entry: dict = {"methods": {}, "calibration_80": [], "seconds": {}, "seeds": []}
    for seed in seeds:
        _run_seed(imputers, entry, scenario, seed, methods, center, scale)
    return entry


def prepare_imputers(
    model,
    tokenizer: GexBertTokenizer,
    raw_train: pd.DataFrame,
    validation: np.ndarray,
    raw_test: pd.DataFrame,
    max_test_rows: int = 400,
    max_reference_rows: int = 1200,
    chunk: int = 256,
    knn_grid: Sequence[int] = (5, 15, 40),
    soft_grid: Sequence[float] = (0.02, 0.05, 0.1, 0.2),
    methods: Sequence[str] = IMPUTERS,
    iterative_rounds: int = 3,
    tuning_rows: int = 300,
    tuning_genes: int | None = None,
    soft_max_iter: int = 40,
) -> tuple[_Imputers, np.ndarray, np.ndarray, dict]:
    """Every method ready to fill (a random subset of) the test rows, with the per-gene centre and scale of train
    and the results' header (chosen k and penalty, their tuning scores).

    KNN's k and SoftImpute's penalty are chosen on at most `tuning_rows` validation rows of train (50% MCAR), on a
    seeded random `tuning_genes` of the genes when given (wide profiles: the choice, not the final fill, is made on
    the subset); the iterative imputer and SoftImpute see a random train subsample beside the incomplete test rows
    (transductive, as usual for them).
    """
    work_train = tokenizer.normalize(raw_train.to_numpy(), list(raw_train.columns))
    fit_rows = work_train[~validation]
    rng = np.random.default_rng(0)
    val_rows = np.flatnonzero(validation)
    val_rows = rng.choice(val_rows, size=min(tuning_rows, len(val_rows)), replace=False)
    reference = fit_rows[rng.choice(len(fit_rows), size=min(max_reference_rows * 2, len(fit_rows)), replace=False)]
    columns = np.arange(work_train.shape[1])
    if tuning_genes is not None and len(columns) > tuning_genes:
        columns = np.sort(np.random.default_rng(2).choice(len(columns), size=tuning_genes, replace=False))
    knn_k, soft_penalty, tuning = _tune_baselines(reference[:, columns], work_train[val_rows][:, columns], methods,
                                                  knn_grid, soft_grid)
    test_rows = np.sort(np.random.default_rng(1).choice(len(raw_test), size=min(max_test_rows, len(raw_test)),
                                                        replace=False))
    raw = raw_test.iloc[test_rows]
    imputers = _Imputers(model, tokenizer, raw, tokenizer.normalize(raw.to_numpy(), list(raw_train.columns)),
                         fit_rows, reference, knn_k, soft_penalty, chunk, max_reference_rows, iterative_rounds,
                         soft_max_iter)
    center = np.nanmean(work_train, axis=0)  # scattered missing cells in the cohort's train split
    scale = np.nanstd(work_train, axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    header = {"n_test_rows": len(test_rows), "chosen": {"KNN_k": knn_k, "SoftImpute_penalty": soft_penalty},
              "tuning": tuning}
    return imputers, center, scale, header


IMPUTATION_SCENARIOS = ("MCAR 10%", "MCAR 30%", "MCAR 50%", "MCAR 70%", "MCAR 90%", "MNAR 50%", "whole-gene 30%")


def run_imputation(
    model,
    tokenizer: GexBertTokenizer,
    raw_train: pd.DataFrame,
    validation: np.ndarray,
    raw_test: pd.DataFrame,
    scenarios: Sequence[str] = IMPUTATION_SCENARIOS,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    methods: Sequence[str] = IMPUTERS,
    progress: bool = True,
    budget: StageBudget | None = None,
    checkpoint: Callable[[dict], None] | None = None,
    **settings,
) -> dict:
    """Every scenario x seed x method on (a random subset of) test samples; values on the tokenizer's working scale.

    `settings` are `prepare_imputers`' (test and reference rows, genes per GexBERT pass, grids, rounds). Seeds run
    seed-major (every scenario's first mask first); a later seed starts only while `budget` expects it to fit, and
    `checkpoint(results so far)` is called after each scenario's seed, so a killed run keeps what finished.
    """
    imputers, center, scale, header = prepare_imputers(model, tokenizer, raw_train, validation, raw_test,
                                                       methods=methods, **settings)
    results: dict = {"scenarios": list(scenarios), "seeds": list(seeds), **header,
                     "per_scenario": {scenario: {"methods": {}, "calibration_80": [], "seconds": {}, "seeds": []}
                                      for scenario in scenarios}, "skipped_by_budget": []}
    plan = {scenario: list(seeds) for scenario in scenarios}
    for scenario, seed in tqdm(budgeted_rounds(budget, plan), total=len(scenarios) * len(seeds), desc="imputation",
                               disable=not progress):
        _run_seed(imputers, results["per_scenario"][scenario], scenario, seed, methods, center, scale)
        results["skipped_by_budget"] = list(budget.skipped) if budget is not None else []
        if checkpoint is not None:
            checkpoint(results)
    results["skipped_by_budget"] = list(budget.skipped) if budget is not None else []
    return results
