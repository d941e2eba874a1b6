"""report.md and PNG plots from a benchmark's results dict (everything in the report is in results.json)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..loading import PRETRAINED_MODELS
from .benchmark_verdicts import (
    classification_verdicts,
    imputation_verdicts,
    mean_finite,
    pooled_survival_verdicts,
    sd_finite,
    shown,
    target_lines,
)
from .reports import atomic_write, bar_plot, fmt, heatmap, line_plot, markdown_table, mean_spread


def write_report(results: dict, output: Path) -> Path:
    """Write report.md and the plots; adds the verdict tables to `results` (callers re-save results.json)."""
    output = Path(output)
    lines = _header_lines(results)
    lines += ["## Against the issue's targets\n", *target_lines(results), ""]
    lines += _pretraining_lines(results, output)
    for key, heading, section in _SECTIONS:
        lines.append(heading)
        part = results.get(key)
        if part is not None and part.get("partial"):
            lines.append("**Partial**: this stage did not finish (see the failed tasks above, or the run was "
                         "stopped); the numbers are those saved after its last finished item.\n")
        lines += ["Not run.\n"] if part is None else section(part, results, output)
    notes = output / "notes.md"
    if notes.is_file():  # the closing note written after looking at the numbers (they are all in results.json)
        lines += ["## Closing note\n", notes.read_text().strip() + "\n"]
    lines += _budget_lines(results)
    lines += ["## Timings\n", markdown_table(["stage", "minutes"], [[k, fmt(v / 60, 1)] for k, v in
                                                                  results["timings"].items()]) + "\n"]
    return atomic_write(output / "report.md", "\n".join(lines))


def _header_lines(results: dict) -> list[str]:
    """The title, the data and machine, and any failed task."""
    data, timings = results["data"], results["timings"]
    lines = [f"# GexBERT benchmark: `{data['folder']}`\n",
             f"{data['n_train']} train samples ({data['n_validation']} of them carved out as validation for "
             f"every choice), {data['n_test']} test samples (fixed split.tsv), {data['n_genes']} features, "
             f"normalisation `{data['normalization']}`. Machine: {results['machine']['device']}, "
             f"{results['machine']['cpu_count']} CPU cores, {results['machine']['torch_threads']} torch thread(s). "
             f"Total wall time {timings.get('total', float('nan')) / 60:.1f} min "
             f"(time budget {results['arguments']['time_budget_minutes']} min"
             f"{', QUICK MODE: tiny budgets, numbers not meaningful' if results['arguments']['quick'] else ''}).\n"]
    skipped = {stage: len(record["skipped"]) for stage, record in results.get("budget", {}).get("stages", {}).items()
               if record["skipped"]}
    if skipped:
        lines.append("**Cut short by the time budget**: " + ", ".join(f"{stage} skipped {n} item(s)"
                                                                      for stage, n in skipped.items())
                     + " (each setting kept at least its first seed; see Time budget at the end).\n")
    if results["errors"]:
        lines.append("**Failed tasks** (their numbers are missing):\n")
        lines += [f"- {task}: `{error.splitlines()[0]}`" for task, error in results["errors"].items()]
        lines.append("")
    return lines


def _model_source(loaded_from: str) -> str:
    """How the report names a reused model: a shipped checkpoint by its name, anything else by its folder."""
    folder = Path(loaded_from)
    shipped = {folder_name: name for name, (folder_name, _) in PRETRAINED_MODELS.items()}
    if folder.parent.name == "pretrained" and folder.name in shipped:
        return f"the shipped checkpoint `{shipped[folder.name]}`"
    return f"the model kept at `{loaded_from}`"


def _pretraining_lines(results: dict, output: Path) -> list[str]:
    """The pretrained model, the ablation that chose it, any pretraining-length runs and the loss curve."""
    pre, ablation = results["pretraining"], results["ablation"]
    shape = (f"{pre['config']['hidden_size']} wide, {pre['config']['num_hidden_layers']} encoder layers + "
             f"{pre['config']['decoder_num_layers']} decoder layer, {pre['n_parameters']:,} parameters")
    if pre.get("loaded_from") and pre.get("steps") is None:  # a checkpoint without a training record beside it
        return ["## GexBERT pretraining and what was tried\n",
                f"This run did not pretrain: it reused {_model_source(pre['loaded_from'])} as it is ({shape}, "
                f"value embedding `{pre['value_embedding']}`). Its pretraining is described in its model card "
                "(and, for the shipped checkpoints, in `reports/pretraining_gpu/README.md`).\n"]
    lines = ["## GexBERT pretraining and what was tried\n",
             f"One masked-expression GexBERT pretrained on all train features, reused by every task: {shape}, "
             f"{pre['config']['max_genes']} genes per sample and step, value embedding "
             f"`{pre['value_embedding']}`, mask rate {pre['mask_fraction']}, {pre['steps']} steps in "
             f"{pre['seconds'] / 60:.1f} min (final loss {fmt(pre['final_loss'])}).\n"]
    if pre.get("loaded_from"):
        lines.append(f"This run did not pretrain: it reused {_model_source(pre['loaded_from'])}, whose "
                     "pretraining (and ablation, when recorded) the lines here describe.\n")
    if ablation["runs"]:
        lines += _ablation_lines(ablation, pre)
    length = results.get("pretraining_length")
    if length:
        lines.append(f"Pretraining length (same architecture, `{length['value_embedding']}`, mask rate "
                     f"{length['mask_fraction']}; `modeling/pretraining_length.py`), scored on validation as above:\n")
        keys = list(length["runs"][0]["validation"])
        rows = [[run["steps"], fmt(run["seconds"] / 60, 1), fmt(run["final_loss"]),
                 *[fmt(run["validation"][key]) for key in keys], run["source"]] for run in length["runs"]]
        lines.append(markdown_table(["steps", "minutes", "train loss", *keys, "run"], rows) + "\n")
    curve = pre.get("loss_curve") or []
    if curve:
        steps, losses = zip(*curve, strict=False)
        line_plot(output / "pretraining_loss.png", {"GexBERT pretraining": (list(steps), list(losses), None)},
                  "step", "masked-expression loss", f"{results['data']['folder']}: pretraining")
        lines.append("![pretraining loss](pretraining_loss.png)\n")
    return lines


def _ablation_lines(ablation: dict, pre: dict) -> list[str]:
    """The short pretraining runs behind the design choices, and what they chose."""
    rows = []
    for run in ablation["runs"]:
        val = run["validation"]
        rows.append([run["value_embedding"], run["mask_fraction"], run["steps"], fmt(run["seconds"], 0),
                     fmt(run["final_loss"]), *[fmt(v) for k, v in val.items() if k != "combined"],
                     fmt(val["combined"])])
    keys = [k for k in ablation["runs"][0]["validation"] if k != "combined"]
    return [f"Choices measured by short pretraining runs ({ablation['steps_each']} steps each), scored on the "
            "validation part by the per-gene standardised RMSE of restoring all genes from a random 16-gene "
            "panel and of 50% / 80% MCAR imputation (lower is better; `combined` = their mean):\n",
            markdown_table(["value embedding", "mask rate", "steps", "s", "train loss", *keys, "combined"], rows),
            f"\nChosen by measurement: value embedding **{ablation['chosen_value_embedding']}**, mask rate "
            f"**{ablation['chosen_mask_fraction']}**. Main run on validation: "
            + ", ".join(f"{k} {fmt(v)}" for k, v in pre["validation"].items()) + ".\n"]


def _runs(entries: list[dict], planned: list[int]) -> str:
    """How many seeds the settings ran ('3', or '1–3' when the time budget cut some short), of those planned."""
    done = sorted({len(entry.get("seeds", planned)) for entry in entries}) or [0]
    ran = str(done[0]) if done[0] == done[-1] else f"{done[0]}–{done[-1]}"
    return ran if done[0] == len(planned) else f"{ran} (of {len(planned)} planned)"


def _budget_lines(results: dict, listed: int = 12) -> list[str]:
    """Each stage's share of the time budget, what it used, and the items it did not start (the first `listed`)."""
    budget = results.get("budget")
    if not budget or not budget.get("stages"):
        return []
    rows = [[stage, fmt(record["allowed_seconds"] / 60, 1), fmt(record["used_seconds"] / 60, 1),
             len(record["skipped"])] for stage, record in budget["stages"].items()]
    lines = ["## Time budget\n",
             f"{fmt(budget['total_seconds'] / 60, 1)} min, shared out as each stage starts: its share of the time "
             "left among the stages still to run. A stage starts a further seed only while its longest unit so far "
             "still fits in what is left of its allowance; the first seed of every setting always runs.\n",
             markdown_table(["stage", "allowed (min)", "used (min)", "items skipped"], rows) + "\n"]
    for stage, record in budget["stages"].items():
        if record["skipped"]:
            items = [entry["item"] for entry in record["skipped"]]
            more = f" … and {len(items) - listed} more" if len(items) > listed else ""
            lines.append(f"- {stage}: skipped {'; '.join(items[:listed])}{more}: {record['skipped'][0]['reason']}.")
    return lines + [""]


# ----------------------------------------------------------------------------------------------------------------------
# one section per task: (task's results, all results, output folder) -> lines; verdicts are added to `results`
# ----------------------------------------------------------------------------------------------------------------------
def classification_section(classification: dict, results: dict, output: Path) -> list[str]:
    if "skipped" in classification:
        check = results.get("classification_check", {})
        return [f"Skipped: {classification['skipped']} (median |per-type gene mean| "
                f"{fmt(check.get('median_abs_type_mean'))}, median per-type SD {fmt(check.get('median_type_sd'))}"
                ").\n"]
    methods = list(next(iter(classification["per_panel"].values()))["methods"])
    for entry in classification["per_panel"].values():
        methods += [m for m in entry["methods"] if m not in methods]
    lines = []
    for metric in ("accuracy", "macro_f1"):
        lines += _classification_metric_lines(classification, methods, metric, results["data"]["folder"], output)
    verdicts = classification_verdicts(classification)
    results.setdefault("verdicts", {})["classification"] = verdicts
    rows = [[v["panel"], f"{v['gexbert']} {fmt(v['gexbert_accuracy'])}", f"{v['baseline']} "
             f"{fmt(v['baseline_accuracy'])}", f"{v['delta_accuracy']:+.3f}", shown(v["outcome"])]
            for v in verdicts]
    return lines + [
        "Best GexBERT variant against the best baseline (mean test accuracy):\n",
        markdown_table(["panel", "best GexBERT", "best baseline", "Δ", "verdict"], rows) + "\n",
        "Hyperparameters chosen on validation (first panel of each size, kept for the others): "
        + "; ".join(f"{key}: " + ", ".join(f"{m} {c['params']}" for m, c in entry["chosen"].items())
                    for key, entry in list(classification["per_panel"].items())[:2]) + " ….\n"]


def _classification_metric_lines(classification: dict, methods: list[str], metric: str, folder: str,
                                 output: Path) -> list[str]:
    """One metric's table (mean ± SD over panels, per size and method) and its plot against panel size."""
    rows = []
    for key, entry in classification["per_panel"].items():
        row = [key]
        for method in methods:
            values = entry["methods"].get(method, {}).get(metric, [])
            row.append(mean_spread(values) + (f" (n={len(values)})" if values and len(values) < 5 else ""))
        rows.append(row)
    series = {}
    keys = list(classification["per_panel"])
    for method in methods:
        points = [(i, classification["per_panel"][key]["methods"].get(method, {}).get(metric, []))
                  for i, key in enumerate(keys)]
        points = [(i, values) for i, values in points if values]
        if points:
            series[method] = ([i for i, _ in points], [mean_finite(values) for _, values in points],
                              [sd_finite(values) for _, values in points])
    line_plot(output / f"classification_{metric}.png", series, "panel size (features)", metric,
              f"{folder}: {metric} vs panel size", xticklabels=keys)
    return [f"Test {metric.replace('_', '-')}, mean ± SD over random panels (seeds):\n",
            markdown_table(["panel", *methods], rows) + "\n", f"![{metric}](classification_{metric}.png)\n"]


def _survival_section(survival: dict, results: dict, output: Path) -> list[str]:
    pooled = _pooled_survival_lines(survival["pooled"], results) if survival.get("pooled") else []
    if not survival["types"]:
        return ["Per type: no cancer type has enough events.\n", *pooled]
    lines = [f"{len(survival['types'])} cancer types with enough deaths; {survival['n_anchors']} anchors per "
             "type by univariate Cox score test on that type's train samples; ridge-Cox penalty chosen on a "
             "25% validation part of the type's train samples; C-index = mean over "
             f"{_runs([p for e in survival['per_type'].values() for p in e['by_panel'].values()], survival['seeds'])}"
             " random panels, 95% CI by bootstrap over test samples.\n"]
    for k, summary in survival["summary"].items():
        lines += _survival_panel_lines(survival, k, summary, results["data"]["folder"], output)
    results.setdefault("verdicts", {})["survival"] = {
        k: {"gexbert_share": s["share_of_gap_closed"].get("b: panel + GexBERT anchors"),
            "ridge_share": s["share_of_gap_closed"].get("d: panel + ridge anchors"),
            "knn_share": s["share_of_gap_closed"].get("d: panel + KNN anchors"),
            "n_gap_types": len(s["gap_types"])} for k, s in survival["summary"].items()}
    return lines + pooled


def _pooled_survival_lines(pooled: dict, results: dict) -> list[str]:
    """The pooled, type-stratified protocol: per panel size each arm's C-index, its paired gain over the panel and
    the share of the (a)->(c) gap it closes; its verdicts are added to `results`."""
    if pooled.get("not_run"):
        return [f"**Pooled over types**: not run ({pooled['not_run']}).\n"]
    lines = [f"**Pooled over types, stratified by type**: {len(pooled['types'])} types with ≥ "
             f"{pooled['min_train_events']} train and ≥ {pooled['min_test_events']} test deaths "
             f"({pooled['n_train']} train / {pooled['n_test']} test samples, {pooled['test_events']} test deaths); "
             f"{pooled['n_anchors']} anchors by the type-stratified Cox score test on train "
             f"({', '.join(pooled['anchors'])}); per arm one ridge Cox model with a baseline hazard per type (penalty "
             "chosen on a validation part stratified by type and event). C-index: Harrell's within each type, "
             "weighted by the type's test deaths, mean over panels; 95% intervals and paired differences to the "
             "panel arm by bootstrap within types.\n"]
    for k, entry in pooled["by_panel"].items():
        rows = [[arm, f"{fmt(value['c_index'])} [{fmt(value['ci95'][0], 2)}, {fmt(value['ci95'][1], 2)}]",
                 "–" if arm not in entry["vs_panel"] else f"{entry['vs_panel'][arm]['delta']:+.3f} "
                 f"[{entry['vs_panel'][arm]['ci95'][0]:+.3f}, {entry['vs_panel'][arm]['ci95'][1]:+.3f}]",
                 fmt(entry["share_of_gap_closed"].get(arm), 2)] for arm, value in entry["arms"].items()]
        lines += [f"Pooled, K = {k} ({len(entry['seeds'])} panels; anchor r GexBERT "
                  f"{fmt(entry['anchor_restoration_r']['GexBERT'], 2)}, ridge "
                  f"{fmt(entry['anchor_restoration_r']['ridge'], 2)}):\n",
                  markdown_table(["arm", "C-index [95% CI]", "Δ vs panel [95% CI]", "share of (a)→(c) gap"], rows)
                  + "\n"]
    results.setdefault("verdicts", {})["survival_pooled"] = pooled_survival_verdicts(pooled)
    return lines


def _survival_panel_lines(survival: dict, k: str, summary: dict, folder: str, output: Path) -> list[str]:
    """Panel size K: mean C-index per arm, the types with a real anchor gap and the share of it closed, the
    per-type table and its plot."""
    arms = list(summary["mean_c_index"])
    lines = [f"**K = {k}**: mean test C-index over types: "
             + ", ".join(f"{arm} {fmt(value)}" + (f" (only {summary['n_types'][arm]} types)" if summary.get(
                 "n_types", {}).get(arm, 10**9) < len(survival["per_type"]) else "")
                 for arm, value in summary["mean_c_index"].items()) + ".",
             f"Types where the true anchors help (c − a ≥ 0.02): {len(summary['gap_types'])} "
             f"({', '.join(summary['gap_types']) or 'none'}); others: {', '.join(summary['other_types']) or 'none'}."]
    if summary["share_of_gap_closed"]:
        have = {arm: sum(arm in survival["per_type"][c]["by_panel"][k]["arms"] for c in summary["gap_types"])
                for arm in summary["share_of_gap_closed"]}
        lines.append("Share of the (a)→(c) gap closed, mean over those types (median in brackets): "
                     + ", ".join(f"{arm} {fmt(value, 2)} ({fmt(summary['share_of_gap_closed_median'][arm], 2)})"
                                 + (f" [only {have[arm]} of them]" if have[arm] < len(summary["gap_types"]) else "")
                                 for arm, value in summary["share_of_gap_closed"].items()) + ".\n")
    rows = []
    for cancer, entry in survival["per_type"].items():
        panel = entry["by_panel"].get(k)
        if panel is None:
            continue
        row = [cancer, f"{entry['test_events']}/{entry['n_test']}"]
        for arm in arms:
            value = panel["arms"].get(arm)
            row.append("–" if value is None else f"{fmt(value['c_index'])} [{fmt(value['ci95'][0], 2)}, "
                                                 f"{fmt(value['ci95'][1], 2)}]")
        row.append(f"{fmt(panel['anchor_restoration_r']['GexBERT'], 2)} / "
                   f"{fmt(panel['anchor_restoration_r']['ridge'], 2)}")
        rows.append(row)
    bar_plot(output / f"survival_c_index_K{k}.png", list(survival["per_type"]),
             {arm: [survival["per_type"][c]["by_panel"][k]["arms"].get(arm, {}).get("c_index", np.nan)
                    for c in survival["per_type"]] for arm in arms},
             "test C-index", f"{folder}: survival, K = {k}")
    return lines + [markdown_table(["type", "test events/n", *arms, "anchor r GexBERT / ridge"], rows) + "\n",
                    f"![survival K={k}](survival_c_index_K{k}.png)\n"]


def imputation_section(imputation: dict, results: dict, output: Path) -> list[str]:
    scenarios = {scenario: entry for scenario, entry in imputation["per_scenario"].items() if entry["methods"]}
    masks = _runs(list(scenarios.values()), imputation["seeds"])
    tuned_on = imputation["tuning"].get("genes")
    lines = [f"{imputation['n_test_rows']} test samples; values removed per scenario with {masks} random masks; "
             "errors on the working scale over removed entries. "
             f"KNN k = {imputation['chosen']['KNN_k']} and SoftImpute penalty = "
             f"{imputation['chosen']['SoftImpute_penalty']} chosen on validation (50% MCAR"
             + (f", on a random {tuned_on} of the genes" if tuned_on and tuned_on < results["data"]["n_genes"] else "")
             + "). Per-gene r: each gene's removed entries against its imputed ones, averaged over genes (column "
             "mean scores 0). Std RMSE: RMSE of per-gene standardised values.\n"]
    methods = list(next(iter(scenarios.values()))["methods"])
    for metric in ("rmse", "mae", "pearson_r", "per_gene_r", "rmse_standardized"):
        rows = [[scenario] + [mean_spread(entry["methods"][m][metric]) for m in methods]
                for scenario, entry in scenarios.items()]
        lines += [f"**{metric}** (mean ± SD over masks):\n", markdown_table(["scenario", *methods], rows) + "\n"]
    calibration = [[scenario, mean_spread(entry["calibration_80"])]
                   for scenario, entry in scenarios.items() if entry["calibration_80"]]
    if calibration:
        lines += ["GexBERT 80% predictive interval: share of removed true values inside it (nominal 0.80):\n",
                  markdown_table(["scenario", "coverage"], calibration) + "\n"]
    mcar = [s for s in scenarios if s.startswith("MCAR")]
    rates = [int(s.split()[1].rstrip("%")) for s in mcar]
    for metric in ("rmse", "per_gene_r"):
        series = {m: (rates, [mean_finite(scenarios[s]["methods"][m][metric]) for s in mcar],
                      [sd_finite(scenarios[s]["methods"][m][metric]) for s in mcar]) for m in methods}
        line_plot(output / f"imputation_{metric}.png", series, "missing rate (%)", metric,
                  f"{results['data']['folder']}: imputation {metric} (MCAR)")
        lines.append(f"![imputation {metric}](imputation_{metric}.png)\n")
    verdicts = imputation_verdicts(imputation)
    results.setdefault("verdicts", {})["imputation"] = verdicts
    rows = [[v["scenario"], fmt(v["gexbert_rmse"]), f"{v['best_rmse_baseline']} {fmt(v['best_baseline_rmse'])}",
             shown(v["outcome_rmse"]), fmt(v["gexbert_per_gene_r"]),
             f"{v['best_r_baseline']} {fmt(v['best_baseline_per_gene_r'])}",
             shown(v["outcome_per_gene_r"])] for v in verdicts]
    return lines + [markdown_table(["scenario", "GexBERT RMSE", "best baseline RMSE", "RMSE", "GexBERT per-gene r",
                                    "best baseline per-gene r", "per-gene r"], rows) + "\n"]


def _attention_section(attention: dict, results: dict, output: Path) -> list[str]:
    lines = [f"Mean attention (all layers and heads) over {attention['samples_per_type']} train samples per "
             f"type, {attention['genes_analysed']} genes. Each type's most-attended genes = highest attention "
             "received in excess of the all-type mean. Overlap of each type's top "
             f"{attention['top']} attended genes with its top {attention['top']} differentially expressed "
             f"genes (Welch t, type vs rest, train): total {attention['total_overlap']} vs "
             f"{fmt(attention['expected_overlap'], 1)} expected by chance, z = {fmt(attention['overlap_z'], 2)}"
             f", one-sided p = {attention['overlap_p_one_sided']:.2g}; Fisher-combined p = "
             f"{attention['fisher_combined_p']:.2g}; {attention['types_significant_005']} of "
             f"{len(attention['per_type'])} types significant at 0.05 (hypergeometric, uncorrected).\n"]
    rows = [[cancer, ", ".join(entry["most_attended"][:5]), entry["overlap"], fmt(entry["expected_overlap"], 2),
             f"{entry['p_value']:.2g}"] for cancer, entry in attention["per_type"].items()]
    lines.append(markdown_table(["type", "most attended (excess)", "overlap with DE", "expected", "p"], rows) + "\n")
    heat = attention["heatmap"]
    if heat["genes"]:
        heatmap(output / "attention_heatmap.png", np.asarray(heat["excess_attention"]), heat["types"],
                heat["genes"], f"{results['data']['folder']}: excess attention received", "attention − all-type mean")
        lines.append("![attention heatmap](attention_heatmap.png)\n")
    return lines


_SECTIONS: tuple[tuple[str, str, Callable[[dict, dict, Path], list[str]]], ...] = (
    ("classification", "## 1. Cancer-type classification from limited random panels\n", classification_section),
    ("survival", "## 2. Survival: restoring prognostic anchor genes\n", _survival_section),
    ("imputation", "## 3. Imputation\n", imputation_section),
    ("attention", "## 4. Attention\n", _attention_section),
)
