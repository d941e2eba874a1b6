"""The benchmark's verdicts: GexBERT's best variant against the best baseline, win / tie / loss within a tolerance,
and the issue's three targets answered from the numbers."""

from __future__ import annotations

import numpy as np

from .reports import fmt

GEXBERT_PREFIX = "GexBERT"
# Differences smaller than this (accuracy, RMSE, r) are ties: a 1e-16 float difference is not a win, nor 0.0 a loss.
TIE_TOLERANCE = 1e-3
# A survival target counts as met only when this many cancer types (each with a real anchor gap) carry it.
MIN_SURVIVAL_TYPES = 3
# The pooled survival target is decided only with this many test deaths over the pooled types: below that, a
# within-type C-index moves by more than the 0.02 a restored anchor set can add.
MIN_POOLED_TEST_EVENTS = 40
GEXBERT_ANCHORS, TRUE_ANCHORS = "b: panel + GexBERT anchors", "c: panel + true anchors"


def outcome(ours: float, theirs: float, higher_is_better: bool = True, tolerance: float = TIE_TOLERANCE) -> str:
    """'win', 'tie' or 'loss' for our mean against the best baseline's, ties within `tolerance`."""
    if not (np.isfinite(ours) and np.isfinite(theirs)):
        return "n/a"
    delta = ours - theirs if higher_is_better else theirs - ours
    if abs(delta) <= tolerance:
        return "tie"
    return "win" if delta > 0 else "loss"


def mean_finite(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def sd_finite(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def shown(result: str) -> str:
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
        best_ours = max(ours, key=lambda m: mean_finite(ours[m]["accuracy"]))
        best_theirs = max(theirs, key=lambda m: mean_finite(theirs[m]["accuracy"]))
        ours_accuracy = mean_finite(ours[best_ours]["accuracy"])
        theirs_accuracy = mean_finite(theirs[best_theirs]["accuracy"])
        delta = ours_accuracy - theirs_accuracy
        f1_ours = max(mean_finite(v["macro_f1"]) for v in ours.values())
        f1_theirs = max(mean_finite(v["macro_f1"]) for v in theirs.values())
        verdicts.append({"panel": key, "gexbert": best_ours, "gexbert_accuracy": ours_accuracy,
                         "baseline": best_theirs, "baseline_accuracy": theirs_accuracy,
                         "delta_accuracy": delta, "gexbert_macro_f1": f1_ours, "baseline_macro_f1": f1_theirs,
                         "outcome": outcome(ours_accuracy, theirs_accuracy)})
    return verdicts


def imputation_verdicts(imputation: dict) -> list[dict]:
    verdicts = []
    for scenario, entry in imputation.get("per_scenario", {}).items():
        methods = entry["methods"]
        if "GexBERT" not in methods:
            continue
        others = {m: v for m, v in methods.items() if not m.startswith(GEXBERT_PREFIX)}  # variants are not baselines
        best_rmse = min(others, key=lambda m: mean_finite(others[m]["rmse"]))
        best_r = max(others, key=lambda m: mean_finite(others[m]["per_gene_r"]))
        verdicts.append({
            "scenario": scenario,
            "gexbert_rmse": mean_finite(methods["GexBERT"]["rmse"]),
            "best_baseline_rmse": mean_finite(others[best_rmse]["rmse"]),
            "best_rmse_baseline": best_rmse,
            "gexbert_per_gene_r": mean_finite(methods["GexBERT"]["per_gene_r"]),
            "best_baseline_per_gene_r": mean_finite(others[best_r]["per_gene_r"]), "best_r_baseline": best_r,
            "outcome_rmse": outcome(mean_finite(methods["GexBERT"]["rmse"]), mean_finite(others[best_rmse]["rmse"]),
                                    higher_is_better=False),
            "outcome_per_gene_r": outcome(mean_finite(methods["GexBERT"]["per_gene_r"]),
                                          mean_finite(others[best_r]["per_gene_r"])),
        })
    return verdicts


def pooled_survival_verdicts(pooled: dict) -> list[dict]:
    """Per panel size of the pooled protocol: met when GexBERT's anchors close at least half of the (a)->(c) gap,
    their paired gain over the panel has a 95% interval above 0, and they beat the best regression rival; decided
    only with MIN_SURVIVAL_TYPES types, MIN_POOLED_TEST_EVENTS test deaths, and a gap whose interval is above 0."""
    verdicts = []
    n_types, deaths = len(pooled.get("types", [])), pooled.get("test_events", 0)
    for k, entry in pooled.get("by_panel", {}).items():
        vs_panel = entry["vs_panel"]
        ours, gap = vs_panel.get(GEXBERT_ANCHORS), vs_panel.get(TRUE_ANCHORS)
        rivals = {arm: value["delta"] for arm, value in vs_panel.items() if arm.startswith("d:")}
        best_rival = max(rivals, key=rivals.get) if rivals else None
        share = entry["share_of_gap_closed"].get(GEXBERT_ANCHORS)
        if n_types < MIN_SURVIVAL_TYPES or deaths < MIN_POOLED_TEST_EVENTS:
            result = (f"not decidable ({n_types} types, {deaths} test deaths; needs {MIN_SURVIVAL_TYPES} and "
                      f"{MIN_POOLED_TEST_EVENTS})")
        elif ours is None or gap is None or not gap["ci95"][0] > 0:
            result = "not decidable (the true anchors' gain over the panel has a 95% interval reaching 0)"
        else:
            met = (share is not None and share >= 0.5 and ours["ci95"][0] > 0
                   and (best_rival is None or ours["delta"] > rivals[best_rival] + TIE_TOLERANCE))
            result = "met" if met else "NOT met"
        verdicts.append({"panel": k, "outcome": result, "share": share, "gexbert_delta": ours and ours["delta"],
                         "gexbert_ci95": ours and ours["ci95"], "gap": gap and gap["delta"],
                         "gap_ci95": gap and gap["ci95"], "best_rival": best_rival,
                         "rival_delta": rivals.get(best_rival), "n_types": n_types, "test_events": deaths})
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
    if survival and survival.get("pooled", {}).get("by_panel"):
        lines += _pooled_survival_target_lines(survival["pooled"])
    return lines or ["- No task ran."]


def _pooled_survival_target_lines(pooled: dict) -> list[str]:
    """The survival target answered by the pooled, type-stratified protocol, one line per panel size."""
    lines = []
    for v in pooled_survival_verdicts(pooled):
        interval = v["gexbert_ci95"] or [float("nan")] * 2
        lines.append(f"- **Survival pooled over {v['n_types']} types (stratified), K = {v['panel']}**: GexBERT's "
                     f"anchors add {fmt(v['gexbert_delta'])} C-index to the panel (95% CI {fmt(interval[0])} to "
                     f"{fmt(interval[1])}), the true anchors {fmt(v['gap'])}: share of the gap closed "
                     f"{fmt(v['share'], 2)}; {v['best_rival']} adds {fmt(v['rival_delta'])}: target {v['outcome']}.")
    return lines
