"""Cancer-type classification from a limited random gene panel: GexBERT against tuned baselines on the same panels.

GexBERT's lever here is restoration: the pretrained model reads the panel, restores the unseen genes that matter for
the task (entered as MASK queries) and exposes its pooled sample embedding; a validation-tuned logistic regression
then reads [panel, restored genes, embedding] ("restore-then-classify"; an MLP on the same inputs scored below the
panel-only MLP on tcga31 validation and was dropped for its cost). Fine-tuning the encoder end to end is optional (it
needs `gexbert_hf.training.finetune`) and costs far more CPU time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.feature_selection import f_classif
from sklearn.metrics import accuracy_score, f1_score
from tqdm.auto import tqdm

from ..inference import restore_from_panel
from ..tokenization_gexbert import GexBertTokenizer
from .baselines import CLASSIFIER_GRIDS, fit_predict_proba, tune_classifier
from .stage_budget import StageBudget, budgeted_rounds
from .working_scale import working_frame

BASELINES = ("LR", "RF", "HGB", "MLP")
# probability averages; the pair differs only in GexBERT's restored genes and embedding feeding the LR member
ENSEMBLES = {"LR+MLP ensemble": ("LR", "MLP"), "GexBERT restore→LR + MLP ensemble": ("GexBERT restore→LR", "MLP")}


def informative_queries(work_train: pd.DataFrame, labels: np.ndarray, panel: Sequence[str], max_queries: int
                        ) -> list[str]:
    """The non-panel genes that best separate the classes on train (ANOVA F): those worth restoring."""
    candidates = [gene for gene in work_train.columns if gene not in set(panel)]
    if len(candidates) <= max_queries:
        return candidates
    scores, _ = f_classif(work_train[candidates].to_numpy(), labels)
    scores = np.nan_to_num(scores, nan=-1.0)
    return [candidates[i] for i in np.argsort(-scores)[:max_queries]]


def _scores(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    predicted = probabilities.argmax(1)
    return {"accuracy": float(accuracy_score(y_true, predicted)),
            "macro_f1": float(f1_score(y_true, predicted, average="macro"))}


def record_scores(entry: dict, method: str, y_test: np.ndarray, probabilities: np.ndarray) -> None:
    """Append one panel's test accuracy and macro-F1 of `method` to `entry`."""
    scores = _scores(y_test, probabilities)
    record = entry["methods"].setdefault(method, {"accuracy": [], "macro_f1": []})
    record["accuracy"].append(scores["accuracy"])
    record["macro_f1"].append(scores["macro_f1"])


@dataclass
class PanelTask:
    """The data and settings every panel of the classification task shares."""

    model: object
    tokenizer: GexBertTokenizer
    raw_train: pd.DataFrame
    raw_test: pd.DataFrame
    work_train: pd.DataFrame
    work_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    validation: np.ndarray
    n_classes: int
    baselines: Sequence[str]
    heavy_baselines_max_panel: int
    gexbert_max_panel: int
    max_queries: int
    quick: bool

    def inputs(self, panel: list[str], key: str, k: int, entry: dict) -> dict[str, tuple]:
        """method -> (train inputs, test inputs, learner): the panel for each baseline, and GexBERT's
        restore-then-classify inputs where the panel is small enough for restoring to add something."""
        genes = list(self.raw_train.columns)
        x_tr, x_te = self.work_train[panel].to_numpy(), self.work_test[panel].to_numpy()
        size = len(genes) if key == "all" else k
        inputs = {name: (x_tr, x_te, name) for name in self.baselines
                  if name not in ("RF", "HGB") or size <= self.heavy_baselines_max_panel}
        if min(k, len(genes)) <= self.gexbert_max_panel:  # reading every gene costs more than it can add there
            inputs["GexBERT restore→LR"] = self._gexbert_inputs(panel, x_tr, x_te, key, entry)
        return inputs

    def _gexbert_inputs(self, panel: list[str], x_tr: np.ndarray, x_te: np.ndarray, key: str, entry: dict) -> tuple:
        """GexBERT restore-then-classify inputs: panel + restored informative genes + pooled embedding."""
        started = time.perf_counter()
        fit = ~self.validation
        queries = (informative_queries(self.work_train.loc[fit], self.y_train[fit], panel, self.max_queries)
                   if key != "all" else [])
        restored_tr, pooled_tr = restore_from_panel(self.model, self.tokenizer, self.raw_train[panel], queries)
        restored_te, pooled_te = restore_from_panel(self.model, self.tokenizer, self.raw_test[panel], queries)
        entry["seconds"].setdefault("GexBERT restore", []).append(time.perf_counter() - started)
        return np.hstack([x_tr, restored_tr, pooled_tr]), np.hstack([x_te, restored_te, pooled_te]), "LR"

    def predict(self, method: str, inputs: tuple, seed: int, tuned: dict[str, dict], entry: dict) -> np.ndarray:
        """Test probabilities of one method: hyperparameters tuned on validation at its first panel, then refit on
        all of train."""
        a_tr, a_te, learner = inputs
        fit, validation = ~self.validation, self.validation
        if method not in tuned:
            choice = tune_classifier(learner, a_tr[fit], self.y_train[fit], a_tr[validation], self.y_train[validation],
                                     seed=seed, quick=self.quick, grid=CLASSIFIER_GRIDS[learner])
            tuned[method] = choice.params
            entry["chosen"][method] = {"params": repr(choice.params), "validation_accuracy": choice.validation_scores}
        return fit_predict_proba(learner, tuned[method], a_tr, self.y_train, a_te, self.n_classes, seed, self.quick)

    def run_panel(self, panel: list[str], key: str, k: int, seed: int, tuned: dict[str, dict], entry: dict) -> None:
        """Every method on one panel, then the equal-weight ensembles (the baseline pair, and the same pair with
        GexBERT's restoration in the LR)."""
        predicted: dict[str, np.ndarray] = {}
        for method, inputs in self.inputs(panel, key, k, entry).items():
            started = time.perf_counter()
            predicted[method] = self.predict(method, inputs, seed, tuned, entry)
            record_scores(entry, method, self.y_test, predicted[method])
            entry["seconds"].setdefault(method, []).append(time.perf_counter() - started)
        for method, members in ENSEMBLES.items():
            if all(member in predicted for member in members):
                record_scores(entry, method, self.y_test, np.mean([predicted[member] for member in members], axis=0))


def _finetuned(entry: dict, finetune: Callable, panel: list[str], seed: int, y_test: np.ndarray) -> None:
    """The end-to-end fine-tuned GexBERT on one panel, when `finetune` returns its test probabilities."""
    started = time.perf_counter()
    probabilities = finetune(panel, seed)
    if probabilities is not None:
        record_scores(entry, "GexBERT fine-tuned", y_test, probabilities)
        entry["seconds"].setdefault("GexBERT fine-tuned", []).append(time.perf_counter() - started)


def run_panel_classification(
    model,
    tokenizer: GexBertTokenizer,
    raw_train: pd.DataFrame,
    y_train: np.ndarray,
    validation: np.ndarray,
    raw_test: pd.DataFrame,
    y_test: np.ndarray,
    class_names: Sequence[str],
    panel_sizes: Sequence[int | str],
    seeds: Sequence[int],
    baselines: Sequence[str] = BASELINES,
    heavy_baselines_max_panel: int = 10**9,
    gexbert_max_panel: int = 10**9,
    max_queries: int = 128,
    quick: bool = False,
    finetune: Callable | None = None,
    finetune_panels: Sequence[int] = (),
    progress: bool = True,
    budget: StageBudget | None = None,
    checkpoint: Callable[[dict], None] | None = None,
) -> dict:
    """Accuracy and macro-F1 on test for every panel size, seed and method.

    `validation` marks the train rows used to choose hyperparameters (chosen on the first seed's panel, then kept
    for the other seeds of that size). Test rows are only predicted, once per method, panel and seed.
    `finetune(panel, seed) -> test probabilities` adds the end-to-end fine-tuned GexBERT where given. Seeds run
    seed-major (every size's first panel first); a later seed starts only while `budget` expects it to fit, and
    `checkpoint(results so far)` is called after each panel.
    """
    task = PanelTask(model, tokenizer, raw_train, raw_test, working_frame(tokenizer, raw_train),
                      working_frame(tokenizer, raw_test), y_train, y_test, validation, len(class_names), baselines,
                      heavy_baselines_max_panel, gexbert_max_panel, max_queries, quick)
    genes = list(raw_train.columns)
    sizes: dict[str, int] = {}
    for size in panel_sizes:
        k = len(genes) if size == "all" else int(size)
        sizes.setdefault("all" if size == "all" or k >= len(genes) else str(k), k)
    results: dict = {"panel_sizes": list(sizes), "seeds": list(seeds), "classes": list(class_names),
                     "skipped_by_budget": [],
                     "per_panel": {key: {"n_features": min(k, len(genes)), "methods": {}, "chosen": {}, "seconds": {},
                                         "seeds": []} for key, k in sizes.items()}}
    tuned: dict[str, dict[str, dict]] = {key: {} for key in sizes}
    # all features: one panel, so seeds only reshuffle the models; two seeds give the spread
    plan = {f"panel {key}": list(seeds)[:2] if key == "all" else list(seeds) for key in sizes}
    for item, seed in tqdm(budgeted_rounds(budget, plan), total=sum(map(len, plan.values())), desc="classification",
                           disable=not progress):
        key = item.removeprefix("panel ")
        k, entry = sizes[key], results["per_panel"][key]
        panel = genes if key == "all" else sorted(np.random.default_rng([seed, k]).choice(genes, size=k,
                                                                                         replace=False).tolist())
        task.run_panel(panel, key, k, seed, tuned[key], entry)
        if finetune is not None and key != "all" and k in finetune_panels:
            _finetuned(entry, finetune, panel, seed, y_test)
        entry["seeds"].append(seed)
        results["skipped_by_budget"] = list(budget.skipped) if budget is not None else []
        if checkpoint is not None:
            checkpoint(results)
    results["skipped_by_budget"] = list(budget.skipped) if budget is not None else []
    return results
