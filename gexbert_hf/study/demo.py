"""`gexbert demo` (`make demo`): the whole story on one cohort in a few CPU minutes, each result beside its baseline.

1. pretrain a small GexBERT (masked-expression restoration) on the training samples;
2. classify (ER status for the embedded cohort) from a 16-gene panel: fine-tuned GexBERT vs logistic regression;
3. survival: restore the most prognostic "anchor" genes from the panel and fit Cox models on the panel alone, the
   panel + GexBERT-restored anchors, + ridge-restored anchors, and + the true anchors (the reference it aims at);
4. impute 50% missing values of test samples: GexBERT vs column means and KNN.

Everything is fitted on the training split (anchors, panel, tokenizer, baselines, hyperparameters); the test split
is only predicted. Numbers are written as they come out, wins and losses alike.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.cohorts import Cohort, load_embedded_cohort
from ..data.samples import EncodedSamples
from ..data.splits import split_validation
from ..errors import ClinicalInputError
from ..inference import class_probabilities, predict, predict_distribution
from ..levels_gexbert import auto_normalization
from ..metrics import concordance_index
from ..modeling_gexbert import GexBertForMaskedExpression
from ..outputs import claim_output_dir
from ..tokenization_gexbert import GexBertTokenizer
from ..training.options import FinetuningOptions, PretrainingOptions
from ..training.presets import build_config
from .baselines import (
    COX_PENALTIES,
    bootstrap_interval,
    choose_cox_penalty,
    fit_cox,
    impute_knn,
    impute_mean,
    mean_gene_r,
    univariate_cox_z,
)
from .demo_report import render_report, summary_table
from .embedding_map import embedding_map
from .reports import atomic_write, bar_plot, line_plot, write_json
from .training_runs import finetune_in_memory, pretrain_in_memory


@dataclass
class DemoArguments:
    """`gexbert demo`: pretraining, panel classification, anchor restoration for survival, imputation."""

    output: str = field(default="reports/demo", metadata={"help": "Report folder (report.md, PNGs, results.json)."})
    data_dir: str | None = field(default=None, metadata={"help": "A folder laid out like ../shared/data/* "
                                                                  "(default: the embedded GSE7390 cohort)."})
    label_column: str | None = field(default=None, metadata={"help": "Class column (default: er for the embedded "
                                                                      "cohort, cancer_type for --data_dir)."})
    quick: bool = field(default=False, metadata={"help": "A tiny model and few steps: seconds, for tests."})
    panel_size: int = field(default=16, metadata={"help": "Genes on the limited panel."})
    num_anchors: int = field(default=4, metadata={"help": "Prognostic anchor genes restored for survival."})
    missing_fraction: float = field(default=0.5, metadata={"help": "Share of test values hidden for imputation."})
    max_genes: int = field(default=256, metadata={"help": "At most this many genes (most variable on train)."})
    pretrain_steps: int | None = field(default=None, metadata={"help": "Pretraining steps (default by mode)."})
    seed: int = field(default=0, metadata={"help": "Seed of split, panel, masking and training."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an earlier demo report in --output (only the "
                                                             "files it wrote)."})


@dataclass
class _Setting:
    preset: str
    model_overrides: dict
    pretrain_steps: int
    finetune_epochs: float
    bootstrap: int


# sized on 2 CPU cores: ~1 minute of pretraining; the embedded cohort has only ~130 training profiles
FULL = _Setting("small", {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 3,
                          "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
                          "value_embedding": "both", "max_genes": 96}, 500, 40, 500)
QUICK = _Setting("tiny", {}, 20, 2, 20)


# ----------------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class _DemoData:
    """The cohort read, split and tokenized once; every step takes its rows and matrices from here."""

    cohort: Cohort
    expression: pd.DataFrame  # samples x the tokenizer's genes, as given
    working: np.ndarray  # the same on the tokenizer's working scale: the scale every comparison is made on
    tokenizer: GexBertTokenizer
    normalization: str
    class_names: list[str]
    codes: np.ndarray  # class index per sample, -1 where the label is missing
    train_rows: np.ndarray
    test_rows: np.ndarray
    fit_rows: np.ndarray  # train minus validation
    validation_rows: np.ndarray  # train rows held out for early stopping and pretraining curves

    @property
    def genes(self) -> list[str]:
        return self.tokenizer.genes

    def samples(self, rows: np.ndarray, labelled: bool = False) -> EncodedSamples:
        """The tokenized `rows`, carrying their class codes as `labels` when `labelled`."""
        return EncodedSamples.from_frame(self.tokenizer, self.expression.iloc[rows],
                                         {"labels": self.codes[rows]} if labelled else None)


def _load(args: DemoArguments) -> tuple[Cohort, pd.Series]:
    """The cohort and its train/test split: the folder's split.tsv, else a seeded stratified split."""
    from ..data.readers import load_cohort, load_split
    from ..data.splits import stratified_split

    if args.data_dir is None:
        cohort = load_embedded_cohort()
        if args.label_column:
            cohort.label_column = args.label_column
        split = None
    else:
        directory = Path(args.data_dir)
        cohort = load_cohort(directory, label_column=args.label_column or "cancer_type")
        split = load_split(directory) if (directory / "split.tsv").is_file() else None
    if split is None:
        split = stratified_split(cohort.clinical[cohort.label_column], cohort.expression.index, 0.25, args.seed)
    split = split.reindex(cohort.expression.index)
    if not {"train", "test"} <= set(split.dropna()):
        raise ClinicalInputError(f"{cohort.name}: the demo needs train and test samples, split has "
                                 f"{sorted(set(split.dropna()))}")
    return cohort, split


def _gene_subset(expression: pd.DataFrame, train: np.ndarray, max_genes: int) -> list[str]:
    """All genes, or the `max_genes` most variable on train (keeps --data_dir runs to minutes)."""
    if expression.shape[1] <= max_genes:
        return list(expression.columns)
    variance = expression.iloc[train].var(axis=0, skipna=True).fillna(0.0)
    return list(variance.sort_values(ascending=False).index[:max_genes])


def _prepare(args: DemoArguments) -> _DemoData:
    """The cohort, its split, the tokenizer fitted on train, class codes and the validation part of train."""
    cohort, split = _load(args)
    clinical, label_column = cohort.clinical, cohort.label_column
    train_rows = np.flatnonzero((split == "train").to_numpy())
    test_rows = np.flatnonzero((split == "test").to_numpy())
    expression = cohort.expression[_gene_subset(cohort.expression, train_rows, args.max_genes)]
    normalization = auto_normalization(expression.iloc[train_rows])  # decided on train, as everywhere
    tokenizer = GexBertTokenizer.fit(expression.iloc[train_rows], normalization=normalization,
                                     num_levels=16 if len(train_rows) < 500 else 32)
    expression = expression[tokenizer.genes]
    class_names = sorted(clinical[label_column].dropna().astype(str).unique())
    codes = clinical[label_column].astype(str).map({name: i for i, name in enumerate(class_names)})
    codes = codes.where(clinical[label_column].notna(), -1).to_numpy(np.int64)
    validation_rows = train_rows[split_validation(codes[train_rows], 0.15, args.seed)]
    data = _DemoData(cohort, expression, tokenizer.normalize(expression.to_numpy(), tokenizer.genes), tokenizer,
                     normalization, class_names, codes, train_rows, test_rows,
                     np.setdiff1d(train_rows, validation_rows), validation_rows)
    print(f"[demo] {cohort.name}: {len(data.genes)} genes, train {len(train_rows)} (fit {len(data.fit_rows)}, "
          f"validation {len(validation_rows)}), test {len(test_rows)}; classes of {label_column}: "
          f"{', '.join(class_names)}")
    return data


# ----------------------------------------------------------------------------------------------------------------------
# the steps
# ----------------------------------------------------------------------------------------------------------------------
def _pretrain(data: _DemoData, setting: _Setting, args: DemoArguments, output: Path
              ) -> tuple[GexBertForMaskedExpression, dict]:
    """1. Masked-expression pretraining on the fit rows, held-out loss on the validation rows; pretraining.png."""
    config = build_config(data.tokenizer, setting.preset, **setting.model_overrides)
    torch.manual_seed(args.seed)
    model = GexBertForMaskedExpression(config)
    steps = args.pretrain_steps or setting.pretrain_steps
    options = PretrainingOptions(
        max_steps=steps, batch_size=min(32, len(data.fit_rows)), learning_rate=2e-3 if not args.quick else 1e-3,
        warmup_ratio=0.05, mask_fraction=0.5, max_genes=min(config.max_genes, len(data.genes)),
        logging_steps=max(1, steps // 20), eval_steps=max(1, steps // 10), seed=args.seed, progress=args.progress)
    pretrained = pretrain_in_memory(model, data.tokenizer, data.samples(data.fit_rows), options,
                                    eval_samples=data.samples(data.validation_rows))
    model = pretrained.model.eval()
    history = pretrained.history
    evaluated = [record for record in history if "eval_loss" in record]
    line_plot(output / "pretraining.png",
              {"train loss": ([r["step"] for r in history], [r["loss"] for r in history], None),
               "held-out loss": ([r["step"] for r in evaluated], [r["eval_loss"] for r in evaluated], None)},
              "step", "restoration loss (level CE + value MSE)", "GexBERT pretraining")
    return model, {"parameters": model.num_parameters(), "steps": pretrained.steps, "seconds": pretrained.seconds,
                   "first_eval_loss": evaluated[0]["eval_loss"] if evaluated else None,
                   "final_eval_loss": pretrained.eval_loss,
                   "final_eval_level_accuracy": evaluated[-1].get("eval_level_accuracy") if evaluated else None,
                   "chance_level_accuracy": 1.0 / data.tokenizer.num_levels}


def _survival_rows(data: _DemoData) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Train and test rows with a known outcome, and every sample's time and event (None without survival)."""
    cohort = data.cohort
    if not cohort.time_column:
        return data.train_rows[:0], data.test_rows[:0], None, None
    clinical = cohort.clinical
    known = (clinical[cohort.time_column].notna() & clinical[cohort.event_column].notna()).to_numpy()
    return (data.train_rows[known[data.train_rows]], data.test_rows[known[data.test_rows]],
            clinical[cohort.time_column].to_numpy(float), clinical[cohort.event_column].to_numpy(float))


def _anchors_and_panel(data: _DemoData, args: DemoArguments) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column indices of the anchors (the most prognostic genes on train) and of a random panel of the others, and
    every gene's |Cox score| on train."""
    surv_train, _, time_values, event_values = _survival_rows(data)
    scores = np.abs(univariate_cox_z(data.working[surv_train], time_values[surv_train], event_values[surv_train]))
    anchor_index = np.argsort(-scores)[: args.num_anchors]
    rng = np.random.default_rng([args.seed, 3])
    others = np.setdiff1d(np.arange(len(data.genes)), anchor_index)
    panel_index = np.sort(rng.choice(others, size=min(args.panel_size, len(others)), replace=False))
    return anchor_index, panel_index, scores


def _auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(labels)) < 2:
        raise ValueError("one class")
    return float(roc_auc_score(labels, scores))


def _classification_summary(labels: np.ndarray, probabilities: np.ndarray, bootstrap: int, seed: int) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    predicted = probabilities.argmax(1)
    result = {"accuracy": float(accuracy_score(labels, predicted)),
              "macro_f1": float(f1_score(labels, predicted, average="macro"))}
    if probabilities.shape[1] == 2:
        result["roc_auc"] = _auc(labels, probabilities[:, 1])
        result["roc_auc_ci95"] = bootstrap_interval(_auc, (labels, probabilities[:, 1]), bootstrap, [seed, 97])
    result["accuracy_ci95"] = bootstrap_interval(lambda y, p: float((p.argmax(1) == y).mean()),
                                                 (labels, probabilities), bootstrap, [seed, 97])
    return result


def _finetune(model, data: _DemoData, train: np.ndarray, validation: np.ndarray, panel: list[str],
              setting: _Setting, seed: int):
    """The demo's fine-tuning settings: a classifier of `data.class_names` on the panel."""
    options = FinetuningOptions(epochs=setting.finetune_epochs, batch_size=16, learning_rate=5e-4, warmup_ratio=0.1,
                                early_stopping_patience=8, seed=seed, max_queries=64)
    return finetune_in_memory(model, data.tokenizer, data.samples(train, labelled=True),
                              data.samples(validation, labelled=True), panel, options, class_names=data.class_names)


def _logistic_probabilities(data: _DemoData, train: np.ndarray, test: np.ndarray, panel_index: np.ndarray
                            ) -> np.ndarray:
    """Logistic regression on the panel's standardised working-scale values, fitted on train."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    logistic.fit(data.working[np.ix_(train, panel_index)], data.codes[train])
    probabilities = np.zeros((len(test), len(data.class_names)))
    probabilities[:, logistic.classes_] = logistic.predict_proba(data.working[np.ix_(test, panel_index)])
    return probabilities


def _classification(model, data: _DemoData, panel_index: np.ndarray, setting: _Setting, args: DemoArguments,
                    output: Path) -> dict:
    """2. The label from the panel: fine-tuned GexBERT (unseen genes as queries) vs logistic regression."""
    labelled = data.codes >= 0
    fit_c, val_c, train_c, test_c = (rows[labelled[rows]] for rows in (data.fit_rows, data.validation_rows,
                                                                       data.train_rows, data.test_rows))
    panel = [data.genes[i] for i in panel_index]
    tuned = _finetune(model, data, fit_c, val_c, panel, setting, args.seed)
    gexbert = class_probabilities(predict(tuned.model, data.tokenizer, data.samples(test_c, labelled=True)))
    logistic = _logistic_probabilities(data, train_c, test_c, panel_index)
    label_column = data.cohort.label_column
    classification = {
        "target": label_column, "classes": data.class_names, "panel": panel, "test_samples": int(len(test_c)),
        "best_epoch_validation": tuned.metrics,
        "methods": {
            "GexBERT (fine-tuned, panel + unseen-gene queries)": _classification_summary(
                data.codes[test_c], gexbert, setting.bootstrap, args.seed),
            "logistic regression (same panel)": _classification_summary(
                data.codes[test_c], logistic, setting.bootstrap, args.seed),
        },
    }
    metric_names = [name for name in ("accuracy", "macro_f1", "roc_auc")
                    if all(name in m for m in classification["methods"].values())]
    bar_plot(output / "classification.png", metric_names,
             {method: [m[name] for name in metric_names] for method, m in classification["methods"].items()},
             "test score", f"{label_column} from a {len(panel)}-gene panel (test n={len(test_c)})")
    return classification


def _cox_result(x_train: np.ndarray, x_test: np.ndarray, train: tuple, test: tuple, seed: int, bootstrap: int
                ) -> dict:
    """Ridge-penalised Cox (penalty by 5-fold CV on train) on one feature set: its test C-index and interval."""
    from sklearn.model_selection import StratifiedKFold

    x_train, x_test = np.nan_to_num(x_train), np.nan_to_num(x_test)
    (t_train, e_train), (t_test, e_test) = train, test
    options = {"ties": "efron", "n_iter": 200, "tol": 1e-9}
    folds = list(StratifiedKFold(5, shuffle=True, random_state=seed).split(x_train, e_train))
    alpha = choose_cox_penalty(x_train, t_train, e_train, folds, COX_PENALTIES, **options)
    risk = fit_cox(x_train, t_train, e_train, alpha, **options).predict(x_test)
    return {"c_index": concordance_index(risk, t_test, e_test), "alpha": alpha,
            "c_index_ci95": bootstrap_interval(concordance_index, (risk, t_test, e_test), bootstrap, [seed, 97])}


def _anchor_features(model, data: _DemoData, surv_train: np.ndarray, surv_test: np.ndarray, anchor_index: np.ndarray,
                     panel_index: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The anchors (train, test) restored by GexBERT from the panel, predicted by ridge regression, and measured."""
    from sklearn.linear_model import RidgeCV

    anchors = [data.genes[i] for i in anchor_index]
    panel = [data.genes[i] for i in panel_index]
    restored = predict_distribution(model, data.tokenizer,
                                    data.expression.iloc[np.concatenate([surv_train, surv_test])][panel], genes=anchors)
    restored_anchors = restored.mean[:, [restored.genes.index(gene) for gene in anchors]]
    panel_train = data.working[np.ix_(surv_train, panel_index)]
    ridge = RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(panel_train, data.working[np.ix_(surv_train, anchor_index)])
    return {"GexBERT": (restored_anchors[: len(surv_train)], restored_anchors[len(surv_train):]),
            "ridge": (ridge.predict(panel_train), ridge.predict(data.working[np.ix_(surv_test, panel_index)])),
            "true": (data.working[np.ix_(surv_train, anchor_index)], data.working[np.ix_(surv_test, anchor_index)])}


def _survival(model, data: _DemoData, anchor_index: np.ndarray, panel_index: np.ndarray, scores: np.ndarray,
              setting: _Setting, args: DemoArguments, output: Path) -> dict | None:
    """3. Cox models on the panel alone and with restored or measured anchors; None without events on test."""
    surv_train, surv_test, time_values, event_values = _survival_rows(data)
    if time_values is None or not len(surv_test) or event_values[surv_test].sum() <= 0:
        return None
    features = _anchor_features(model, data, surv_train, surv_test, anchor_index, panel_index)
    panel_train, panel_test = data.working[np.ix_(surv_train, panel_index)], data.working[np.ix_(surv_test,
                                                                                                  panel_index)]
    variants = {"panel alone": (panel_train, panel_test)}
    for name, key in (("panel + GexBERT-restored anchors", "GexBERT"), ("panel + ridge-restored anchors", "ridge"),
                      ("panel + true anchors (reference)", "true")):
        variants[name] = (np.hstack([panel_train, features[key][0]]), np.hstack([panel_test, features[key][1]]))
    train = (time_values[surv_train], event_values[surv_train])
    test = (time_values[surv_test], event_values[surv_test])
    cox = {name: _cox_result(x_train, x_test, train, test, args.seed, setting.bootstrap)
           for name, (x_train, x_test) in variants.items()}
    true_test = features["true"][1]
    bar_plot(output / "survival.png", list(cox), {"test C-index": [r["c_index"] for r in cox.values()]},
             "C-index", f"Cox models (test n={len(surv_test)}, {int(test[1].sum())} events)",
             errors={"test C-index": np.abs(np.array([r["c_index_ci95"] for r in cox.values()]).T
                                            - np.array([r["c_index"] for r in cox.values()]))})
    return {"anchors": [data.genes[i] for i in anchor_index], "anchor_scores": [float(scores[i]) for i in anchor_index],
            "train_samples": int(len(surv_train)), "train_events": int(train[1].sum()),
            "test_samples": int(len(surv_test)), "test_events": int(test[1].sum()), "cox": cox,
            "anchor_restoration_pearson_r_test": {name: mean_gene_r(true_test, features[name][1])
                                                  for name in ("GexBERT", "ridge")}}


def _imputation(model, data: _DemoData, args: DemoArguments, output: Path) -> dict:
    """4. Hide a share of the test values at random and fill them: GexBERT vs column means and KNN."""
    truth = data.working[data.test_rows]
    rng = np.random.default_rng([args.seed, 5])
    hidden = (rng.random(truth.shape) < args.missing_fraction) & ~np.isnan(truth)
    for row in np.flatnonzero(hidden.all(1)):  # keep one measured value per sample
        hidden[row, rng.integers(truth.shape[1])] = False
    restored = predict_distribution(model, data.tokenizer, data.expression.iloc[data.test_rows].mask(hidden))
    reference = data.working[data.train_rows]
    masked = np.where(hidden, np.nan, truth)
    estimates = {"GexBERT": restored.mean, "column mean (train)": impute_mean(reference, masked),
                 "KNN (k=10, train reference)": impute_knn(reference, masked, k=10)}
    scale = np.nanstd(reference, axis=0)
    imputation = {"missing_fraction": float(hidden.mean()), "hidden_values": int(hidden.sum()), "methods": {}}
    for name, estimate in estimates.items():
        error = (estimate - truth)[hidden]
        imputation["methods"][name] = {
            "rmse": float(np.sqrt(np.mean(error**2))),
            "nrmse": float(np.sqrt(np.mean(((estimate - truth) / scale)[hidden] ** 2))),
            "pearson_r_per_gene": mean_gene_r(truth, estimate, hidden),
        }
    inside = (truth >= restored.lower - 1e-9) & (truth <= restored.upper + 1e-9)
    imputation["gexbert_80pct_interval_coverage"] = float(inside[hidden].mean())
    bar_plot(output / "imputation.png", ["normalised RMSE", "Pearson r per gene"],
             {name: [m["nrmse"], m["pearson_r_per_gene"]] for name, m in imputation["methods"].items()},
             "test value", f"imputing {args.missing_fraction:.0%} missing test values")
    return imputation


# ----------------------------------------------------------------------------------------------------------------------
# the demo
# ----------------------------------------------------------------------------------------------------------------------
class _Clock:
    """Seconds per step, printed as each one ends."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._since = time.perf_counter()

    def tick(self, name: str) -> None:
        self.seconds[name] = round(time.perf_counter() - self._since, 1)
        print(f"[demo] {name}: {self.seconds[name]:.1f} s", flush=True)
        self._since = time.perf_counter()


def run_demo(args: DemoArguments) -> dict:
    """Run every step, write `report.md`, PNGs and `results.json` under `args.output`, return the results."""
    started = time.perf_counter()
    setting = QUICK if args.quick else FULL
    folder = claim_output_dir(args.output, "demo", {"--data_dir": args.data_dir}, args.overwrite)
    with folder.writing() as output:
        return _run_demo(args, setting, output, started)


def _run_demo(args: DemoArguments, setting: _Setting, output: Path, started: float) -> dict:
    torch.manual_seed(args.seed)
    clock = _Clock()
    data = _prepare(args)
    clock.tick("data")
    model, pretraining = _pretrain(data, setting, args, output)
    clock.tick("pretraining")
    embedding = embedding_map(model, data.tokenizer, data.expression.iloc[data.train_rows],
                              data.expression.iloc[data.test_rows],
                              data.cohort.clinical[data.cohort.label_column].iloc[data.test_rows],
                              output / "embedding_map.png")
    clock.tick("embedding map")
    anchor_index, panel_index, scores = _anchors_and_panel(data, args)
    classification = _classification(model, data, panel_index, setting, args, output)
    clock.tick("classification")
    survival = _survival(model, data, anchor_index, panel_index, scores, setting, args, output)
    clock.tick("survival")
    imputation = _imputation(model, data, args, output)
    clock.tick("imputation")
    results = {
        "cohort": data.cohort.name, "quick": args.quick, "seed": args.seed, "genes": len(data.genes),
        "normalization": data.normalization, "num_levels": data.tokenizer.num_levels,
        "split": {"train": int(len(data.train_rows)), "fit": int(len(data.fit_rows)),
                  "validation": int(len(data.validation_rows)), "test": int(len(data.test_rows))},
        "model": {"preset": setting.preset, **setting.model_overrides, "parameters": model.num_parameters()},
        "pretraining": pretraining, "embedding": embedding, "classification": classification, "survival": survival,
        "imputation": imputation, "seconds": {**clock.seconds, "total": round(time.perf_counter() - started, 1)},
        "arguments": asdict(args), "torch_threads": torch.get_num_threads(),
    }
    write_json(output / "results.json", results)
    atomic_write(output / "report.md", render_report(results))
    print("\n" + summary_table(results) + f"\n\nreport: {output / 'report.md'}  ({results['seconds']['total']:.0f} s "
          "in all)")
    return results


def demo_from_arguments(args: DemoArguments) -> int:
    """The `gexbert demo` entry point."""
    run_demo(args)
    return 0


__all__ = ["DemoArguments", "run_demo", "render_report", "summary_table", "demo_from_arguments"]
