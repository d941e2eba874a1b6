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

import numpy as np
import pandas as pd
import torch
from sklearn.feature_selection import f_classif
from sklearn.metrics import accuracy_score, f1_score
from tqdm.auto import tqdm

from ..tokenization_gexbert import GexBertTokenizer
from .baselines import CLASSIFIER_GRIDS, fit_predict_proba, tune_classifier

BASELINES = ("LR", "RF", "HGB", "MLP")
# probability averages; the pair differs only in GexBERT's restored genes and embedding feeding the LR member
ENSEMBLES = {"LR+MLP ensemble": ("LR", "MLP"), "GexBERT restore→LR + MLP ensemble": ("GexBERT restore→LR", "MLP")}


@torch.no_grad()
def restore_from_panel(model, tokenizer: GexBertTokenizer, frame: pd.DataFrame, queries: Sequence[str],
                       batch_size: int = 128, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Restored means (working scale, samples x queries) and pooled embeddings (samples x hidden) of `frame`'s
    samples, seeing only `frame`'s columns (the panel) and asking for `queries` as MASK tokens.

    One encoder pass yields both: the pooled embedding of the encoder and the decoder's level distributions.
    """
    from ..modeling_gexbert import expand_attention_mask

    was_training = model.training
    model.eval()
    queries = list(queries)
    query_ids = tokenizer.convert_genes_to_ids(queries) if queries else np.zeros(0, np.int64)
    restored = np.zeros((len(frame), len(queries)))
    pooled = np.zeros((len(frame), model.config.hidden_size))
    for start in tqdm(range(0, len(frame), batch_size), desc="restoring", unit="batch", disable=not progress):
        inputs = tokenizer(frame.iloc[start:start + batch_size], queries=queries or None, return_tensors="pt")
        encoded = model.gexbert(inputs["input_ids"], inputs["level_ids"], inputs["values"],
                                inputs["attention_mask"], return_dict=True)
        pooled[start:start + batch_size] = encoded.pooler_output.float().numpy()
        if queries:
            decoded = model.decoder(encoded.last_hidden_state,
                                    expand_attention_mask(inputs["attention_mask"])).last_hidden_state
            logits = model.level_head(decoded[:, -len(queries):]).float()
            probabilities = torch.softmax(logits, -1).numpy()
            restored[start:start + batch_size] = tokenizer.level_distribution_moments(probabilities, query_ids)[0]
    model.train(was_training)
    return restored, pooled


def informative_queries(work_train: pd.DataFrame, labels: np.ndarray, panel: Sequence[str], max_queries: int
                        ) -> list[str]:
    """The non-panel genes that best separate the classes on train (ANOVA F): those worth restoring."""
    candidates = [gene for gene in work_train.columns if gene not in set(panel)]
    if len(candidates) <= max_queries:
        return candidates
    scores, _ = f_classif(work_train[candidates].to_numpy(), labels)
    scores = np.nan_to_num(scores, nan=-1.0)
    return [candidates[i] for i in np.argsort(-scores)[:max_queries]]


def _add_gexbert_inputs(inputs: dict, entry: dict, model, tokenizer, raw_train, raw_test, work_train, y_train, fit,
                        panel, x_tr, x_te, key, max_queries) -> None:
    """GexBERT restore-then-classify inputs: panel + restored informative genes + pooled embedding."""
    started = time.perf_counter()
    queries = informative_queries(work_train.loc[fit], y_train[fit], panel, max_queries) if key != "all" else []
    restored_tr, pooled_tr = restore_from_panel(model, tokenizer, raw_train[panel], queries)
    restored_te, pooled_te = restore_from_panel(model, tokenizer, raw_test[panel], queries)
    entry["seconds"].setdefault("GexBERT restore", []).append(time.perf_counter() - started)
    g_tr = np.hstack([x_tr, restored_tr, pooled_tr])
    g_te = np.hstack([x_te, restored_te, pooled_te])
    inputs["GexBERT restore→LR"] = (g_tr, g_te, "LR")


def _scores(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    predicted = probabilities.argmax(1)
    return {"accuracy": float(accuracy_score(y_true, predicted)),
            "macro_f1": float(f1_score(y_true, predicted, average="macro"))}


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
) -> dict:
    """Accuracy and macro-F1 on test for every panel size, seed and method.

    `validation` marks the train rows used to choose hyperparameters (chosen on the first seed's panel, then kept
    for the other seeds of that size). Test rows are only predicted, once per method, panel and seed.
    `finetune(panel, seed) -> test probabilities` adds the end-to-end fine-tuned GexBERT where given.
    """
    work_train = pd.DataFrame(tokenizer.normalize(raw_train.to_numpy(), list(raw_train.columns)),
                              index=raw_train.index, columns=raw_train.columns)
    work_test = pd.DataFrame(tokenizer.normalize(raw_test.to_numpy(), list(raw_test.columns)),
                             index=raw_test.index, columns=raw_test.columns)
    genes = list(raw_train.columns)
    n_classes = len(class_names)
    fit = ~validation
    results: dict = {"panel_sizes": [], "seeds": list(seeds), "classes": list(class_names), "per_panel": {}}
    for size in panel_sizes:
        k = len(genes) if size == "all" else int(size)
        key = "all" if size == "all" or k >= len(genes) else str(k)
        if key in results["per_panel"]:
            continue
        results["panel_sizes"].append(key)
        entry: dict = {"n_features": min(k, len(genes)), "methods": {}, "chosen": {}, "seconds": {}}
        # all features: one panel, so seeds only reshuffle the models; two seeds give the spread
        size_seeds = list(seeds)[:2] if key == "all" else list(seeds)
        tuned: dict[str, dict] = {}
        for seed in tqdm(size_seeds, desc=f"panel {key}", disable=not progress, leave=False):
            rng = np.random.default_rng([seed, k])
            panel = genes if key == "all" else sorted(rng.choice(genes, size=k, replace=False).tolist())
            x_tr, x_te = work_train[panel].to_numpy(), work_test[panel].to_numpy()
            inputs = {}
            for name in baselines:
                if name in ("RF", "HGB") and key != "all" and k > heavy_baselines_max_panel:
                    continue
                if name in ("RF", "HGB") and key == "all" and len(genes) > heavy_baselines_max_panel:
                    continue
                inputs[name] = (x_tr, x_te, name)
            if min(k, len(genes)) <= gexbert_max_panel:  # reading every gene costs more than it can add there
                _add_gexbert_inputs(inputs, entry, model, tokenizer, raw_train, raw_test, work_train, y_train, fit,
                                    panel, x_tr, x_te, key, max_queries)
            predicted: dict[str, np.ndarray] = {}
            for method, (a_tr, a_te, learner) in inputs.items():
                started = time.perf_counter()
                if method not in tuned:
                    grid = CLASSIFIER_GRIDS[learner]
                    choice = tune_classifier(learner, a_tr[fit], y_train[fit], a_tr[validation], y_train[validation],
                                             seed=seed, quick=quick, grid=grid)
                    tuned[method] = choice.params
                    entry["chosen"][method] = {"params": repr(choice.params),
                                               "validation_accuracy": choice.validation_scores}
                probabilities = fit_predict_proba(learner, tuned[method], a_tr, y_train, a_te, n_classes, seed, quick)
                predicted[method] = probabilities
                scores = _scores(y_test, probabilities)
                record = entry["methods"].setdefault(method, {"accuracy": [], "macro_f1": []})
                record["accuracy"].append(scores["accuracy"])
                record["macro_f1"].append(scores["macro_f1"])
                entry["seconds"].setdefault(method, []).append(time.perf_counter() - started)
            # equal-weight ensembles: the baseline pair, and the same pair with GexBERT's restoration in the LR
            for method, members in ENSEMBLES.items():
                if all(member in predicted for member in members):
                    scores = _scores(y_test, np.mean([predicted[member] for member in members], axis=0))
                    record = entry["methods"].setdefault(method, {"accuracy": [], "macro_f1": []})
                    record["accuracy"].append(scores["accuracy"])
                    record["macro_f1"].append(scores["macro_f1"])
            if finetune is not None and key != "all" and k in finetune_panels:
                started = time.perf_counter()
                probabilities = finetune(panel, seed)
                if probabilities is not None:
                    scores = _scores(y_test, probabilities)
                    record = entry["methods"].setdefault("GexBERT fine-tuned", {"accuracy": [], "macro_f1": []})
                    record["accuracy"].append(scores["accuracy"])
                    record["macro_f1"].append(scores["macro_f1"])
                    entry["seconds"].setdefault("GexBERT fine-tuned", []).append(time.perf_counter() - started)
        results["per_panel"][key] = entry
    return results
