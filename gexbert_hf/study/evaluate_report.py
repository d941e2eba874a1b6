"""report.md and PNG plots of `gexbert evaluate`, from its results dict (everything in the report is in results.json).

The tables, plots and verdicts are the benchmark's (`benchmark_report`, `benchmark_verdicts`: the same tie
tolerance, losses in capitals); this module adds the header, the plain-words verdicts, the comparison with the
same logistic regression on the raw panel, and what the time budget left out.
"""

from __future__ import annotations

from pathlib import Path

from .baselines import edge_note
from .benchmark_report import classification_section, imputation_section
from .benchmark_verdicts import TIE_TOLERANCE, classification_verdicts, imputation_verdicts, mean_finite, outcome, shown
from .reports import atomic_write, fmt, markdown_table
from .stage_budget import EVALUATE_RESERVE, EVALUATE_SHARES

UNKNOWN_SHOWN = 200  # unknown genes named in report.md; unknown_genes.txt holds them all
RAW_PANEL_BASELINE = "LR"
COVERAGE_SLACK = 0.05  # an 80% interval holding 0.75-0.85 of the hidden values is called about right


def write_report(results: dict, output: Path) -> Path:
    """Write report.md and the plots; adds the verdict tables to `results` (the caller re-saves results.json)."""
    output = Path(output)
    lines = _header_lines(results)
    lines += ["## Verdicts\n", f"Ties are differences within {TIE_TOLERANCE}; LOSS marks where a baseline is "
              "better.\n", *imputation_verdict_lines(results), *classification_verdict_lines(results), ""]
    lines += ["## 1. Imputation: values hidden completely at random in the test split\n",
              *_imputation_lines(results, output), *adapted_lines(results), *tuning_edge_lines(results)]
    lines += ["## 2. Classification from random gene panels\n", *_classification_lines(results, output)]
    lines += ["## Time budget\n", *budget_lines(results)]
    lines += ["## Timings\n", markdown_table(["stage", "minutes"], [[stage, fmt(seconds / 60, 1)] for stage, seconds
                                                                  in results["timings"].items()]) + "\n"]
    return atomic_write(output / "report.md", "\n".join(lines))


def _header_lines(results: dict) -> list[str]:
    """Title, checkpoint, cohort, the genes left out and why, the machine, failed stages."""
    model, data, arguments = results["model"], results["data"], results["arguments"]
    shipped = f" (shipped checkpoint `{model['shipped']}`)" if model["shipped"] else ""
    lines = [f"# GexBERT evaluation: `{model['name']}` on `{data['folder']}`\n",
             f"Checkpoint `{model['path']}`{shipped}: {model['vocabulary_size']} genes in its vocabulary, "
             f"normalisation `{model['normalization']}`, {model['n_parameters']:,} parameters; judged as it is, "
             "nothing retrained. Baselines are fitted and tuned on this cohort's train split only.\n",
             f"Cohort `{data['source']}`: {data['n_train']} train samples ({data['n_validation']} carved out as "
             f"validation for every choice), {data['n_test']} test samples (split: {data['split']}); "
             f"{data['n_genes']} of its {data['n_genes_in_file']} genes scored. Machine: "
             f"{results['machine']['device']}, {results['machine']['cpu_count']} CPU cores. Total "
             f"{results['timings'].get('total', float('nan')) / 60:.1f} min of a {arguments['time_budget_minutes']}"
             f"-minute budget{'; QUICK MODE: tiny settings, numbers not meaningful' if arguments['quick'] else ''}.\n"]
    unknown = data["unknown_genes"]
    if unknown:
        more = f" … (all {len(unknown)} in unknown_genes.txt)" if len(unknown) > UNKNOWN_SHOWN else ""
        lines.append(f"**{len(unknown)} genes unknown to the model's vocabulary**, left out of every score: "
                     + ", ".join(f"`{gene}`" for gene in unknown[:UNKNOWN_SHOWN]) + more + "\n")
    if data["genes_with_missing_values"]:
        lines.append(f"{len(data['genes_with_missing_values'])} known genes missing in more than half of the samples "
                     "are left out: "
                     + ", ".join(f"`{gene}`" for gene in data["genes_with_missing_values"][:20]) + "\n")
    if data.get("scattered_missing_cells"):
        lines.append(f"{data['scattered_missing_cells']} scattered missing cells in the scored genes: every method "
                     "fills them, none is scored on them (only measured cells that a mask hides count).\n")
    lines += overlap_lines(data.get("training_overlap"))
    if results.get("adaptation"):
        record = results["adaptation"]
        lines.append(f"**Adapted** beside the checkpoint as given: `gexbert adapt` on the {record['n_samples']} "
                     f"train samples ({record['steps']} steps in {record['train_seconds']:.0f} s, level edges "
                     f"refitted for {record['genes_refitted']} genes, learning rate "
                     f"{record['recipe']['learning_rate']:g}); `{ADAPTED}` in the tables, on the same masks.\n")
    if data["normalization"] != model["normalization"]:
        lines.append(f"**Scale mismatch**: this cohort's values look like `{data['normalization']}` input while the "
                     f"model was trained on `{model['normalization']}` input; its expression levels were learnt on "
                     "another scale, which the scores below include.\n")
    if results["errors"]:
        lines.append("**Failed stages** (their numbers are missing):\n")
        lines += [f"- {stage}: `{error.splitlines()[0]}`" for stage, error in results["errors"].items()]
        lines.append("")
    return lines


ADAPTED = "GexBERT adapted"


def overlap_lines(overlap: dict | None) -> list[str]:
    """What the checkpoint's record of its training samples says about this cohort."""
    if not overlap or not overlap.get("recorded"):
        return ["The checkpoint records no training-sample hashes: overlap with its training set was not checked.\n"]
    if overlap["test"]:
        return [f"**WARNING: {len(overlap['test'])} test samples were in the checkpoint's training set** (e.g. "
                f"`{overlap['test'][0]}`): its scores on them flatter it.\n"]
    shared_train = f" ({len(overlap['train'])} train samples were)" if overlap["train"] else ""
    return [f"No test sample is in the checkpoint's training set{shared_train} (salted hashes in its config).\n"]


def adapted_lines(results: dict) -> list[str]:
    """The adapted checkpoint against the best baseline and against the checkpoint as given, per rate."""
    per_scenario = (results.get("imputation") or {}).get("per_scenario", {})
    if not results.get("adaptation") or not per_scenario:
        return []
    view = {"per_scenario": {scenario: {"methods": {("GexBERT" if m == ADAPTED else m): v
                                                    for m, v in entry["methods"].items() if m != "GexBERT"}}
                             for scenario, entry in per_scenario.items() if ADAPTED in entry["methods"]}}
    rows = []
    for v in imputation_verdicts(view):
        shipped = per_scenario[v["scenario"]]["methods"]["GexBERT"]
        rows.append([v["scenario"], f"{fmt(mean_finite(shipped['rmse']))} → {fmt(v['gexbert_rmse'])}",
                     f"{v['best_rmse_baseline']} {fmt(v['best_baseline_rmse'])}", shown(v["outcome_rmse"]),
                     f"{fmt(mean_finite(shipped['per_gene_r']))} → {fmt(v['gexbert_per_gene_r'])}",
                     f"{v['best_r_baseline']} {fmt(v['best_baseline_per_gene_r'])}", shown(v["outcome_per_gene_r"])])
    results.setdefault("verdicts", {})["imputation_adapted"] = imputation_verdicts(view)
    return ["**Shipped → adapted** against the best baseline (same masks):\n",
            markdown_table(["scenario", "RMSE shipped → adapted", "best baseline", "adapted RMSE",
                            "per-gene r shipped → adapted", "best baseline", "adapted r"], rows) + "\n"]


def tuning_edge_lines(results: dict) -> list[str]:
    """Whether each tuned baseline's chosen value is inside the grid it was tuned over."""
    imputation = results.get("imputation") or {}
    if "chosen" not in imputation:
        return []
    notes = []
    for method, key in (("KNN", "KNN_k"), ("SoftImpute", "SoftImpute_penalty")):
        scores = imputation.get("tuning", {}).get(method)
        if scores:
            note = edge_note(scores, imputation["chosen"][key])
            notes.append(f"{method}: {note}." if note else f"{method}: {imputation['chosen'][key]} is interior to "
                         f"the {len(scores)} values tried ({', '.join(scores)}).")
    return (["Baseline tuning: " + " ".join(notes) + " The iterative imputer is not tuned (fixed rounds and 30 "
             "nearest features).\n"] if notes else [])


def _word(result: str, baseline: str, delta: float) -> str:
    """A verdict in words; a loss says who is better and by how much."""
    if result == "loss":
        return f"LOSS: {baseline} is better by {abs(delta):.3f}"
    return {"win": "GexBERT better", "tie": "tie"}.get(result, result)


def imputation_verdict_lines(results: dict) -> list[str]:
    """Per missing rate: GexBERT against the best baseline on RMSE and per-gene r, and its 80% interval coverage."""
    imputation = results.get("imputation") or {}
    verdicts = imputation_verdicts(imputation)
    if not verdicts:
        return ["- Imputation: no result (see section 1)."]
    lines = []
    for v in verdicts:
        coverage = mean_finite(imputation["per_scenario"][v["scenario"]]["calibration_80"])
        rmse = _word(v["outcome_rmse"], v["best_rmse_baseline"], v["gexbert_rmse"] - v["best_baseline_rmse"])
        r = _word(v["outcome_per_gene_r"], v["best_r_baseline"],
                  v["gexbert_per_gene_r"] - v["best_baseline_per_gene_r"])
        lines.append(f"- **Imputation {v['scenario']}**: RMSE {fmt(v['gexbert_rmse'])} vs {v['best_rmse_baseline']} "
                     f"{fmt(v['best_baseline_rmse'])} ({rmse}); per-gene r {fmt(v['gexbert_per_gene_r'])} vs "
                     f"{v['best_r_baseline']} {fmt(v['best_baseline_per_gene_r'])} ({r}); 80% interval holds "
                     f"{fmt(coverage, 2)} of the hidden values ({coverage_word(coverage)}).")
    counts = {key: [sum(v[key] == kind for v in verdicts) for kind in ("win", "tie", "loss")]
              for key in ("outcome_rmse", "outcome_per_gene_r")}
    lines.append(f"- In all: GexBERT wins / ties / loses RMSE at {'/'.join(map(str, counts['outcome_rmse']))} and "
                 f"per-gene r at {'/'.join(map(str, counts['outcome_per_gene_r']))} of {len(verdicts)} rates.")
    return lines


def coverage_word(coverage: float) -> str:
    """How an 80% interval's coverage reads: about right, too narrow (overconfident) or too wide."""
    if coverage != coverage:  # NaN
        return "not measured"
    if abs(coverage - 0.8) <= COVERAGE_SLACK:
        return "about the nominal 0.80"
    return "too narrow: overconfident" if coverage < 0.8 else "too wide: underconfident"


def classification_verdict_lines(results: dict) -> list[str]:
    """Per panel size: GexBERT's best variant against the best baseline, and each variant against the raw panel."""
    classification = results.get("classification") or {}
    if "skipped" in classification:
        return [f"- Classification: not run ({classification['skipped']})."]
    lines = []
    for v in classification_verdicts(classification):
        lines.append(f"- **Panel {v['panel']}**: {v['gexbert']} accuracy {fmt(v['gexbert_accuracy'])} vs "
                     f"{v['baseline']} {fmt(v['baseline_accuracy'])} ("
                     f"{_word(v['outcome'], v['baseline'], v['delta_accuracy'])}); macro F1 "
                     f"{fmt(v['gexbert_macro_f1'])} vs {fmt(v['baseline_macro_f1'])}.")
    return lines or ["- Classification: no result (see section 2)."]


def raw_panel_rows(classification: dict) -> list[list[str]]:
    """Per size and GexBERT variant: its accuracy and macro F1 against the same LR on the raw panel."""
    rows = []
    for key, entry in classification["per_panel"].items():
        methods = entry["methods"]
        if RAW_PANEL_BASELINE not in methods:
            continue
        base = {metric: mean_finite(methods[RAW_PANEL_BASELINE][metric]) for metric in ("accuracy", "macro_f1")}
        for method in (m for m in methods if m.startswith("GexBERT")):
            ours = {metric: mean_finite(methods[method][metric]) for metric in ("accuracy", "macro_f1")}
            rows.append([key, method, f"{fmt(ours['accuracy'])} vs {fmt(base['accuracy'])}",
                         f"{ours['accuracy'] - base['accuracy']:+.3f}", shown(outcome(ours["accuracy"],
                                                                                         base["accuracy"])),
                         f"{fmt(ours['macro_f1'])} vs {fmt(base['macro_f1'])}",
                         shown(outcome(ours["macro_f1"], base["macro_f1"]))])
    return rows


def _imputation_lines(results: dict, output: Path) -> list[str]:
    imputation = results.get("imputation")
    if imputation is None:
        return ["Failed (see the top of the report).\n"]
    if not imputation["per_scenario"]:
        return ["No missing rate finished within the time budget (see Time budget).\n"]
    return imputation_section(imputation, results, output)


def _classification_lines(results: dict, output: Path) -> list[str]:
    classification = results.get("classification")
    if classification is None:
        return ["Failed (see the top of the report).\n"]
    if "skipped" not in classification and not classification["per_panel"]:
        return ["No panel finished within the time budget (see Time budget).\n"]
    lines = classification_section(classification, results, output)
    if "skipped" in classification:
        return lines
    rows = raw_panel_rows(classification)
    return lines + ["Each GexBERT variant against the same logistic regression on the raw panel (mean test "
                    "accuracy and macro F1 over panels):\n",
                    markdown_table(["panel", "variant", "accuracy vs LR", "Δ", "verdict", "macro F1 vs LR",
                                    "verdict"], rows) + "\n"]


def budget_lines(results: dict) -> list[str]:
    """Each stage's share of the budget, what it used, and the units (seed x setting) it had no time for."""
    stages = _budget_stages(results.get("budget", {}))
    rows = [[stage, fmt(record["allowed_seconds"] / 60, 1), fmt(record["used_seconds"] / 60, 1),
             record["units_done"], len(record["skipped"])] for stage, record in stages.items()]
    lines = [f"Classification runs first in at most {EVALUATE_SHARES['classification']:.0%} of the budget left after "
             f"loading; imputation then gets all that is left ({EVALUATE_RESERVE:.0%} is kept for the report). A "
             "stage starts its next unit (one seed of one missing rate or panel size) only while its longest unit so "
             "far still fits in what is left of its share; the seeds run in order, so every setting gets seed 0 "
             "first.\n",
             markdown_table(["stage", "budget (min)", "used (min)", "units done", "units skipped"], rows) + "\n"]
    for stage, record in stages.items():
        if record["skipped"]:
            lines.append(f"**Skipped for time ({stage})**: " + ", ".join(record["skipped"]) + ".\n")
    if not any(record["skipped"] for record in stages.values()):
        lines.append("Nothing was skipped.\n")
    return lines


def _budget_stages(budget: dict) -> dict[str, dict]:
    """Per stage: allowed and used seconds, units done and the labels of those skipped; from the run clock's record
    (`stage_budget.RunClock.record`) or from an earlier results.json that kept one record per stage (budget_seconds,
    skipped labels as plain strings)."""
    stages = budget["stages"] if "stages" in budget else budget
    return {stage: {"allowed_seconds": record.get("allowed_seconds", record.get("budget_seconds")),
                    "used_seconds": record["used_seconds"], "units_done": record["units_done"],
                    "skipped": [entry["item"] if isinstance(entry, dict) else entry for entry in record["skipped"]]}
            for stage, record in stages.items()}


__all__ = ["budget_lines", "classification_verdict_lines", "coverage_word", "imputation_verdict_lines",
           "raw_panel_rows", "write_report"]
