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

import json
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.embedded import Cohort, load_embedded_cohort
from ..data.samples import EncodedSamples
from ..errors import ClinicalInputError
from ..modeling_gexbert import GexBertForMaskedExpression, concordance_index
from ..outputs import claim_output_dir
from ..reports import bar_plot, fmt, line_plot, markdown_table, write_json
from ..tokenization_gexbert import GexBertTokenizer, auto_normalization
from ..training.finetune import FinetuneArguments, finetune_classifier, predict_classes
from ..training.presets import build_config
from ..training.pretrain import PretrainArguments, pretrain_model
from .baselines import impute_knn, impute_mean, univariate_cox_z
from .embedding import embedding_map
from .imputation import predict_distribution


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
def _load(args: DemoArguments) -> tuple[Cohort, pd.Series]:
    from ..data.readers import load_cohort, load_split, stratified_split

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


def _validation_rows(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Seeded, label-stratified positions held out of train for early stopping and pretraining curves."""
    rng = np.random.default_rng([seed, 11])
    held = []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        held.extend(members[: max(1, int(round(fraction * len(members))))] if len(members) > 2 else [])
    return np.sort(np.asarray(held, dtype=np.int64))


# ----------------------------------------------------------------------------------------------------------------------
# baselines and statistics
# ----------------------------------------------------------------------------------------------------------------------
def _fit_cox(x_train: np.ndarray, time: np.ndarray, event: np.ndarray, seed: int,
             alphas=(0.1, 1.0, 10.0, 100.0, 1000.0)) -> tuple[object, float]:
    """Ridge-penalised Cox (scikit-survival) on standardised features, penalty chosen by 5-fold CV on train."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    outcome = Surv.from_arrays(event.astype(bool), time)

    def model(alpha):
        return make_pipeline(StandardScaler(), CoxPHSurvivalAnalysis(alpha=alpha, ties="efron", n_iter=200))

    folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(x_train, event)
    folds = list(folds)
    scores = {}
    for alpha in alphas:
        values = []
        for fit, held in folds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = model(alpha).fit(x_train[fit], outcome[fit])
            try:
                values.append(concordance_index(fitted.predict(x_train[held]), time[held], event[held]))
            except ValueError:
                continue
        scores[alpha] = float(np.mean(values)) if values else 0.5
    best = max(alphas, key=lambda alpha: scores[alpha])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model(best).fit(x_train, outcome), best


def _bootstrap(metric, arrays: tuple[np.ndarray, ...], n: int, seed: int) -> tuple[float, float]:
    """Percentile 95% interval of `metric` over test-set bootstrap resamples (how much n test samples allow)."""
    rng = np.random.default_rng([seed, 97])
    size = len(arrays[0])
    values = []
    for _ in range(n):
        rows = rng.integers(0, size, size)
        try:
            values.append(metric(*(array[rows] for array in arrays)))
        except ValueError:  # a resample without a comparable pair or with one class
            continue
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


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
        result["roc_auc_ci95"] = _bootstrap(_auc, (labels, probabilities[:, 1]), bootstrap, seed)
    result["accuracy_ci95"] = _bootstrap(lambda y, p: float((p.argmax(1) == y).mean()), (labels, probabilities),
                                         bootstrap, seed)
    return result


def _pearson_per_gene(truth: np.ndarray, estimate: np.ndarray, hidden: np.ndarray) -> float:
    values = []
    for column in range(truth.shape[1]):
        rows = hidden[:, column]
        if rows.sum() >= 3 and np.std(truth[rows, column]) > 0 and np.std(estimate[rows, column]) > 0:
            values.append(np.corrcoef(truth[rows, column], estimate[rows, column])[0, 1])
    return float(np.mean(values)) if values else float("nan")


# ----------------------------------------------------------------------------------------------------------------------
# the demo
# ----------------------------------------------------------------------------------------------------------------------
def run_demo(args: DemoArguments) -> dict:
    """Run every step, write `report.md`, PNGs and `results.json` under `args.output`, return the results."""
    started = time.perf_counter()
    setting = QUICK if args.quick else FULL
    folder = claim_output_dir(args.output, "demo", {"--data_dir": args.data_dir}, args.overwrite)
    workspace = Path(tempfile.mkdtemp(prefix="gexbert-demo-"))  # checkpoints and models: not part of the report
    try:
        with folder.writing() as output:
            return _run_demo(args, setting, output, workspace, started)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _run_demo(args: DemoArguments, setting: _Setting, output: Path, workspace: Path, started: float) -> dict:
    torch.manual_seed(args.seed)
    timings: dict[str, float] = {}

    def tick(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 1)
        print(f"[demo] {name}: {timings[name]:.1f} s", flush=True)
        return time.perf_counter()

    # ---- data ---------------------------------------------------------------------------------------------------
    clock = time.perf_counter()
    cohort, split = _load(args)
    label_column = cohort.label_column
    clinical = cohort.clinical
    train_rows = np.flatnonzero((split == "train").to_numpy())
    test_rows = np.flatnonzero((split == "test").to_numpy())
    genes = _gene_subset(cohort.expression, train_rows, args.max_genes)
    expression = cohort.expression[genes]
    normalization = auto_normalization(expression)
    num_levels = 16 if len(train_rows) < 500 else 32
    tokenizer = GexBertTokenizer.fit(expression.iloc[train_rows], normalization=normalization, num_levels=num_levels)
    genes = tokenizer.genes
    expression = expression[genes]
    class_names = sorted(clinical[label_column].dropna().astype(str).unique())
    codes = clinical[label_column].astype(str).map({name: i for i, name in enumerate(class_names)})
    codes = codes.where(clinical[label_column].notna(), -1).to_numpy(np.int64)
    validation_in_train = _validation_rows(codes[train_rows], 0.15, args.seed)
    fit_rows = np.setdiff1d(train_rows, train_rows[validation_in_train])
    validation_rows = train_rows[validation_in_train]
    print(f"[demo] {cohort.name}: {len(genes)} genes, train {len(train_rows)} (fit {len(fit_rows)}, validation "
          f"{len(validation_rows)}), test {len(test_rows)}; classes of {label_column}: {', '.join(class_names)}")
    clock = tick("data", clock)

    # ---- 1. pretraining --------------------------------------------------------------------------------------------
    config = build_config(tokenizer, setting.preset, **setting.model_overrides)
    torch.manual_seed(args.seed)
    model = GexBertForMaskedExpression(config)
    steps = args.pretrain_steps or setting.pretrain_steps
    pretrain_args = PretrainArguments(
        output_dir=str(workspace / "pretraining"), max_steps=steps, batch_size=min(32, len(fit_rows)),
        learning_rate=2e-3 if not args.quick else 1e-3, warmup_ratio=0.05, mask_fraction=0.5,
        max_genes=min(config.max_genes, len(genes)), logging_steps=max(1, steps // 20),
        eval_steps=max(1, steps // 10), save_steps=0, seed=args.seed, progress=args.progress,
    )
    pretrained = pretrain_model(model, tokenizer, EncodedSamples.from_frame(tokenizer, expression.iloc[fit_rows]),
                                pretrain_args,
                                eval_samples=EncodedSamples.from_frame(tokenizer, expression.iloc[validation_rows]))
    model = pretrained.model.eval()
    evaluated = [record for record in pretrained.history if "eval_loss" in record]
    pretraining = {"parameters": model.num_parameters(), "steps": pretrained.steps, "seconds": pretrained.seconds,
                   "first_eval_loss": evaluated[0]["eval_loss"] if evaluated else None,
                   "final_eval_loss": pretrained.eval_loss,
                   "final_eval_level_accuracy": evaluated[-1].get("eval_level_accuracy") if evaluated else None,
                   "chance_level_accuracy": 1.0 / num_levels}
    line_plot(output / "pretraining.png",
              {"train loss": ([r["step"] for r in pretrained.history], [r["loss"] for r in pretrained.history], None),
               "held-out loss": ([r["step"] for r in evaluated], [r["eval_loss"] for r in evaluated], None)},
              "step", "restoration loss (level CE + value MSE)", "GexBERT pretraining")
    clock = tick("pretraining", clock)
    embedding = embedding_map(model, tokenizer, expression.iloc[train_rows], expression.iloc[test_rows],
                              clinical[label_column].iloc[test_rows], output / "embedding_map.png")
    clock = tick("embedding map", clock)

    # ---- anchors and panel (train only) ----------------------------------------------------------------------------
    survival_ok = (clinical[cohort.time_column].notna() & clinical[cohort.event_column].notna()).to_numpy() \
        if cohort.time_column else np.zeros(len(clinical), bool)
    time_values = clinical[cohort.time_column].to_numpy(float) if cohort.time_column else None
    event_values = clinical[cohort.event_column].to_numpy(float) if cohort.time_column else None
    working = tokenizer.normalize(expression.to_numpy(), genes)  # the scale every comparison is made on
    surv_train = train_rows[survival_ok[train_rows]]
    surv_test = test_rows[survival_ok[test_rows]]
    scores = np.abs(univariate_cox_z(working[surv_train], time_values[surv_train], event_values[surv_train]))
    anchor_index = np.argsort(-scores)[: args.num_anchors]
    anchors = [genes[i] for i in anchor_index]
    rng = np.random.default_rng([args.seed, 3])
    others = np.setdiff1d(np.arange(len(genes)), anchor_index)
    panel_index = np.sort(rng.choice(others, size=min(args.panel_size, len(others)), replace=False))
    panel = [genes[i] for i in panel_index]

    # ---- 2. panel classification -----------------------------------------------------------------------------------
    labelled = codes >= 0
    fit_c, val_c, train_c, test_c = (rows[labelled[rows]] for rows in (fit_rows, validation_rows, train_rows,
                                                                       test_rows))

    def samples(rows):
        return EncodedSamples.from_frame(tokenizer, expression.iloc[rows], {"labels": codes[rows]})

    finetune_args = FinetuneArguments(
        task="classify", model="(pretrained in memory)", output_dir=str(workspace / "classifier"),
        epochs=setting.finetune_epochs, batch_size=16, learning_rate=5e-4, warmup_ratio=0.1,
        early_stopping_patience=8, seed=args.seed, query_unseen=True, max_queries=64, progress=False,
        overwrite=True,
    )
    tuned = finetune_classifier(model, tokenizer, samples(fit_c), samples(val_c), class_names, finetune_args,
                                panel_genes=panel)
    gexbert_probabilities = predict_classes(tuned.model, tokenizer, samples(test_c), query_unseen=True)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    logistic.fit(working[np.ix_(train_c, panel_index)], codes[train_c])
    logistic_probabilities = np.zeros((len(test_c), len(class_names)))
    logistic_probabilities[:, logistic.classes_] = logistic.predict_proba(working[np.ix_(test_c, panel_index)])
    classification = {
        "target": label_column, "classes": class_names, "panel": panel, "test_samples": int(len(test_c)),
        "best_epoch_validation": tuned.metrics,
        "methods": {
            "GexBERT (fine-tuned, panel + unseen-gene queries)": _classification_summary(
                codes[test_c], gexbert_probabilities, setting.bootstrap, args.seed),
            "logistic regression (same panel)": _classification_summary(
                codes[test_c], logistic_probabilities, setting.bootstrap, args.seed),
        },
    }
    metric_names = [name for name in ("accuracy", "macro_f1", "roc_auc")
                    if all(name in m for m in classification["methods"].values())]
    bar_plot(output / "classification.png", metric_names,
             {method: [m[name] for name in metric_names] for method, m in classification["methods"].items()},
             "test score", f"{label_column} from a {len(panel)}-gene panel (test n={len(test_c)})")
    clock = tick("classification", clock)

    # ---- 3. survival with restored anchors -------------------------------------------------------------------------
    survival = None
    if cohort.time_column and len(surv_test) and event_values[surv_test].sum() > 0:
        restored = predict_distribution(model, tokenizer, expression.iloc[np.concatenate([surv_train, surv_test])][panel],
                                        genes=anchors)
        restored_anchors = restored.mean[:, [restored.genes.index(gene) for gene in anchors]]
        gexbert_train, gexbert_test = restored_anchors[: len(surv_train)], restored_anchors[len(surv_train):]
        from sklearn.linear_model import RidgeCV

        ridge = RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(working[np.ix_(surv_train, panel_index)],
                                                           working[np.ix_(surv_train, anchor_index)])
        ridge_train = ridge.predict(working[np.ix_(surv_train, panel_index)])
        ridge_test = ridge.predict(working[np.ix_(surv_test, panel_index)])
        true_train = working[np.ix_(surv_train, anchor_index)]
        true_test = working[np.ix_(surv_test, anchor_index)]
        panel_train = working[np.ix_(surv_train, panel_index)]
        panel_test = working[np.ix_(surv_test, panel_index)]
        variants = {
            "panel alone": (panel_train, panel_test),
            "panel + GexBERT-restored anchors": (np.hstack([panel_train, gexbert_train]),
                                                 np.hstack([panel_test, gexbert_test])),
            "panel + ridge-restored anchors": (np.hstack([panel_train, ridge_train]),
                                               np.hstack([panel_test, ridge_test])),
            "panel + true anchors (reference)": (np.hstack([panel_train, true_train]),
                                                 np.hstack([panel_test, true_test])),
        }
        t_train, e_train = time_values[surv_train], event_values[surv_train]
        t_test, e_test = time_values[surv_test], event_values[surv_test]
        cox_results = {}
        for name, (x_train, x_test) in variants.items():
            fitted, alpha = _fit_cox(np.nan_to_num(x_train), t_train, e_train, args.seed)
            risk = fitted.predict(np.nan_to_num(x_test))
            cox_results[name] = {"c_index": concordance_index(risk, t_test, e_test), "alpha": alpha,
                                 "c_index_ci95": _bootstrap(concordance_index, (risk, t_test, e_test),
                                                            setting.bootstrap, args.seed)}
        restoration = {
            "GexBERT": _pearson_per_gene(true_test, gexbert_test, np.ones_like(true_test, bool)),
            "ridge": _pearson_per_gene(true_test, ridge_test, np.ones_like(true_test, bool)),
        }
        survival = {"anchors": anchors, "anchor_scores": [float(scores[i]) for i in anchor_index],
                    "train_samples": int(len(surv_train)), "train_events": int(e_train.sum()),
                    "test_samples": int(len(surv_test)), "test_events": int(e_test.sum()),
                    "cox": cox_results, "anchor_restoration_pearson_r_test": restoration}
        bar_plot(output / "survival.png", list(cox_results), {"test C-index": [r["c_index"] for r in
                                                                              cox_results.values()]},
                 "C-index", f"Cox models (test n={len(surv_test)}, {int(e_test.sum())} events)",
                 errors={"test C-index": np.abs(np.array([r["c_index_ci95"] for r in cox_results.values()]).T
                                               - np.array([r["c_index"] for r in cox_results.values()]))})
    clock = tick("survival", clock)

    # ---- 4. imputation at 50% missing ------------------------------------------------------------------------------
    truth = working[test_rows]
    rng = np.random.default_rng([args.seed, 5])
    hidden = (rng.random(truth.shape) < args.missing_fraction) & ~np.isnan(truth)
    for row in np.flatnonzero(hidden.all(1)):  # keep one measured value per sample
        hidden[row, rng.integers(truth.shape[1])] = False
    masked_input = expression.iloc[test_rows].mask(hidden)
    restored = predict_distribution(model, tokenizer, masked_input)
    reference = working[train_rows]
    masked_working = np.where(hidden, np.nan, truth)
    estimates = {"GexBERT": restored.mean, "column mean (train)": impute_mean(reference, masked_working),
                 "KNN (k=10, train reference)": impute_knn(reference, masked_working, k=10)}
    scale = np.nanstd(reference, axis=0)
    imputation = {"missing_fraction": float(hidden.mean()), "hidden_values": int(hidden.sum()), "methods": {}}
    for name, estimate in estimates.items():
        error = (estimate - truth)[hidden]
        imputation["methods"][name] = {
            "rmse": float(np.sqrt(np.mean(error**2))),
            "nrmse": float(np.sqrt(np.mean(((estimate - truth) / scale)[hidden] ** 2))),
            "pearson_r_per_gene": _pearson_per_gene(truth, estimate, hidden),
        }
    inside = (truth >= restored.lower - 1e-9) & (truth <= restored.upper + 1e-9)
    imputation["gexbert_80pct_interval_coverage"] = float(inside[hidden].mean())
    bar_plot(output / "imputation.png", ["normalised RMSE", "Pearson r per gene"],
             {name: [m["nrmse"], m["pearson_r_per_gene"]] for name, m in imputation["methods"].items()},
             "test value", f"imputing {args.missing_fraction:.0%} missing test values")
    tick("imputation", clock)

    results = {
        "cohort": cohort.name, "quick": args.quick, "seed": args.seed, "genes": len(genes),
        "normalization": normalization, "num_levels": num_levels,
        "split": {"train": int(len(train_rows)), "fit": int(len(fit_rows)), "validation": int(len(validation_rows)),
                  "test": int(len(test_rows))},
        "model": {"preset": setting.preset, **setting.model_overrides, "parameters": model.num_parameters()},
        "pretraining": pretraining, "embedding": embedding, "classification": classification, "survival": survival,
        "imputation": imputation, "seconds": {**timings, "total": round(time.perf_counter() - started, 1)},
        "arguments": asdict(args), "torch_threads": torch.get_num_threads(),
    }
    write_json(output / "results.json", results)
    report = render_report(results)
    (output / "report.md").write_text(report)
    summary = summary_table(results)
    print("\n" + summary + f"\n\nreport: {output / 'report.md'}  ({results['seconds']['total']:.0f} s in all)")
    return results


# ----------------------------------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------------------------------
def _ci(interval) -> str:
    if interval is None or any(value is None or not np.isfinite(value) for value in interval):
        return ""
    return f" [{interval[0]:.2f}, {interval[1]:.2f}]"


def summary_table(results: dict) -> str:
    """One line per task: GexBERT's number, its baseline's, and the difference."""
    rows = []
    methods = results["classification"]["methods"]
    gexbert, baseline = list(methods.values())
    key = "roc_auc" if "roc_auc" in gexbert else "accuracy"
    rows.append([f"{results['classification']['target']} from {len(results['classification']['panel'])} genes "
                 f"({key})", fmt(gexbert[key]), f"logistic regression {fmt(baseline[key])}",
                 f"{gexbert[key] - baseline[key]:+.3f}"])
    if results["survival"]:
        cox = results["survival"]["cox"]
        ours = cox["panel + GexBERT-restored anchors"]["c_index"]
        for name in ("panel alone", "panel + ridge-restored anchors", "panel + true anchors (reference)"):
            rows.append(["survival C-index, panel + GexBERT anchors", fmt(ours), f"{name} {fmt(cox[name]['c_index'])}",
                         f"{ours - cox[name]['c_index']:+.3f}"])
    imputation = results["imputation"]["methods"]
    ours = imputation["GexBERT"]["nrmse"]
    for name in ("column mean (train)", "KNN (k=10, train reference)"):
        rows.append([f"imputation at {results['imputation']['missing_fraction']:.0%} missing (nRMSE, lower is "
                     "better)", fmt(ours), f"{name} {fmt(imputation[name]['nrmse'])}",
                     f"{ours - imputation[name]['nrmse']:+.3f}"])
    return markdown_table(["task", "GexBERT", "baseline", "difference"], rows)


def render_report(results: dict) -> str:
    """report.md: what ran, every number beside its baseline, the plots, and what the numbers do and do not say."""
    pre, cls, surv, imp = (results[key] for key in ("pretraining", "classification", "survival", "imputation"))
    split = results["split"]
    lines = [
        "# GexBERT demo" + (" (quick mode: a smoke test, not a result)" if results["quick"] else ""),
        "",
        f"Cohort: **{results['cohort']}**, {results['genes']} genes (normalisation: {results['normalization']}, "
        f"{results['num_levels']} expression levels), split train {split['train']} (of which {split['validation']} "
        f"held out for early stopping and pretraining curves) / test {split['test']}, seed {results['seed']}. "
        f"Everything (tokenizer, anchors, panel, baselines, penalties) is fitted on train; test is only predicted. "
        f"Total time {results['seconds']['total']:.0f} s on {results['torch_threads']} torch thread(s).",
        "",
        "## Summary",
        "",
        summary_table(results),
        "",
        "## 1. Pretraining",
        "",
        f"A {results['model']['parameters']:,}-parameter GexBERT (preset `{results['model']['preset']}`, hidden size "
        f"{results['model'].get('hidden_size', '-')}, {results['model'].get('num_hidden_layers', '-')} layers) "
        f"learned to restore masked genes (50% masked per sample) for {pre['steps']} steps in {pre['seconds']:.0f} s. "
        f"Held-out restoration loss went from {fmt(pre['first_eval_loss'])} to {fmt(pre['final_eval_loss'])}; "
        f"level accuracy {fmt(pre['final_eval_level_accuracy'])} against a chance rate of "
        f"{fmt(pre['chance_level_accuracy'])}.",
        "",
        "![pretraining](pretraining.png)",
        "",
        f"Sample embeddings (`embed`, the pretrained encoder's {results['embedding']['pooling']}-pooled output) of "
        f"the {results['embedding']['samples']} test samples, on the first two principal components of the "
        f"training samples' embeddings, coloured by {results['embedding']['label']}: "
        "[embedding_map.png](embedding_map.png)",
        "",
        "![embedding map](embedding_map.png)",
        "",
        f"## 2. {cls['target']} from a {len(cls['panel'])}-gene panel",
        "",
        f"Panel (random, seed {results['seed']}, anchors excluded): {', '.join(cls['panel'])}. GexBERT is fine-tuned "
        "(Trainer, early stopping on validation macro-F1) seeing only the panel's values, with every other gene "
        "entering as a MASK query; logistic regression sees the same panel. Test set, 95% bootstrap intervals in "
        "brackets:",
        "",
        markdown_table(["method", "accuracy", "macro-F1", "ROC AUC"],
                       [[name, fmt(m["accuracy"]) + _ci(m.get("accuracy_ci95")), fmt(m["macro_f1"]),
                         fmt(m.get("roc_auc")) + _ci(m.get("roc_auc_ci95"))] for name, m in cls["methods"].items()]),
        "",
        "![classification](classification.png)",
        "",
    ]
    if surv:
        lines += [
            "## 3. Survival: restoring prognostic anchor genes",
            "",
            f"Anchors = the {len(surv['anchors'])} genes with the strongest univariate Cox association on train "
            f"({', '.join(surv['anchors'])}); they are not on the panel. GexBERT restores them from the panel alone "
            "(MASK queries); the baseline restores them with a ridge regression on the panel fitted on train. Each "
            "feature set feeds a ridge-penalised Cox model (penalty by 5-fold CV on train). "
            f"Train {surv['train_samples']} samples / {surv['train_events']} events, test {surv['test_samples']} / "
            f"{surv['test_events']}.",
            "",
            markdown_table(["Cox model features", "test C-index [95% bootstrap]", "penalty"],
                           [[name, fmt(r["c_index"]) + _ci(r["c_index_ci95"]), fmt(r["alpha"], 1)]
                            for name, r in surv["cox"].items()]),
            "",
            "Anchor restoration on test (mean Pearson r over anchors, restored vs measured): GexBERT "
            f"{fmt(surv['anchor_restoration_pearson_r_test']['GexBERT'])}, ridge "
            f"{fmt(surv['anchor_restoration_pearson_r_test']['ridge'])}.",
            "",
            "![survival](survival.png)",
            "",
        ]
    lines += [
        f"## 4. Imputation at {imp['missing_fraction']:.0%} missing values",
        "",
        f"{imp['hidden_values']} test values hidden at random; each method fills them from the rest (baselines use "
        "the training samples as reference). Errors on the tokenizer's working scale; nRMSE divides each gene's error "
        "by its training SD (1.0 = no better than knowing nothing beyond the mean).",
        "",
        markdown_table(["method", "RMSE", "nRMSE", "Pearson r per gene"],
                       [[name, fmt(m["rmse"]), fmt(m["nrmse"]), fmt(m["pearson_r_per_gene"])]
                        for name, m in imp["methods"].items()]),
        "",
        f"GexBERT's 80% predictive intervals held {imp['gexbert_80pct_interval_coverage']:.0%} of the hidden values.",
        "",
        "![imputation](imputation.png)",
        "",
        "## Reading these numbers",
        "",
        _reading(results),
        "",
        f"Timings (s): {json.dumps(results['seconds'])}. Full numbers: `results.json`.",
        "",
    ]
    return "\n".join(lines)


def _reading(results: dict) -> str:
    """Plain sentences generated from the numbers, so the text can never claim more than the table shows."""
    sentences = []
    methods = list(results["classification"]["methods"].values())
    key = "roc_auc" if "roc_auc" in methods[0] else "accuracy"
    difference = methods[0][key] - methods[1][key]
    verdict = "above" if difference > 0.005 else "below" if difference < -0.005 else "level with"
    sentences.append(f"On the panel task GexBERT is {verdict} logistic regression ({key} {difference:+.3f}).")
    if results["survival"]:
        cox = results["survival"]["cox"]
        ours = cox["panel + GexBERT-restored anchors"]["c_index"]
        alone = cox["panel alone"]["c_index"]
        ridge = cox["panel + ridge-restored anchors"]["c_index"]
        true = cox["panel + true anchors (reference)"]["c_index"]
        sentences.append(
            f"Adding GexBERT-restored anchors changes the test C-index by {ours - alone:+.3f} against the panel alone "
            f"and by {ours - ridge:+.3f} against ridge-restored anchors; measuring the anchors would change it by "
            f"{true - alone:+.3f}.")
        restoration = results["survival"]["anchor_restoration_pearson_r_test"]
        sentences.append(
            f"GexBERT restored the anchors {'more' if restoration['GexBERT'] > restoration['ridge'] else 'less'} "
            f"faithfully than ridge regression (test r {restoration['GexBERT']:.2f} vs {restoration['ridge']:.2f}).")
        if true <= alone:
            sentences.append("Here even the measured anchors do not improve on the panel alone on test, so restoring "
                             "them cannot be expected to help; any difference among the restored variants is noise.")
        sentences.append(
            f"With {results['survival']['test_events']} test events, C-index differences below the width of the "
            "bootstrap intervals are not evidence either way.")
    imputation = results["imputation"]["methods"]
    best = min(imputation, key=lambda name: imputation[name]["nrmse"])
    runner_up = min((name for name in imputation if name != best), key=lambda name: imputation[name]["nrmse"])
    sentences.append(f"For imputation the lowest error is {best}'s (nRMSE {imputation[best]['nrmse']:.3f}, next "
                     f"{runner_up} {imputation[runner_up]['nrmse']:.3f}); at nRMSE near 1 every method recovers only "
                     "a small part of each gene's variation in this cohort.")
    pre = results["pretraining"]
    if pre["final_eval_level_accuracy"] is not None:
        sentences.append(f"Pretraining on ~{results['split']['fit']} profiles is data-starved: held-out level "
                         f"accuracy {pre['final_eval_level_accuracy']:.3f} against chance "
                         f"{pre['chance_level_accuracy']:.3f}.")
    if results["quick"]:
        sentences.append("Quick mode trains a tiny model for a few steps: these numbers only show that the pipeline "
                         "runs.")
    else:
        sentences.append("One cohort, one split and one seed: a demonstration of the workflow on a small public "
                         "cohort, not a benchmark.")
    return " ".join(sentences)


def demo_from_arguments(args: DemoArguments) -> int:
    """The `gexbert demo` entry point."""
    run_demo(args)
    return 0


__all__ = ["DemoArguments", "run_demo", "render_report", "summary_table", "demo_from_arguments"]
