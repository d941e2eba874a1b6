"""Imputation benchmark: remove test values (MCAR at several rates, missing-not-at-random, whole genes) and compare
GexBERT's restoration with column mean, KNN, iterative (MICE-style) and SoftImpute imputers on the removed entries.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..tasks.baselines import (
    impute_iterative,
    impute_knn,
    impute_mean,
    impute_soft,
    mcar_mask,
    tune_imputer,
)
from ..tasks.imputation import predict_distribution
from ..tokenization_gexbert import GexBertTokenizer

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
    per_gene = []
    for j in range(truth.shape[1]):
        rows = removed[:, j]
        if rows.sum() < 5 or np.std(truth[rows, j]) < 1e-12:
            continue
        # a constant prediction (column mean) carries no per-gene information: r = 0
        per_gene.append(0.0 if np.std(filled[rows, j]) < 1e-12 else np.corrcoef(truth[rows, j], filled[rows, j])[0, 1])
    standardized = (filled - truth) / scale[None, :]
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error))),
            "pearson_r": float(pooled), "per_gene_r": float(np.mean(per_gene)) if per_gene else float("nan"),
            "rmse_standardized": float(np.sqrt(np.mean(standardized[removed] ** 2)))}


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


def run_imputation(
    model,
    tokenizer: GexBertTokenizer,
    raw_train: pd.DataFrame,
    validation: np.ndarray,
    raw_test: pd.DataFrame,
    scenarios: Sequence[str] = ("MCAR 10%", "MCAR 30%", "MCAR 50%", "MCAR 70%", "MCAR 90%", "MNAR 50%",
                                "whole-gene 30%"),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    max_test_rows: int = 400,
    max_reference_rows: int = 1200,
    chunk: int = 256,
    knn_grid: Sequence[int] = (5, 15, 40),
    soft_grid: Sequence[float] = (0.02, 0.05, 0.1, 0.2),
    methods: Sequence[str] = IMPUTERS,
    iterative_rounds: int = 3,
    progress: bool = True,
) -> dict:
    """Every scenario x seed x method on (a random subset of) test samples; values on the tokenizer's working scale.

    KNN's k and SoftImpute's penalty are chosen on the validation part of train (50% MCAR); the iterative imputer
    and SoftImpute see a random train subsample beside the incomplete test rows (transductive, as usual for them).
    """
    work_train = tokenizer.normalize(raw_train.to_numpy(), list(raw_train.columns))
    genes = list(raw_train.columns)
    fit_rows = work_train[~validation]
    rng = np.random.default_rng(0)
    val_rows = np.flatnonzero(validation)
    val_rows = rng.choice(val_rows, size=min(300, len(val_rows)), replace=False)
    reference = fit_rows[rng.choice(len(fit_rows), size=min(max_reference_rows * 2, len(fit_rows)), replace=False)]
    started = time.perf_counter()
    tuning: dict = {}
    knn_k = soft_penalty = None
    if "KNN" in methods:
        knn_k, tuning["KNN"] = tune_imputer("KNN", reference, work_train[val_rows], list(knn_grid))
    if "SoftImpute" in methods:
        soft_penalty, tuning["SoftImpute"] = tune_imputer("SoftImpute", reference, work_train[val_rows],
                                                          list(soft_grid))
    tuning["seconds"] = time.perf_counter() - started
    test_rows = np.sort(np.random.default_rng(1).choice(len(raw_test), size=min(max_test_rows, len(raw_test)),
                                                        replace=False))
    raw = raw_test.iloc[test_rows]
    truth = tokenizer.normalize(raw.to_numpy(), genes)
    center = np.mean(work_train, axis=0)
    scale = np.std(work_train, axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    results: dict = {"scenarios": list(scenarios), "seeds": list(seeds), "n_test_rows": len(test_rows),
                     "chosen": {"KNN_k": knn_k, "SoftImpute_penalty": soft_penalty}, "tuning": tuning,
                     "per_scenario": {}}
    for scenario in tqdm(scenarios, desc="imputation", disable=not progress):
        entry: dict = {"methods": {}, "calibration_80": [], "seconds": {}}
        for seed in seeds:
            mask, absent_columns = scenario_mask(scenario, truth, center, scale, np.random.default_rng([seed, 3]))
            incomplete = np.where(mask, np.nan, truth)
            filled: dict[str, np.ndarray] = {}
            for method in methods:
                t0 = time.perf_counter()
                if method == "GexBERT":
                    shown = [g for j, g in enumerate(genes) if j not in set(absent_columns)]
                    raw_incomplete = pd.DataFrame(np.where(mask, np.nan, raw.to_numpy()), index=raw.index,
                                                  columns=genes)[shown]
                    absent = [genes[j] for j in absent_columns]
                    out = chunked_distribution(model, tokenizer, raw_incomplete, absent, chunk, seed)
                    order = [(shown + absent).index(g) for g in genes]
                    mean = out["mean"][:, order]
                    filled[method] = np.where(mask, mean, truth)
                    lower, upper = out["lower"][:, order], out["upper"][:, order]
                    inside = (truth[mask] >= lower[mask] - 1e-9) & (truth[mask] <= upper[mask] + 1e-9)
                    entry["calibration_80"].append(float(inside.mean()))
                elif method == "column mean":
                    filled[method] = impute_mean(fit_rows, incomplete)
                elif method == "KNN":
                    filled[method] = impute_knn(reference, incomplete, k=knn_k)
                elif method == "Iterative":
                    filled[method] = impute_iterative(reference[:max_reference_rows], incomplete,
                                                      max_iter=iterative_rounds, seed=seed)
                elif method == "SoftImpute":
                    filled[method] = impute_soft(reference, incomplete, soft_penalty,
                                                 max_reference=max_reference_rows, seed=seed)
                entry["seconds"].setdefault(method, []).append(time.perf_counter() - t0)
                metrics = imputation_metrics(truth, filled[method], mask, scale)
                record = entry["methods"].setdefault(method, {key: [] for key in metrics})
                for key, value in metrics.items():
                    record[key].append(value)
        results["per_scenario"][scenario] = entry
    return results
