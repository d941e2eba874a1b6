"""report.md of the lever study (`levers.py`): its numbers as tables, from the sections' JSON files; the prose that
judges them lives in reports/speed_release/README.md, written by hand from these tables."""

from __future__ import annotations

import json
from pathlib import Path

from ..reports import markdown_table

SECTIONS = ("accuracy", "speed", "command", "profile", "onnx")


def _load(directory: Path, name: str) -> dict:
    path = directory / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def accuracy_lines(accuracy: dict) -> list[str]:
    lines = ["## Accuracy of each lever against fp32 with the whole context (same masks)", "",
             "The release benchmark's masks (seed 0) on the first rows of its 400 test rows; RMSE and mean per-gene "
             "r over the removed entries (working scale); change = |variant - fp32 whole context| over the removed "
             "entries. samples/s is the accuracy run's own rate (contended, not the speed measure).", ""]
    for scenario, entry in sorted(accuracy.items(), key=lambda item: int(item[0].split()[1].rstrip("%"))):
        rows = entry["variants"]
        reference = next(row for row in rows if row["variant"] == "fp32")
        table = [[row["variant"], f"{row['rmse']:.4f}", f"{row['rmse'] - reference['rmse']:+.4f}",
                  f"{row['per_gene_r']:.4f}", f"{row['per_gene_r'] - reference['per_gene_r']:+.4f}",
                  f"{row['max_abs_change_vs_fp32']:.3f}", f"{row['mean_abs_change_vs_fp32']:.4f}",
                  f"{row['samples_per_s']:.2f}", f"{row['load_1min']:.1f}"] for row in rows]
        lines += [f"### {scenario}, {entry['rows']} test samples ({entry['mask']})", "",
                  markdown_table(["variant", "RMSE", "dRMSE", "per-gene r", "dr", "max change", "mean change",
                                  "samples/s", "load"], table), ""]
    return lines


def speed_lines(speed: dict) -> list[str]:
    lines = ["## Throughput in one run: GexBERT variants beside KNN and SoftImpute", "",
             "Baselines impute the whole masked test split (50% MCAR); each GexBERT variant imputes its first "
             "samples twice, in alternating order. / KNN = samples/s over KNN's at the same thread count. load = "
             "1-minute load average at the row's start (2 cores).", ""]
    for key, entry in speed.items():
        knn = {row["threads"]: row["samples_per_s"] for row in entry["rows"] if row["method"].startswith("KNN")}
        table = [[row["method"], row["threads"], row["samples"], f"{row['seconds']:.1f}",
                  f"{row['samples_per_s']:.2f}",
                  f"{row['samples_per_s'] / knn[row['threads']]:.3f}" if row["threads"] in knn else "",
                  f"{row['load_1min']:.1f}", row["time"]] for row in entry["rows"]]
        lines += [f"### {key}: {entry['test_samples']} test samples x {entry['genes']} genes", "",
                  markdown_table(["method", "threads", "samples", "seconds", "samples/s", "/ KNN", "load", "clock"],
                                 table), ""]
    return lines


def command_lines(command: dict) -> list[str]:
    if not command:
        return []
    table = [[row["method"], row["samples"], f"{row['seconds']:.1f}", f"{row['samples_per_s']:.2f}",
              row["threads"], f"{row['load_1min']:.1f}"] for row in command["runs"]]
    return ["## Whole command, fresh process (imports, loading, reading, writing)", "",
            markdown_table(["command", "samples", "seconds", "samples/s", "OMP threads", "load"], table), ""]


def profile_lines(profile: dict) -> list[str]:
    lines = []
    for key, rows in profile.items():
        table = [[row["variant"], f"{row['seconds']:.2f}", f"{row['peak_mib'] / 1024:.2f}", row["all_filled"],
                  f"{row['load_1min']:.1f}"] for row in rows]
        lines += [f"## One synthetic {key} profile, half missing (untrained model of tcga13-mrna's shape)", "",
                  markdown_table(["variant", "seconds", "peak RSS GiB (whole process)", "all filled", "load"],
                                 table), ""]
    return lines


def onnx_lines(onnx: dict) -> list[str]:
    """Lever 5: ORT against torch fp32 from one process, speed pooled over both passes, and release-mask accuracy."""
    if not onnx:
        return []
    lines = ["## ONNX Runtime against torch fp32 (one process, same samples)", "",
             "fused: attention exported as ORT's MultiHeadAttention op; ONNX ops: standard operators only (portable); "
             "int8: ORT dynamic int8 of the fused graph's MatMuls. samples/s pools the two passes (alternating "
             "order); x torch = that over torch fp32's at the same thread count; load = 1-minute load average range "
             "over the rows (2 cores).", ""]
    for key, entry in onnx.items():
        if key.endswith(" speed"):
            table = []
            for threads in sorted({row["threads"] for row in entry["rows"]}):
                rows = [row for row in entry["rows"] if row["threads"] == threads]
                pooled = {method: sum(r["samples"] for r in rows if r["method"] == method)
                          / sum(r["seconds"] for r in rows if r["method"] == method)
                          for method in dict.fromkeys(row["method"] for row in rows)}
                loads = [row["load_1min"] for row in rows]
                table += [[method, threads, rows[0]["samples"], f"{rate:.2f}", f"{rate / pooled['torch fp32']:.2f}",
                           f"{min(loads):.1f}-{max(loads):.1f}"] for method, rate in pooled.items()]
            lines += [f"### {key}: {entry['genes']} genes (export {entry['export_seconds']:.1f} s; model.onnx "
                      f"{entry['onnx_mib']:.1f} MiB, int8 {entry['onnx_int8_mib']:.1f} MiB)", "",
                      markdown_table(["variant", "threads", "samples per pass", "samples/s", "x torch", "load"],
                                     table), ""]
        else:
            for scenario, rows in entry["scenarios"].items():
                reference = rows[0]
                table = [[row["variant"], f"{row['rmse']:.4f}", f"{row['rmse'] - reference['rmse']:+.4f}",
                          f"{row['per_gene_r']:.4f}", f"{row['per_gene_r'] - reference['per_gene_r']:+.4f}",
                          f"{row['max_abs_change_vs_torch']:.2e}", f"{row['mean_abs_change_vs_torch']:.2e}",
                          f"{row['load_1min']:.1f}"] for row in rows]
                lines += [f"### {key}, {scenario}, {entry['rows']} release test samples (seed-0 mask)", "",
                          markdown_table(["variant", "RMSE", "dRMSE", "per-gene r", "dr", "max change",
                                          "mean change", "load"], table), ""]
    return lines


def write_levers_report(directory: Path) -> Path:
    """report.md beside the JSON files, from whichever sections were run."""
    found = {name: _load(directory, name) for name in SECTIONS}
    lines = ["# Imputation levers (issue 22): measured tables", "",
             "Generated by `python modeling/bench_speed.py levers --section render` from "
             + ", ".join(f"{name}.json" for name, data in found.items() if data) + ". Judgement and caveats: "
             "../README.md.", ""]
    lines += accuracy_lines(found["accuracy"]) + speed_lines(found["speed"]) + command_lines(found["command"])
    lines += profile_lines(found["profile"]) + onnx_lines(found["onnx"])
    path = directory / "report.md"
    path.write_text("\n".join(lines))
    return path
