"""`gexbert design-panel`: its arguments, the panel files it writes and what it prints.

The design itself is the library call `gexbert_hf.panel_design.design_panel` (train split only). The run that also
draws the classical designs and judges every panel on the test split is study work (`gexbert_hf.study.panel_run`,
which the CLI calls with these arguments). Writes panel.tsv (the GexBERT path, first column `gene`), panel_K.txt (one
gene a line, per size, usable as `--must_include` or `--candidates`), results.json, report.md and plots into a
folder it owns (`gexbert_hf.outputs`).
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..input_scale import scale_check_field
from ..panel_design import PanelDesign, PanelInputError


@dataclass
class DesignPanelArguments:
    """Design a K-gene panel with a pretrained GexBERT on a cohort's train split; compare it on the test split."""

    model: str = field(metadata={"help": "A shipped checkpoint (tcga31-mirna, tcga13-mrna) or a model folder with a "
                                         "masked-expression head."})
    data_dir: str = field(metadata={"help": "Data folder (expression.tsv.gz, clinical.tsv, split.tsv) or an .h5ad "
                                            "file (obs: labels, optional `split` column)."})
    output: str = field(metadata={"help": "Folder for panel.tsv, panel_K.txt, report.md, results.json, plots."})
    size: str = field(default="16", metadata={"help": "Panel size K, or a list such as 8,16,32,64: the greedy path "
                                                      "gives every smaller panel as a prefix of the largest."})
    objective: str = field(default="auto", metadata={
        "help": "classify (cancer-type accuracy), restore (per-gene r of the unmeasured genes) or both; auto: "
                "classify where the data has usable type labels, else restore."})
    label_column: str = field(default="cancer_type", metadata={"help": "Clinical (or obs) column of the class."})
    candidates: str | None = field(default=None, metadata={"help": "File of genes an assay can measure (one a "
                                                                    "line): the panel is chosen among them."})
    must_include: str | None = field(default=None, metadata={"help": "File of genes already measured (one a line): "
                                                                      "kept, first, in every panel."})
    minutes: float = field(default=30.0, metadata={"help": "Wall-time budget of the whole run (design, classical "
                                                           "designs, judging on test); the search adapts to it."})
    compare: bool = field(default=True, metadata={"help": "Also draw the classical designs and judge every panel "
                                                          "on the test split."})
    eval_data_dir: str | None = field(default=None, metadata={"help": "Another cohort (folder or .h5ad) the same "
                                                                       "panels are judged on (transfer)."})
    quick: bool = field(default=False, metadata={"help": "Tiny settings (tests, smoke runs)."})
    train_rows: int = field(default=2500, metadata={"help": "Train rows the test-split readers are fitted on."})
    restore_rows: int = field(default=200, metadata={"help": "Test samples whose unmeasured genes are restored."})
    seed: int = field(default=0, metadata={"help": "Seed of the validation carve-out and every subsample."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an earlier design-panel run in --output."})
    scale_check: str = scale_check_field()
    progress: bool = field(default=True, metadata={"help": "Progress bar and lines."})
    layer: str | None = field(default=None, metadata={"help": ".h5ad input: the layer to read instead of X."})
    gene_column: str | None = field(default=None, metadata={"help": ".h5ad input: the var column naming genes."})


def say(message: str) -> None:
    """A timestamped progress line."""
    print(f"[{time.strftime('%H:%M:%S')}] design-panel: {message}", flush=True)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in str(text).split(",") if part.strip()})
    except ValueError:
        raise PanelInputError(f"--size must be a number or a comma-separated list, got {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise PanelInputError(f"--size must be positive, got {text!r}")
    return sizes


def design_settings(quick: bool) -> dict:
    return ({"max_fit_rows": 60, "max_score_rows": 40, "max_queries": 16, "max_verified": 2, "prescreen": 30}
            if quick else {"max_fit_rows": 800, "max_score_rows": 300, "max_queries": 64, "max_verified": 4})


def write_design(output: Path, design: PanelDesign, sizes: list[int]) -> None:
    table = design.table()
    _write_text(output / "panel.tsv", table.to_csv(sep="\t", index=False, float_format="%.5g"))
    for size in sizes:
        _write_text(output / f"panel_{size}.txt", "\n".join(design.panel(size)) + "\n")


def _write_text(path: Path, text: str) -> None:
    """Written beside its place, then renamed: a reader never sees half a panel."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(text)
    os.replace(handle.name, path)


def machine_line() -> str:
    """The CPU, torch's thread count and how busy the machine was (a shared machine stretches every budget)."""
    load = f", load average {os.getloadavg()[0]:.1f} at start" if hasattr(os, "getloadavg") else ""
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}{load}"
