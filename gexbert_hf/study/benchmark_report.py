"""report.md and PNG plots from a benchmark's results dict (everything in the report is in results.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..reports import bar_plot, fmt, heatmap, line_plot, markdown_table, mean_spread

GEXBERT_PREFIX = "GexBERT"
# Differences smaller than this (accuracy, RMSE, r) are ties: a 1e-16 float difference is not a win, nor 0.0 a loss.
TIE_TOLERANCE = 1e-3
# A survival target counts as met only when this many cancer types (each with a real anchor gap) carry it.
MIN_SURVIVAL_TYPES = 3


def outcome(ours: float, theirs: float, higher_is_better: bool = True, tolerance: float = TIE_TOLERANCE) -> str:
    """'win', 'tie' or 'loss' for our mean against the best baseline's, ties within `tolerance`."""
    if not (np.isfinite(ours) and np.isfinite(theirs)):
        return "n/a"
    delta = ours - theirs if higher_is_better else theirs - ours
    if abs(delta) <= tolerance:
        return "tie"
    return "win" if delta > 0 else "loss"


def _mean(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _sd(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _shown(result: str) -> str:
    """Losses in capitals so a reader's eye finds them."""
    return "LOSS" if result == "loss" else result


def classification_verdicts(classification: dict) -> list[dict]:
    """Per panel size: best GexBERT variant vs best baseline by mean test accuracy (and macro-F1)."""
    verdicts = []
    for key in classification.get("panel_sizes", []):
        methods = classification["per_panel"][key]["methods"]
        ours = {m: v for m, v in methods.items() if m.startswith(GEXBERT_PREFIX)}
        theirs = {m: v for m, v in methods.items() if not m.startswith(GEXBERT_PREFIX)}
        if not ours or not theirs:
            continue
        best_ours = max(ours, key=lambda m: _mean(ours[m]["accuracy"]))
        best_theirs = max(theirs, key=lambda m: _mean(theirs[m]["accuracy"]))
        delta = _mean(ours[best_ours]["accuracy"]) - _mean(theirs[best_theirs]["accuracy"])
        f1_ours = max(_mean(v["macro_f1"]) for v in ours.values())
        f1_theirs = max(_mean(v["macro_f1"]) for v in theirs.values())
        verdicts.append({"panel": key, "gexbert": best_ours, "gexbert_accuracy": _mean(ours[best_ours]["accuracy"]),
                         "baseline": best_theirs, "baseline_accuracy": _mean(theirs[best_theirs]["accuracy"]),
                         "delta_accuracy": delta, "gexbert_macro_f1": f1_ours, "baseline_macro_f1": f1_theirs,
                         "outcome": outcome(_mean(ours[best_ours]["accuracy"]),
                                            _mean(theirs[best_theirs]["accuracy"]))})
    return verdicts


def imputation_verdicts(imputation: dict) -> list[dict]:
    verdicts = []
    for scenario, entry in imputation.get("per_scenario", {}).items():
        methods = entry["methods"]
        if "GexBERT" not in methods:
            continue
        others = {m: v for m, v in methods.items() if m != "GexBERT"}
        best_rmse = min(others, key=lambda m: _mean(others[m]["rmse"]))
        best_r = max(others, key=lambda m: _mean(others[m]["per_gene_r"]))
        verdicts.append({
            "scenario": scenario,
            "gexbert_rmse": _mean(methods["GexBERT"]["rmse"]), "best_baseline_rmse": _mean(others[best_rmse]["rmse"]),
            "best_rmse_baseline": best_rmse,
            "gexbert_per_gene_r": _mean(methods["GexBERT"]["per_gene_r"]),
            "best_baseline_per_gene_r": _mean(others[best_r]["per_gene_r"]), "best_r_baseline": best_r,
            "outcome_rmse": outcome(_mean(methods["GexBERT"]["rmse"]), _mean(others[best_rmse]["rmse"]),
                                    higher_is_better=False),
            "outcome_per_gene_r": outcome(_mean(methods["GexBERT"]["per_gene_r"]),
                                          _mean(others[best_r]["per_gene_r"])),
        })
    return verdicts


def target_lines(results: dict) -> list[str]:
    """The issue's three targets, each answered win or loss from the numbers (verdicts are added to `results`)."""
    lines = []
    classification = results.get("classification")
    if classification and "per_panel" in classification:
        verdicts = classification_verdicts(classification)
        small = [v for v in verdicts if v["panel"] != "all" and int(v["panel"]) <= 64]
        wins = [v["panel"] for v in small if v["outcome"] == "win"]
        ties = [v["panel"] for v in small if v["outcome"] == "tie"]
        lines.append(f"- **Classification, panels ≤ 64**: GexBERT's best variant beats the best baseline at "
                     f"{len(wins)} of {len(small)} panel sizes"
                     + (f" ({', '.join(wins)})" if wins else "")
                     + (f", ties (within {TIE_TOLERANCE}) at {', '.join(ties)}" if ties else "") + ": "
                     + "; ".join(f"{v['panel']}: {fmt(v['gexbert_accuracy'])} vs {v['baseline']} "
                                 f"{fmt(v['baseline_accuracy'])} ({v['delta_accuracy']:+.3f})" for v in small) + ".")
    elif classification:
        lines.append("- **Classification**: not applicable to this folder (see section 1).")
    imputation = results.get("imputation")
    if imputation and "per_scenario" in imputation:
        verdicts = [v for v in imputation_verdicts(imputation)
                    if not v["scenario"].startswith("MCAR") or int(v["scenario"].split()[1].rstrip("%")) >= 50]
        def count(key: str, kind: str) -> int:
            return sum(v[key] == kind for v in verdicts)

        lines.append(f"- **Imputation at ≥ 50% missing** (ties within {TIE_TOLERANCE}): GexBERT wins RMSE in "
                     f"{count('outcome_rmse', 'win')} of {len(verdicts)} scenarios (ties "
                     f"{count('outcome_rmse', 'tie')}) and per-gene r in {count('outcome_per_gene_r', 'win')} of "
                     f"{len(verdicts)} (ties {count('outcome_per_gene_r', 'tie')}): "
                     + "; ".join(f"{v['scenario']}: RMSE {fmt(v['gexbert_rmse'])} vs {v['best_rmse_baseline']} "
                                 f"{fmt(v['best_baseline_rmse'])}, per-gene r {fmt(v['gexbert_per_gene_r'])} vs "
                                 f"{v['best_r_baseline']} {fmt(v['best_baseline_per_gene_r'])}" for v in verdicts)
                     + ".")
    survival = results.get("survival")
    if survival and survival.get("summary"):
        for k, summary in survival["summary"].items():
            shares = summary["share_of_gap_closed"]
            ours = shares.get("b: panel + GexBERT anchors")
            rivals = {arm: value for arm, value in shares.items() if arm.startswith("d:")}
            best_rival = max(rivals, key=rivals.get) if rivals else None
            if ours is None:
                lines.append(f"- **Survival, K = {k}**: no type where the true anchors add ≥ 0.02 C-index.")
                continue
            enough = len(summary["gap_types"]) >= MIN_SURVIVAL_TYPES
            met = enough and ours >= 0.5 and (best_rival is None or ours > rivals[best_rival] + TIE_TOLERANCE)
            verdict = "met" if met else ("NOT met" if enough else
                                         f"not decidable (fewer than {MIN_SURVIVAL_TYPES} types with a real gap)")
            lines.append(f"- **Survival, K = {k}**: restored anchors close {fmt(ours, 2)} of the (a)→(c) gap on average "
                         f"over {len(summary['gap_types'])} types where it is real; {best_rival} closes "
                         f"{fmt(rivals.get(best_rival), 2)}: target {verdict}.")
    return lines or ["- No task ran."]


def write_report(results: dict, output: Path) -> Path:
    """Write report.md and the plots; adds the verdict tables to `results` (callers re-save results.json)."""
    output = Path(output)
    lines: list[str] = []
    data = results["data"]
    timings = results["timings"]
    lines.append(f"# GexBERT benchmark: `{data['folder']}`\n")
    lines.append(f"{data['n_train']} train samples ({data['n_validation']} of them carved out as validation for "
                 f"every choice), {data['n_test']} test samples (fixed split.tsv), {data['n_genes']} features, "
                 f"normalisation `{data['normalization']}`. Machine: {results['machine']['device']}, "
                 f"{results['machine']['cpu_count']} CPU cores, {results['machine']['torch_threads']} torch thread(s). "
                 f"Total wall time {timings.get('total', float('nan')) / 60:.1f} min "
                 f"(time budget {results['arguments']['time_budget_minutes']} min"
                 f"{', QUICK MODE: tiny budgets, numbers not meaningful' if results['arguments']['quick'] else ''}).\n")
    if results["errors"]:
        lines.append("**Failed tasks** (their numbers are missing):\n")
        for task, error in results["errors"].items():
            lines.append(f"- {task}: `{error.splitlines()[0]}`")
        lines.append("")

    # ---- pretraining / what was tried ------------------------------------------------------------------------------
    pre = results["pretraining"]
    ablation = results["ablation"]
    lines.append("## GexBERT pretraining and what was tried\n")
    lines.append(f"One masked-expression GexBERT pretrained on all train features, reused by every task: "
                 f"{pre['config']['hidden_size']} wide, {pre['config']['num_hidden_layers']} encoder layers + "
                 f"{pre['config']['decoder_num_layers']} decoder layer, {pre['n_parameters']:,} parameters, "
                 f"{pre['config']['max_genes']} genes per sample and step, value embedding "
                 f"`{pre['value_embedding']}`, mask rate {pre['mask_fraction']}, {pre['steps']} steps in "
                 f"{pre['seconds'] / 60:.1f} min (final loss {fmt(pre['final_loss'])}).\n")
    if pre.get("loaded_from"):
        lines.append(f"This run did not pretrain: it reused the model kept at `{pre['loaded_from']}`, whose "
                     "pretraining (and ablation, when recorded) the lines here describe.\n")
    if ablation["runs"]:
        lines.append(f"Choices measured by short pretraining runs ({ablation['steps_each']} steps each), scored on the "
                     "validation part by the per-gene standardised RMSE of restoring all genes from a random 16-gene "
                     "panel and of 50% / 80% MCAR imputation (lower is better; `combined` = their mean):\n")
        rows = []
        for run in ablation["runs"]:
            val = run["validation"]
            rows.append([run["value_embedding"], run["mask_fraction"], run["steps"], fmt(run["seconds"], 0),
                         fmt(run["final_loss"]), *[fmt(v) for k, v in val.items() if k != "combined"],
                         fmt(val["combined"])])
        keys = [k for k in ablation["runs"][0]["validation"] if k != "combined"]
        lines.append(markdown_table(["value embedding", "mask rate", "steps", "s", "train loss", *keys, "combined"],
                                    rows))
        lines.append(f"\nChosen by measurement: value embedding **{ablation['chosen_value_embedding']}**, mask rate "
                     f"**{ablation['chosen_mask_fraction']}**. Main run on validation: "
                     + ", ".join(f"{k} {fmt(v)}" for k, v in pre["validation"].items()) + ".\n")
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
                  "step", "masked-expression loss", f"{data['folder']}: pretraining")
        lines.append("![pretraining loss](pretraining_loss.png)\n")

    # ---- classification --------------------------------------------------------------------------------------------
    lines.append("## 1. Cancer-type classification from limited random panels\n")
    classification = results.get("classification")
    if classification is None:
        lines.append("Not run.\n")
    elif "skipped" in classification:
        check = results.get("classification_check", {})
        lines.append(f"Skipped: {classification['skipped']} (median |per-type gene mean| "
                     f"{fmt(check.get('median_abs_type_mean'))}, median per-type SD {fmt(check.get('median_type_sd'))}"
                     ").\n")
    else:
        methods = list(next(iter(classification["per_panel"].values()))["methods"])
        for entry in classification["per_panel"].values():
            methods += [m for m in entry["methods"] if m not in methods]
        for metric in ("accuracy", "macro_f1"):
            rows = []
            for key, entry in classification["per_panel"].items():
                row = [key]
                for method in methods:
                    values = entry["methods"].get(method, {}).get(metric, [])
                    row.append(mean_spread(values) + (f" (n={len(values)})" if values and len(values) < 5 else ""))
                rows.append(row)
            lines.append(f"Test {metric.replace('_', '-')}, mean ± SD over random panels (seeds):\n")
            lines.append(markdown_table(["panel", *methods], rows) + "\n")
            series = {}
            keys = list(classification["per_panel"])
            for method in methods:
                xs, ms, ss = [], [], []
                for i, key in enumerate(keys):
                    values = classification["per_panel"][key]["methods"].get(method, {}).get(metric, [])
                    if values:
                        xs.append(i)
                        ms.append(_mean(values))
                        ss.append(_sd(values))
                if xs:
                    series[method] = (xs, ms, ss)
            line_plot(output / f"classification_{metric}.png", series, "panel size (features)", metric,
                      f"{data['folder']}: {metric} vs panel size", xticklabels=keys)
            lines.append(f"![{metric}](classification_{metric}.png)\n")
        verdicts = classification_verdicts(classification)
        results.setdefault("verdicts", {})["classification"] = verdicts
        rows = [[v["panel"], f"{v['gexbert']} {fmt(v['gexbert_accuracy'])}", f"{v['baseline']} "
                 f"{fmt(v['baseline_accuracy'])}", f"{v['delta_accuracy']:+.3f}", _shown(v["outcome"])]
                for v in verdicts]
        lines.append("Best GexBERT variant against the best baseline (mean test accuracy):\n")
        lines.append(markdown_table(["panel", "best GexBERT", "best baseline", "Δ", "verdict"], rows) + "\n")
        lines.append("Hyperparameters chosen on validation (first panel of each size, kept for the others): "
                     + "; ".join(f"{key}: " + ", ".join(f"{m} {c['params']}" for m, c in entry["chosen"].items())
                                 for key, entry in list(classification["per_panel"].items())[:2]) + " ….\n")

    # ---- survival ----------------------------------------------------------------------------------------------------
    lines.append("## 2. Survival: restoring prognostic anchor genes\n")
    survival = results.get("survival")
    if survival is None:
        lines.append("Not run.\n")
    elif not survival["types"]:
        lines.append("No cancer type has enough events.\n")
    else:
        lines.append(f"{len(survival['types'])} cancer types with enough deaths; {survival['n_anchors']} anchors per "
                     "type by univariate Cox score test on that type's train samples; ridge-Cox penalty chosen on a "
                     "25% validation part of the type's train samples; C-index = mean over "
                     f"{len(survival['seeds'])} random panels, 95% CI by bootstrap over test samples.\n")
        for k, summary in survival["summary"].items():
            arms = list(summary["mean_c_index"])
            lines.append(f"**K = {k}**: mean test C-index over types: "
                         + ", ".join(f"{arm} {fmt(value)}" + (f" (only {summary['n_types'][arm]} types)" if summary.get(
                             "n_types", {}).get(arm, 10**9) < len(survival["per_type"]) else "")
                             for arm, value in summary["mean_c_index"].items()) + ".")
            lines.append(f"Types where the true anchors help (c − a ≥ 0.02): {len(summary['gap_types'])} "
                         f"({', '.join(summary['gap_types']) or 'none'}); others: "
                         f"{', '.join(summary['other_types']) or 'none'}.")
            if summary["share_of_gap_closed"]:
                have = {arm: sum(arm in survival["per_type"][c]["by_panel"][k]["arms"] for c in summary["gap_types"])
                        for arm in summary["share_of_gap_closed"]}
                lines.append("Share of the (a)→(c) gap closed, mean over those types (median in brackets): "
                             + ", ".join(f"{arm} {fmt(value, 2)} ({fmt(summary['share_of_gap_closed_median'][arm], 2)})"
                                         + (f" [only {have[arm]} of them]" if have[arm] < len(summary["gap_types"])
                                            else "")
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
            lines.append(markdown_table(["type", "test events/n", *arms, "anchor r GexBERT / ridge"], rows) + "\n")
            bar_plot(output / f"survival_c_index_K{k}.png", list(survival["per_type"]),
                     {arm: [survival["per_type"][c]["by_panel"][k]["arms"].get(arm, {}).get("c_index", np.nan)
                            for c in survival["per_type"]] for arm in arms},
                     "test C-index", f"{data['folder']}: survival, K = {k}")
            lines.append(f"![survival K={k}](survival_c_index_K{k}.png)\n")
        results.setdefault("verdicts", {})["survival"] = {
            k: {"gexbert_share": s["share_of_gap_closed"].get("b: panel + GexBERT anchors"),
                "ridge_share": s["share_of_gap_closed"].get("d: panel + ridge anchors"),
                "knn_share": s["share_of_gap_closed"].get("d: panel + KNN anchors"),
                "n_gap_types": len(s["gap_types"])} for k, s in survival["summary"].items()}

    # ---- imputation --------------------------------------------------------------------------------------------------
    lines.append("## 3. Imputation\n")
    imputation = results.get("imputation")
    if imputation is None:
        lines.append("Not run.\n")
    else:
        lines.append(f"{imputation['n_test_rows']} test samples; values removed per scenario with "
                     f"{len(imputation['seeds'])} random masks; errors on the working scale over removed entries. "
                     f"KNN k = {imputation['chosen']['KNN_k']} and SoftImpute penalty = "
                     f"{imputation['chosen']['SoftImpute_penalty']} chosen on validation (50% MCAR). Per-gene r: each "
                     "gene's removed entries against its imputed ones, averaged over genes (column mean scores 0). "
                     "Std RMSE: RMSE of per-gene standardised values.\n")
        methods = list(next(iter(imputation["per_scenario"].values()))["methods"])
        for metric in ("rmse", "mae", "pearson_r", "per_gene_r", "rmse_standardized"):
            rows = [[scenario] + [mean_spread(entry["methods"][m][metric]) for m in methods]
                    for scenario, entry in imputation["per_scenario"].items()]
            lines.append(f"**{metric}** (mean ± SD over masks):\n")
            lines.append(markdown_table(["scenario", *methods], rows) + "\n")
        calibration = [[scenario, mean_spread(entry["calibration_80"])]
                       for scenario, entry in imputation["per_scenario"].items() if entry["calibration_80"]]
        if calibration:
            lines.append("GexBERT 80% predictive interval: share of removed true values inside it (nominal 0.80):\n")
            lines.append(markdown_table(["scenario", "coverage"], calibration) + "\n")
        mcar = [s for s in imputation["per_scenario"] if s.startswith("MCAR")]
        for metric in ("rmse", "per_gene_r"):
            rates = [int(s.split()[1].rstrip("%")) for s in mcar]
            series = {m: (rates, [_mean(imputation["per_scenario"][s]["methods"][m][metric]) for s in mcar],
                          [_sd(imputation["per_scenario"][s]["methods"][m][metric]) for s in mcar]) for m in methods}
            line_plot(output / f"imputation_{metric}.png", series, "missing rate (%)", metric,
                      f"{data['folder']}: imputation {metric} (MCAR)")
            lines.append(f"![imputation {metric}](imputation_{metric}.png)\n")
        verdicts = imputation_verdicts(imputation)
        results.setdefault("verdicts", {})["imputation"] = verdicts
        rows = [[v["scenario"], fmt(v["gexbert_rmse"]), f"{v['best_rmse_baseline']} {fmt(v['best_baseline_rmse'])}",
                 _shown(v["outcome_rmse"]), fmt(v["gexbert_per_gene_r"]),
                 f"{v['best_r_baseline']} {fmt(v['best_baseline_per_gene_r'])}",
                 _shown(v["outcome_per_gene_r"])] for v in verdicts]
        lines.append(markdown_table(["scenario", "GexBERT RMSE", "best baseline RMSE", "RMSE", "GexBERT per-gene r",
                                     "best baseline per-gene r", "per-gene r"], rows) + "\n")

    # ---- attention ---------------------------------------------------------------------------------------------------
    lines.append("## 4. Attention\n")
    attention = results.get("attention")
    if attention is None:
        lines.append("Not run.\n")
    else:
        lines.append(f"Mean attention (all layers and heads) over {attention['samples_per_type']} train samples per "
                     f"type, {attention['genes_analysed']} genes. Each type's most-attended genes = highest attention "
                     "received in excess of the all-type mean. Overlap of each type's top "
                     f"{attention['top']} attended genes with its top {attention['top']} differentially expressed "
                     f"genes (Welch t, type vs rest, train): total {attention['total_overlap']} vs "
                     f"{fmt(attention['expected_overlap'], 1)} expected by chance, z = {fmt(attention['overlap_z'], 2)}"
                     f", one-sided p = {attention['overlap_p_one_sided']:.2g}; Fisher-combined p = "
                     f"{attention['fisher_combined_p']:.2g}; {attention['types_significant_005']} of "
                     f"{len(attention['per_type'])} types significant at 0.05 (hypergeometric, uncorrected).\n")
        rows = [[cancer, ", ".join(entry["most_attended"][:5]), entry["overlap"], fmt(entry["expected_overlap"], 2),
                 f"{entry['p_value']:.2g}"] for cancer, entry in attention["per_type"].items()]
        lines.append(markdown_table(["type", "most attended (excess)", "overlap with DE", "expected", "p"], rows) + "\n")
        heat = attention["heatmap"]
        if heat["genes"]:
            heatmap(output / "attention_heatmap.png", np.asarray(heat["excess_attention"]), heat["types"],
                    heat["genes"], f"{data['folder']}: excess attention received", "attention − all-type mean")
            lines.append("![attention heatmap](attention_heatmap.png)\n")

    # ---- targets, closing note, timings -------------------------------------------------------------------------------
    targets = target_lines(results)
    header_end = 2 + (len(results["errors"]) + 2 if results["errors"] else 0)
    lines[header_end:header_end] = ["## Against the issue's targets\n", *targets, ""]
    notes = output / "notes.md"
    if notes.is_file():  # the closing note written after looking at the numbers (they are all in results.json)
        lines.append("## Closing note\n")
        lines.append(notes.read_text().strip() + "\n")
    lines.append("## Timings\n")
    lines.append(markdown_table(["stage", "minutes"], [[k, fmt(v / 60, 1)] for k, v in timings.items()]) + "\n")
    path = output / "report.md"
    path.write_text("\n".join(lines))
    return path
