"""Every designed panel judged on the test split with the same readers: classification (LR and MLP on the raw panel,
GexBERT panel + restored genes + pooled embedding -> LR) and restoration of every gene outside the panel (GexBERT,
KNN, ridge). Readers are tuned on the validation part of train and refitted on the train rows used here.

Panels are judged in priority order (the GexBERT design, then the classical designs, then random panels seed by
seed) while the time budget lasts; what does not fit is recorded as skipped, never silently dropped.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import accuracy_score, f1_score

from ..inference import restore_from_panel
from ..metrics import per_gene_pearson, rmse
from ..tokenization_gexbert import GexBertTokenizer
from .baselines import CLASSIFIER_GRIDS, fit_predict_proba, impute_knn, tune_classifier
from .benchmark_data import FolderData
from .panel_classification import informative_queries

RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
GEXBERT_READER = "GexBERT panel+restored→LR"


@dataclass
class PanelBench:
    """The rows, scales and settings every panel is judged with."""

    model: object
    tokenizer: GexBertTokenizer
    data: FolderData
    train_rows: np.ndarray  # rows of data.raw_train the readers are fitted on
    restore_rows: np.ndarray  # rows of data.raw_test whose unmeasured genes are restored
    labels_train: np.ndarray | None
    labels_test: np.ndarray | None
    max_queries: int = 64
    genes_per_pass: int = 128
    quick: bool = False

    def __post_init__(self):
        genes = list(self.data.raw_train.columns)
        self.genes = genes
        self.work_train = self.tokenizer.normalize(self.data.raw_train.to_numpy()[self.train_rows], genes)
        self.work_test = self.tokenizer.normalize(self.data.raw_test.to_numpy(), genes)
        self.validation = self.data.validation[self.train_rows]

    # ------------------------------------------------------------------------------------------------------------------
    # classification
    # ------------------------------------------------------------------------------------------------------------------
    def classify(self, panel: list[str]) -> dict:
        """Test accuracy and macro-F1 of each reader of `panel`."""
        columns = [self.genes.index(g) for g in panel]
        inputs = {"LR": (self.work_train[:, columns], self.work_test[:, columns], "LR"),
                  "MLP": (self.work_train[:, columns], self.work_test[:, columns], "MLP")}
        inputs[GEXBERT_READER] = self._gexbert_features(panel, columns)
        return {method: self._read(*arrays) for method, arrays in inputs.items()}

    def _gexbert_features(self, panel: list[str], columns: list[int]) -> tuple:
        fit = ~self.validation
        queries = informative_queries_frame(self.work_train[fit], self.genes, self.labels_train[fit], panel,
                                            self.max_queries)
        raw_train = self.data.raw_train.iloc[self.train_rows][panel]
        restored_tr, pooled_tr = restore_from_panel(self.model, self.tokenizer, raw_train, queries)
        restored_te, pooled_te = restore_from_panel(self.model, self.tokenizer, self.data.raw_test[panel], queries)
        return (np.hstack([self.work_train[:, columns], restored_tr, pooled_tr]),
                np.hstack([self.work_test[:, columns], restored_te, pooled_te]), "LR")

    def _read(self, x_train: np.ndarray, x_test: np.ndarray, learner: str) -> dict:
        fit, validation, y = ~self.validation, self.validation, self.labels_train
        grid = CLASSIFIER_GRIDS[learner][:2] if self.quick and learner == "MLP" else CLASSIFIER_GRIDS[learner]
        choice = tune_classifier(learner, x_train[fit], y[fit], x_train[validation], y[validation], quick=self.quick,
                                 grid=grid)
        classes = np.unique(y)
        probabilities = fit_predict_proba(learner, choice.params, x_train, np.searchsorted(classes, y), x_test,
                                          len(classes), quick=self.quick)
        predicted = classes[probabilities.argmax(1)]
        return {"accuracy": float(accuracy_score(self.labels_test, predicted)),
                "macro_f1": float(f1_score(self.labels_test, predicted, average="macro")),
                "params": repr(choice.params)}

    # ------------------------------------------------------------------------------------------------------------------
    # restoration
    # ------------------------------------------------------------------------------------------------------------------
    def restore(self, panel: list[str]) -> dict:
        """RMSE and per-gene r (working scale) of every gene outside `panel` on the restoration test rows."""
        inside = [self.genes.index(g) for g in panel]
        outside = [i for i in range(len(self.genes)) if i not in set(inside)]
        truth = self.work_test[self.restore_rows][:, outside]
        predictions = {"GexBERT": self._gexbert_restore(panel, outside),
                       "KNN": self._knn(inside, outside), "ridge": self._ridge(inside, outside)}
        results = {}
        for method, predicted in predictions.items():
            r = per_gene_pearson(truth, predicted)
            results[method] = {"rmse": rmse(truth, predicted), "mean_gene_r": float(np.nanmean(r)),
                               "median_gene_r": float(np.nanmedian(r))}
        return results

    def _gexbert_restore(self, panel: list[str], outside: list[int]) -> np.ndarray:
        frame = self.data.raw_test.iloc[self.restore_rows][panel]
        names = [self.genes[i] for i in outside]
        parts = [restore_from_panel(self.model, self.tokenizer, frame, names[start:start + self.genes_per_pass])[0]
                 for start in range(0, len(names), self.genes_per_pass)]
        return np.hstack(parts)

    def _knn(self, inside: list[int], outside: list[int]) -> np.ndarray:
        incomplete = self.work_test[self.restore_rows].copy()
        incomplete[:, outside] = np.nan
        reference = self.work_train[~self.validation]
        return impute_knn(reference, incomplete, k=10)[:, outside]

    def _ridge(self, inside: list[int], outside: list[int]) -> np.ndarray:
        fit, validation = ~self.validation, self.validation
        x, y = self.work_train[:, inside], self.work_train[:, outside]
        errors = {alpha: float(np.mean((Ridge(alpha=alpha).fit(x[fit], y[fit]).predict(x[validation])
                                        - y[validation]) ** 2)) for alpha in RIDGE_ALPHAS}
        best = min(errors, key=errors.get)
        return Ridge(alpha=best).fit(x, y).predict(self.work_test[self.restore_rows][:, inside])


def informative_queries_frame(work: np.ndarray, genes: list[str], labels: np.ndarray, panel: list[str],
                              max_queries: int) -> list[str]:
    """`informative_queries` of the study, on an array."""
    import pandas as pd

    return informative_queries(pd.DataFrame(work, columns=genes), labels, panel, max_queries)


def judge_panels(bench: PanelBench, panels: list[tuple[str, int, list[str]]], classify: bool, restore: bool,
                 deadline: float, say: Callable[[str], None], on_result: Callable[[dict], None] | None = None
                 ) -> dict:
    """Every (method, size, panel) in the given order while the deadline allows; results per method and size."""
    results: dict = {"per_panel": [], "skipped": []}
    seconds: dict[int, list[float]] = {}
    for method, size, panel in panels:
        expected = float(np.median(seconds[size])) if size in seconds else max(
            (max(values) for values in seconds.values()), default=0.0)
        if time.perf_counter() + expected > deadline:
            results["skipped"].append({"method": method, "size": size})
            continue
        started = time.perf_counter()
        entry = {"method": method, "size": size, "genes": panel}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if classify:
                entry["classification"] = bench.classify(panel)
            if restore:
                entry["restoration"] = bench.restore(panel)
        entry["seconds"] = time.perf_counter() - started
        seconds.setdefault(size, []).append(entry["seconds"])
        results["per_panel"].append(entry)
        say(f"judged {method} K={size} in {entry['seconds']:.0f} s")
        if on_result is not None:
            on_result(results)
    if results["skipped"]:
        say(f"{len(results['skipped'])} panels skipped for time")
    return results


def summary_rows(results: dict) -> dict:
    """(method family, size) -> reader -> metric -> mean over its panels (random panels averaged over seeds)."""
    table: dict = {}
    for entry in results["per_panel"]:
        family = "random" if entry["method"].startswith("random") else entry["method"]
        cell = table.setdefault(family, {}).setdefault(entry["size"], {})
        for kind in ("classification", "restoration"):
            for reader, metrics in entry.get(kind, {}).items():
                for metric, value in metrics.items():
                    if isinstance(value, float):
                        cell.setdefault(f"{reader}|{metric}", []).append(value)
    return {family: {size: {key: float(np.mean(values)) for key, values in cell.items()}
                     for size, cell in sizes.items()} for family, sizes in table.items()}
