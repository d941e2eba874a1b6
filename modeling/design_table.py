#!/usr/bin/env python
"""Render reports/pretraining_gpu/README.md from the records in that folder: one design table per data folder
(every `<run>/validation.json` of `modeling/pretrain_release_gpu.py`, and the previous CPU release from
`decoding.json`), the decoding table (`modeling/decoding_probe.py`), the CUDA precision check and what they show.
Every number comes from those files.

    python modeling/design_table.py [--folder reports/pretraining_gpu] [--output README.md in that folder]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = REPOSITORY / "reports" / "pretraining_gpu"
RATES = ("mcar50", "mcar70", "mcar90")
RUN_FIELDS = ("data", "arguments", "device", "parameters", "steps", "train_seconds", "eval_loss", "validation_rows",
              "validation")
ARGUMENT_FIELDS = ("hidden_size", "num_hidden_layers", "batch_size", "mask_fraction", "max_mask_fraction",
                   "learning_rate", "seed")
PREVIOUS_FIELDS = ("parameters", "hidden_size", "num_hidden_layers", "pretraining", *RATES)
PRETRAINING_FIELDS = ("commit", "device", "torch_threads", "steps", "train_seconds", "batch_size", "max_genes",
                      "mask_fraction", "pretrained_rows", "validation_rows_in_pretraining")
DECODING_NAMES = {"level_mean": "level mean (what `impute` returns)", "value_head": "value head",
                  "average": "average of the two", "level_median": "level median"}
DECODED_FIELDS = ("rmse", "per_gene_r", "genes_scored", "per_gene_r_benchmark")
PRECISION_NAMES = {"no": "fp32", "bf16": "bf16", "fp16": "fp16"}


class MissingField(KeyError):
    """A record lacks a field the table needs."""


def need(record: dict, fields, where: str) -> dict:
    """`record`, after checking it holds every one of `fields` (a MissingField naming `where` and the field if not)."""
    for field in fields:
        if record.get(field) is None:
            raise MissingField(f"{where}: no {field!r}")
    return record


def load_runs(folder: Path) -> dict[str, dict]:
    """Every run folder's validation.json under `folder`, by run name, checked for the fields the table uses."""
    runs = {}
    for path in sorted(folder.glob("*/validation.json")):
        name = path.parent.name
        record = need(json.loads(path.read_text()), RUN_FIELDS, f"{name}/validation.json")
        need(record["arguments"], ARGUMENT_FIELDS, f"{name}/validation.json arguments")
        for rate in RATES:
            need(need(record["validation"], [rate], f"{name}/validation.json validation")[rate],
                 ("rmse", "per_gene_r"), f"{name}/validation.json validation.{rate}")
        runs[name] = record
    if not runs:
        raise FileNotFoundError(f"no <run>/validation.json under {folder}")
    return dict(sorted(runs.items(), key=lambda item: (stage_one_of(item[1]) is not None, item[0])))


def load_decoding(folder: Path, data_names) -> dict:
    path = folder / "decoding.json"
    decoding = need(json.loads(path.read_text()), ("decodings", "folders"), "decoding.json")
    for data in data_names:
        record = need(need(decoding["folders"], [data], "decoding.json folders")[data],
                      ("rows", "genes", "knn", "models", "truth_tail", "types_in_rows", "types_in_validation"),
                      f"decoding.json {data}")
        need(record["knn"], ("k", "reference_rows", *RATES), f"decoding.json {data} knn")
        for rate in RATES:
            need(record["knn"][rate], DECODED_FIELDS, f"decoding.json {data} knn.{rate}")
        models = need(record["models"], ("shipped", "previous_release"), f"decoding.json {data} models")
        need(models["shipped"], ("run", *RATES), f"decoding.json {data} shipped")
        need(models["previous_release"], PREVIOUS_FIELDS, f"decoding.json {data} previous_release")
        need(models["previous_release"]["pretraining"], PRETRAINING_FIELDS,
             f"decoding.json {data} previous_release.pretraining")
        for model in models.values():
            for rate in RATES:
                for name in decoding["decodings"]:
                    need(need(model[rate], [name], f"decoding.json {data} {rate}")[name], DECODED_FIELDS,
                         f"decoding.json {data} {rate}.{name}")
    return decoding


# ----------------------------------------------------------------------------------------------------------------------
# formatting
# ----------------------------------------------------------------------------------------------------------------------
def pair(score: dict) -> str:
    return f"{score['rmse']:.3f} / {score['per_gene_r']:.3f}"


def triple(score: dict) -> str:
    return f"{score['rmse']:.3f} / {score['per_gene_r']:.3f} / {score['per_gene_r_benchmark']:.3f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(row) + " |"
                                                                          for row in rows)]


def mask_rate(arguments: dict) -> str:
    if arguments["max_mask_fraction"] in (None, "None"):
        return f"fixed {float(arguments['mask_fraction']):g}"
    return f"{float(arguments['mask_fraction']):g}-{float(arguments['max_mask_fraction']):g} per sample"


def samples_seen(runs: dict, record: dict) -> str:
    seen = record["steps"] * int(record["arguments"]["batch_size"])
    start = stage_one_of(record)
    if start is None:
        return f"{seen:,}"
    before = runs[start]
    return f"{seen:,} (+{before['steps'] * int(before['arguments']['batch_size']):,} in {start})"


def stage_one_of(record: dict) -> str | None:
    """The run a second stage continued from (None for a first stage)."""
    init = record["arguments"].get("init_from")
    return None if init in (None, "None") else Path(init).parent.name


LAYOUTS = {False: "every token", True: "measured only (MAE)"}


def layout(arguments: dict) -> str:
    """Which tokens the encoder reads: all (MASK queries too), or the measured ones only (`encoder_skips_queries`)."""
    return LAYOUTS[str(arguments.get("encoder_skips_queries", False)) == "True"]


def design_rows(runs: dict, data: str, previous: dict, genes: int) -> list[list[str]]:
    rows = []
    for name, record in runs.items():
        if record["data"] != data:
            continue
        arguments = record["arguments"]
        precision = "fp32" if record["device"] == "cpu" else "bf16"
        start = stage_one_of(record)
        rows.append([f"`{name}`" + (f" (stage 2, from `{start}`)" if start else ""),
                     f"{arguments['hidden_size']} x {arguments['num_hidden_layers']}",
                     f"whole profile ({genes:,})", layout(arguments), mask_rate(arguments),
                     f"{record['device']} {precision}, {record['train_seconds'] / 60:.1f} min",
                     f"{record['steps']:,}", samples_seen(runs, record), f"{record['parameters']:,}",
                     f"{record['eval_loss']:.3f}",
                     *(pair(record["validation"][rate]) for rate in RATES)])
    before = previous["pretraining"]
    rows.append([f"previous release (`{before['commit']}`)*", f"{previous['hidden_size']} x "
                 f"{previous['num_hidden_layers']}", f"{before['max_genes']}-gene subsets", LAYOUTS[False],
                 f"fixed {before['mask_fraction']:g}",
                 f"{before['device'].upper()} ({before['torch_threads']} thread) fp32, "
                 f"{before['train_seconds'] / 60:.1f} min", f"{before['steps']:,}",
                 f"{before['steps'] * before['batch_size']:,}", f"{previous['parameters']:,}", "not recorded",
                 *(pair(previous[rate]["level_mean"]) for rate in RATES)])
    return rows


RATE_HEADERS = [f"{rate.removeprefix('mcar')}% RMSE / r" for rate in RATES]
DESIGN_HEADER = ["run", "width x depth", "context (genes)", "encoder reads", "mask rate", "device, minutes", "steps", "samples seen",
                 "parameters", "held-out loss", *RATE_HEADERS]


def decoding_rows(record: dict, decodings: list[str]) -> list[list[str]]:
    rows = []
    for label, model in (("shipped (stage 2)", record["models"]["shipped"]),
                         ("previous release*", record["models"]["previous_release"])):
        rows += [[label, DECODING_NAMES.get(name, name), *(triple(model[rate][name]) for rate in RATES)]
                 for name in decodings]
    knn = record["knn"]
    rows.append([f"KNN (k = {knn['k']}, {knn['reference_rows']:,} reference rows)", "-",
                 *(triple(knn[rate]) for rate in RATES)])
    return rows


def precision_rows(check: dict) -> list[list[str]]:
    return [[PRECISION_NAMES.get(key, key), f"{value['first_loss']:.4f}", f"{value['final_loss']:.4f}",
             str(value["finite"]), f"{value['restored_rmse_vs_fp32']:.4f}"]
            for key, value in check.items() if isinstance(value, dict)]


# ----------------------------------------------------------------------------------------------------------------------
# what the numbers show, worded from the numbers
# ----------------------------------------------------------------------------------------------------------------------
def by_design(runs: dict, data: str) -> dict[str, dict]:
    """This folder's runs keyed by design: `range128`, `fixed128`, `range192`, `stage2`."""
    designs = {}
    for record in runs.values():
        if record["data"] != data:
            continue
        arguments = record["arguments"]
        if stage_one_of(record):
            designs["stage2"] = record
        else:
            kind = "fixed" if arguments["max_mask_fraction"] in (None, "None") else "range"
            designs[f"{kind}{arguments['hidden_size']}"] = record
    return designs


def versus(first: dict, second: dict, rate: str) -> str:
    """`first` against `second` at `rate`: r and RMSE, with which is better."""
    a, b = first["validation"][rate], second["validation"][rate]
    higher = "higher" if a["per_gene_r"] > b["per_gene_r"] else "not higher"
    lower = "lower" if a["rmse"] < b["rmse"] else "not lower"
    return (f"r {a['per_gene_r']:.3f} vs {b['per_gene_r']:.3f} ({higher}), "
            f"RMSE {a['rmse']:.3f} vs {b['rmse']:.3f} ({lower})")


def improved(after: dict, before: dict) -> tuple[int, int]:
    """How many of the six validation numbers `after` improves over `before` (r up, RMSE down), of how many."""
    count = sum(after["validation"][rate]["per_gene_r"] > before["validation"][rate]["per_gene_r"]
                for rate in RATES)
    count += sum(after["validation"][rate]["rmse"] < before["validation"][rate]["rmse"] for rate in RATES)
    return count, 2 * len(RATES)


def decoding_verdict(decoding: dict) -> list[str]:
    """For the shipped models: in how many folder x rate cells each other decoding beats the level mean on both
    RMSE and r."""
    lines = []
    cells = [(data, rate) for data in decoding["folders"] for rate in RATES]
    for name in decoding["decodings"]:
        if name == "level_mean":
            continue
        wins = [cell for cell in cells if _beats(decoding["folders"][cell[0]]["models"]["shipped"][cell[1]], name)]
        lines.append(f"- {DECODING_NAMES.get(name, name)}: lower RMSE and higher r* than the level mean in "
                     f"{len(wins)} of {len(cells)} folder x rate cells"
                     + (f" ({', '.join(f'{data} {rate}' for data, rate in wins)})" if wins else "") + ".")
    return lines


def _beats(scores: dict, name: str) -> bool:
    return (scores[name]["rmse"] < scores["level_mean"]["rmse"]
            and scores[name]["per_gene_r_benchmark"] > scores["level_mean"]["per_gene_r_benchmark"])


def asymmetric_lines(runs: dict) -> list[str]:
    """The equal-CPU-minutes pair of layouts, when both runs are here; else that it was not run."""
    pairs = {layout(record["arguments"]): (name, record) for name, record in runs.items()
             if record["device"] == "cpu"}
    if set(pairs) != set(LAYOUTS.values()):
        return ["- The asymmetric (MAE-style) encoder, MASK queries kept out of the encoder "
                "(`encoder_skips_queries`): no equal-minutes pair of runs here."]
    (mae_name, mae), (all_name, every) = pairs[LAYOUTS[True]], pairs[LAYOUTS[False]]
    return [f"- The asymmetric (MAE-style) encoder against today's layout at equal CPU minutes (`{mae_name}` vs "
            f"`{all_name}`, one thread each, side by side on a 2-core machine shared with four other runs): "
            f"{mae['steps']:,} vs {every['steps']:,} steps in the same minutes, and validation numbers no better "
            f"(50%: {versus(mae, every, 'mcar50')}; 90%: {versus(mae, every, 'mcar90')}). Both runs are far too "
            f"short to show what either layout reaches ({samples_seen(runs, mae)} and {samples_seen(runs, every)} "
            f"samples seen, against {shipped_samples(runs, mae['data'])} for the shipped model of that folder): the "
            "layout buys steps, not accuracy by itself, and the comparison at a useful length was not run."]


def shipped_samples(runs: dict, data: str) -> str:
    """Samples the shipped model of `data` saw over its two stages."""
    stage2 = by_design(runs, data).get("stage2")
    return samples_seen(runs, stage2) if stage2 else "not recorded"


def findings(runs: dict, decoding: dict, data_names: list[str]) -> list[str]:
    lines = ["## What this shows", ""]
    gpu_runs = {name: record for name, record in runs.items() if record["device"] != "cpu"}
    stage_one = [record for record in gpu_runs.values() if not stage_one_of(record)]
    lines.append(
        f"- Equal GPU minutes, not equal compute: the {len(stage_one)} stage-1 runs shared one GPU with the CUDA "
        "precision check (`modeling/gpu_release_runs.sh`), each for the same wall time, so each design got the steps "
        f"its speed allowed in that contention (steps column); stage 2 ran its {len(gpu_runs) - len(stage_one)} runs "
        "beside a second precision check (`modeling/gpu_release_continue.sh`). One seed per design: no run was "
        "repeated, so how far another seed would move these numbers is not known.")
    for data in data_names:
        designs = by_design(runs, data)
        if {"range128", "fixed128"} <= designs.keys():
            lines.append(f"- {data}, per-sample mask rate (range) vs fixed 0.5, both 128 x 4: at 50% the fixed rate "
                         f"has {versus(designs['fixed128'], designs['range128'], 'mcar50')}; at 90% the range has "
                         f"{versus(designs['range128'], designs['fixed128'], 'mcar90')}.")
        if {"range128", "range192"} <= designs.keys():
            wider, count = improved(designs["range192"], designs["range128"])
            lines.append(f"- {data}, width 192 vs 128 (range, equal minutes, {designs['range192']['steps']:,} vs "
                         f"{designs['range128']['steps']:,} steps): 192 is better on {wider} of {count} validation "
                         f"numbers (50%: {versus(designs['range192'], designs['range128'], 'mcar50')}).")
        if {"range128", "stage2"} <= designs.keys():
            better, count = improved(designs["stage2"], designs["range128"])
            lines.append(f"- {data}, stage 2 vs the stage-1 model it continued: better on {better} of {count} "
                         f"validation numbers (90%: {versus(designs['stage2'], designs['range128'], 'mcar90')}); "
                         f"it also had {designs['stage2']['train_seconds'] / 60:.1f} more minutes.")
        tail = decoding["folders"][data]["truth_tail"]
        lines.append(f"- {data}: the top {tail['top_fraction']:.1%} of validation cells hold "
                     f"{tail['share_of_squares']:.1%} of the summed squared centred values (largest |value| "
                     f"{tail['max_abs_centred']:,.1f}), so RMSE there "
                     + ("mostly weighs those few cells; read per-gene r."
                        if tail["share_of_squares"] > 0.5 else "is spread over many cells."))
    lines += [
        "- The held-out loss is each run's own training objective on validation rows, at its own mask rate(s): "
        "fixed-0.5 and range runs are not comparable on it, nor are stage-1 and stage-2 runs of another seed.",
        "- *The previous release was pretrained on every train row, the validation rows included, on 128-gene "
        "subsets, and is read here with whole profiles: its validation numbers are not held out, and favour it.",
        "",
        "## What was not compared",
        "",
        *asymmetric_lines(runs),
        "- Runs of equal minutes (or equal steps) across devices: the CPU and GPU rows differ in device, minutes, "
        "context, width and depth at once, so the table does not separate those causes.",
        "- Other seeds, other learning rates for the wider model, and test-split scores: the test split is judged "
        "by `gexbert benchmark`, not here.",
    ]
    return lines


HEADER = ["# Pretraining designs on a GPU (release of the shipped checkpoints)", "",
          "Generated by `python modeling/design_table.py` from the `validation.json` of every run folder here "
          "(`modeling/pretrain_release_gpu.py`), `decoding.json` (`modeling/decoding_probe.py`) and "
          "`cuda_precision_check.json`; do not edit by hand.", "",
          "Validation scores: hidden cells of the first validation rows (the validation part the benchmark carves out "
          "of train, seed 0; never test) at the MCAR rates of each column, the same masks for every row of every "
          "table; RMSE on the working scale (lower is better) / mean per-gene Pearson r (higher is better).", ""]
DECODING_INTRO = ("One forward pass per mask, several read-outs (`modeling/decoding_probe.py`, CPU, fp32, one "
                  "thread); KNN fills the same cells (k as tuned by the benchmark on this folder, every "
                  "train-minus-validation row as reference). Whole profiles as context. r is the mean per-gene r "
                  "as validation.json has it (genes where r is undefined left out); r* is the benchmark's "
                  "(`mean_per_gene_r`: a gene whose prediction does not vary counts 0).")


def fewer_genes(record: dict, decodings: list[str]) -> list[str]:
    """A note where a read-out leaves r undefined on more genes than the level mean does (its r is then over an
    easier set of genes; r* is not)."""
    lines = []
    for label, model in record["models"].items():
        for name in decodings:
            gaps = {rate: model[rate]["level_mean"]["genes_scored"] - model[rate][name]["genes_scored"]
                    for rate in RATES}
            if max(gaps.values()) > 0:
                lines.append(f"- {label.replace('_', ' ')}, {DECODING_NAMES.get(name, name)}: r is undefined (a "
                             "constant read-out) on "
                             + ", ".join(f"{gap} more genes at {rate.removeprefix('mcar')}%"
                                         for rate, gap in gaps.items())
                             + " than for the level mean; compare r* instead.")
    return [*lines, ""] if lines else []


def decoding_section(decoding: dict, data_names: list[str]) -> list[str]:
    lines = ["## Decoding a hidden value", "", DECODING_INTRO, ""]
    for data in data_names:
        record = decoding["folders"][data]
        shipped = record["models"]["shipped"]
        lines += [f"### {data}", "", *table(["model", "decoding", *(f"{rate.removeprefix('mcar')}% RMSE / r / r*"
                                                                    for rate in RATES)],
                                            decoding_rows(record, decoding["decodings"])), ""]
        lines += fewer_genes(record, decoding["decodings"])
        differences = shipped.get("level_mean_minus_validation_json")
        if differences:
            largest = max(abs(value) for value in differences.values())
            lines += [f"The level mean of the shipped model here (CPU) and in `{shipped['run']}/validation.json` "
                      f"(GPU) differ by at most {largest:.1e} in RMSE.", ""]
    return [*lines, "Across both folders, for the shipped models:", "", *decoding_verdict(decoding), ""]


def precision_section(check: dict) -> list[str]:
    for key, value in check.items():
        if isinstance(value, dict):
            need(value, ("first_loss", "final_loss", "finite", "restored_rmse_vs_fp32"),
                 f"cuda_precision_check.json {key}")
    return ["## CUDA mixed precision", "",
            f"`modeling/cuda_precision_check.py` on {check['device']} (torch {check['torch']}): {check['steps']} "
            "training steps through the package's Accelerate loop from the same start, per precision; the restored "
            "values compared with fp32's.", "",
            *table(["precision", "first loss", "final loss", "finite", "restored RMSE vs fp32"], precision_rows(check)),
            ""]


def render(folder: Path = DEFAULT_FOLDER) -> str:
    runs = load_runs(folder)
    data_names = list(dict.fromkeys(record["data"] for record in runs.values()))
    decoding = load_decoding(folder, data_names)
    check = need(json.loads((folder / "cuda_precision_check.json").read_text()), ("device", "torch", "steps"),
                 "cuda_precision_check.json")
    lines = list(HEADER)
    for data in data_names:
        record = decoding["folders"][data]
        lines += [f"## {data}", "", f"{record['rows']} validation rows x {record['genes']:,} genes; the rows are "
                  f"the validation part's first, in file order, and cover {record['types_in_rows']} of its "
                  f"{record['types_in_validation']} cancer types, so these numbers compare designs on the same rows "
                  "but are not the benchmark's test numbers.", "",
                  *table(DESIGN_HEADER, design_rows(runs, data, record["models"]["previous_release"],
                                                    record["genes"])), ""]
    lines += [*decoding_section(decoding, data_names), *precision_section(check), *findings(runs, decoding, data_names)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--output", type=Path, default=None, help="default: README.md in --folder")
    args = parser.parse_args(argv)
    (args.output or args.folder / "README.md").write_text(render(args.folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
