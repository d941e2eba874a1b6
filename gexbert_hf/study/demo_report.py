"""The demo's report: report.md and the summary table, every sentence generated from the numbers of results.json."""

from __future__ import annotations

import json

import numpy as np

from .reports import fmt, markdown_table


def _ci(interval) -> str:
    """' [low, high]' of a 95% interval, nothing where it is undefined."""
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
        *_pretraining_lines(results),
        *_classification_lines(results),
        *(_survival_lines(results["survival"]) if results["survival"] else []),
        *_imputation_lines(results["imputation"]),
        "## Reading these numbers",
        "",
        _reading(results),
        "",
        f"Timings (s): {json.dumps(results['seconds'])}. Full numbers: `results.json`.",
        "",
    ]
    return "\n".join(lines)


def _pretraining_lines(results: dict) -> list[str]:
    pre, model, embedding = results["pretraining"], results["model"], results["embedding"]
    return [
        "## 1. Pretraining",
        "",
        f"A {model['parameters']:,}-parameter GexBERT (preset `{model['preset']}`, hidden size "
        f"{model.get('hidden_size', '-')}, {model.get('num_hidden_layers', '-')} layers) "
        f"learned to restore masked genes (50% masked per sample) for {pre['steps']} steps in {pre['seconds']:.0f} s. "
        f"Held-out restoration loss went from {fmt(pre['first_eval_loss'])} to {fmt(pre['final_eval_loss'])}; "
        f"level accuracy {fmt(pre['final_eval_level_accuracy'])} against a chance rate of "
        f"{fmt(pre['chance_level_accuracy'])}.",
        "",
        "![pretraining](pretraining.png)",
        "",
        f"Sample embeddings (`embed`, the pretrained encoder's {embedding['pooling']}-pooled output) of "
        f"the {embedding['samples']} test samples, on the first two principal components of the "
        f"training samples' embeddings, coloured by {embedding['label']}: "
        "[embedding_map.png](embedding_map.png)",
        "",
        "![embedding map](embedding_map.png)",
        "",
    ]


def _classification_lines(results: dict) -> list[str]:
    cls = results["classification"]
    return [
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


def _survival_lines(surv: dict) -> list[str]:
    return [
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


def _imputation_lines(imp: dict) -> list[str]:
    return [
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
    ]


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
