"""`gexbert build-dataset`: expression + clinical (+ split) files -> a tokenized `DatasetDict` and its tokenizer.

Everything is validated before anything is written, the output is assembled in a temporary folder beside the target
and moved into place at the end, so bad input or a crash leaves nothing half-written. An existing output is replaced
only with `--overwrite` (`overwrite=True`), and then only the files an earlier build wrote there (`gexbert_hf.outputs`): never a
folder holding the input files.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from ..errors import ClinicalInputError, ExpressionInputError
from ..expression_input_gexbert import as_expression_frame, is_anndata
from ..levels_gexbert import AUTO_NORMALIZATION, auto_normalization, check_normalization
from ..outputs import claim_output_dir
from .cohorts import Cohort
from .encoding import encode_to_dataset, fit_tokenizer, token_features
from .gene_ids import map_genes
from .readers import (
    apply_split,
    join_cohort,
    read_clinical,
    read_expression,
    read_gene_map,
    read_split,
)
from .splits import stratified_split

SUMMARY_NAME = "build_summary.json"


@dataclass
class BuildDatasetArguments:
    """Arguments of `gexbert build-dataset` (and of `data_scripts/build_dataset.py`)."""

    expression: str = field(metadata={"help": "Expression file: Xena genes x samples TSV(.gz), samples x genes "
                                              "CSV/TSV/Parquet, or AnnData .h5ad."})
    output: str = field(metadata={"help": "Output folder for the DatasetDict and the fitted tokenizer."})
    clinical: str | None = field(default=None, metadata={"help": "Clinical table (TSV/CSV/Parquet, one row per "
                                                                 "sample, column `sample`; or an .h5ad, its obs). "
                                                                 "Default with an .h5ad expression: its obs."})
    label_column: str | None = field(default=None, metadata={"help": "Clinical column holding the class label."})
    time_column: str | None = field(default=None, metadata={"help": "Clinical column holding the survival time."})
    event_column: str | None = field(default=None, metadata={"help": "Clinical column holding the event (1/0)."})
    split: str | None = field(default=None, metadata={"help": "Split table (`sample`, `split`); without one, a "
                                                               "seeded split stratified by the label."})
    normalization: str = field(default="auto", metadata={"help": "log1p | none | auto (none when any value is "
                                                                  "negative or the maximum is below 50)."})
    num_levels: int = field(default=32, metadata={"help": "Expression levels per gene (quantile bins)."})
    aggregate: str | None = field(default=None, metadata={"help": "How to merge duplicated genes: mean, median, "
                                                                   "max, sum or first (default: error)."})
    orientation: str = field(default="auto", metadata={"help": "Expression orientation: auto | genes_x_samples | "
                                                                "samples_x_genes."})
    layer: str | None = field(default=None, metadata={"help": "AnnData expression: the layer to read instead of X."})
    gene_column: str | None = field(default=None, metadata={"help": "AnnData expression: the var column naming the "
                                                                     "genes (e.g. gene_symbols) instead of var_names."})
    gene_map: str | None = field(default=None, metadata={"help": "Gene-id mapping: a two-column table with a header "
                                                                  "line, the expression's ids then the ones to use."})
    missing_clinical: str = field(default="error", metadata={"help": "Samples with a missing label/time/event: "
                                                                      "error | drop | keep."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an earlier build in that folder (only the "
                                                             "files it wrote; never a folder holding the inputs)."})
    seed: int = field(default=0, metadata={"help": "Seed of the stratified split (when no split table)."})
    test_fraction: float = field(default=0.2, metadata={"help": "Test share of the stratified split."})


def build_dataset(
    expression,
    clinical: str | Path | pd.DataFrame | None = None,
    *,
    output: str | Path,
    split: str | Path | pd.Series | None = None,
    label_column: str | None = None,
    time_column: str | None = None,
    event_column: str | None = None,
    normalization: str = "auto",
    num_levels: int = 32,
    aggregate: str | None = None,
    orientation: str = "auto",
    missing_clinical: str = "error",
    overwrite: bool = False,
    seed: int = 0,
    test_fraction: float = 0.2,
    verbose: bool = True,
    layer: str | None = None,
    gene_column: str | None = None,
    gene_map: str | Path | dict | None = None,
) -> dict:
    """Write `output/` = `DatasetDict.save_to_disk` (one split per name in the split) + the tokenizer fitted on train.

    `expression` is a file, a samples x genes DataFrame, an AnnData (obs x var; `layer`, `gene_column`), or a
    `Cohort` (whose registered columns are used unless given). Without `clinical`, an AnnData's (or `.h5ad`'s) obs
    holds the label / time / event columns; `gene_map` (a two-column file or a dict) renames genes. Returns the
    summary (samples, genes, classes, events, missing fraction), also saved as `build_summary.json` and printed
    when `verbose`.
    """
    started = time.perf_counter()
    output = Path(output)
    inputs = {label: value for label, value in (("--expression", expression), ("--clinical", clinical),
                                                ("--split", split)) if isinstance(value, (str, Path))}
    folder = claim_output_dir(output, "build-dataset", inputs, overwrite, flag="--overwrite")
    check_normalization(normalization, fitting=True)

    reading = {"aggregate": aggregate, "orientation": orientation, "layer": layer, "gene_column": gene_column,
               "gene_map": read_gene_map(gene_map) if isinstance(gene_map, (str, Path)) else gene_map}
    cohort = _cohort(expression, clinical, label_column, time_column, event_column, missing_clinical, reading)
    split, split_source = _cohort_split(cohort, split, seed, test_fraction)

    requested = normalization
    normalization = _resolved_normalization(normalization, cohort, split, expression)
    positions = pd.Series(np.arange(len(cohort.expression)), index=cohort.expression.index)
    tokenizer = fit_tokenizer(cohort.expression, positions[split.index[split == "train"]].to_numpy(),
                              normalization=normalization, num_levels=num_levels)
    vocabulary = np.array([tokenizer.vocabulary_name(gene) is not None for gene in cohort.expression.columns])
    expression_frame = cohort.expression if vocabulary.all() else cohort.expression.loc[:, vocabulary]

    sample_features, sample_columns, class_names = _clinical_columns(cohort)
    features = token_features(tokenizer, sample_features)
    output.parent.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix=f".{output.name}.building-", dir=output.parent))
    try:
        splits = {}
        for name in [name for name in ("train", "validation", "test") if name in set(split)]:
            samples = split.index[split == name]
            rows = positions[samples].to_numpy()
            splits[name] = encode_to_dataset(
                tokenizer, expression_frame, rows, {key: values[rows] for key, values in sample_columns.items()},
                features, workspace / "cache", description=f"tokenizing {name}",
            )
        staged = workspace / "dataset"
        datasets.DatasetDict(splits).save_to_disk(str(staged))
        tokenizer.save_pretrained(staged)
        summary = _summary(cohort, split, tokenizer, class_names, normalization, requested, split_source, output,
                           time.perf_counter() - started)
        (staged / SUMMARY_NAME).write_text(json.dumps(summary, indent=1))
        del splits
        folder.publish(staged)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    if verbose:
        print(format_summary(summary))
    return summary


def _resolved_normalization(normalization: str, cohort: Cohort, split: pd.Series, expression) -> str:
    """`auto` decided on the training samples' values (one rule everywhere: test samples never shape the tokenizer),
    `log1p` checked for negative values naming the sample."""
    if normalization == AUTO_NORMALIZATION:
        return auto_normalization(cohort.expression[(split.reindex(cohort.expression.index) == "train").to_numpy()])
    if normalization == "log1p":
        source = str(expression) if isinstance(expression, (str, Path)) else cohort.name
        check_non_negative(cohort.expression, split.index, source)
    return normalization


def _cohort_split(cohort: Cohort, split: str | Path | pd.Series | None, seed: int, test_fraction: float
                  ) -> tuple[pd.Series, str]:
    """The split of every cohort sample (a split table, else a seeded stratified one) and where it came from."""
    if isinstance(split, (str, Path)):
        split_source = str(split)
        split = read_split(split)
    else:
        split_source = "split table"
    if split is None:
        labels = cohort.clinical[cohort.label_column] if cohort.label_column else None
        split = stratified_split(labels, cohort.expression.index, test_fraction, seed)
        split_source = f"stratified split (seed {seed}, test fraction {test_fraction})"
    split = apply_split(cohort, split, source=split_source)
    if "train" not in set(split):
        raise ValueError(f"{split_source}: no training sample; the tokenizer is fitted on the train split")
    return split, split_source


def build_dataset_from_arguments(args: BuildDatasetArguments) -> int:
    """The `gexbert build-dataset` entry point: one library call."""
    options = asdict(args)
    expression, clinical = options.pop("expression"), options.pop("clinical")
    build_dataset(expression, clinical, **options)
    return 0


def format_summary(summary: dict) -> str:
    """Human-readable lines of a build summary."""
    lines = [f"built {summary['output']} in {summary['seconds']:.1f} s",
             f"  samples: {summary['samples']} ({', '.join(f'{k} {v}' for k, v in summary['splits'].items())}; "
             f"{summary['split_source']})",
             f"  genes: {summary['genes']}, missing fraction {summary['missing_fraction']:.4f}, "
             f"normalization {summary['normalization']} ({summary['normalization_reason']})"]
    if summary.get("classes"):
        lines.append(f"  classes ({summary['label_column']}): " +
                     ", ".join(f"{name} {count}" for name, count in summary["classes"].items()))
    if summary.get("events") is not None:
        lines.append(f"  events ({summary['event_column']}): {summary['events']} of {summary['samples']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------------
def _cohort(expression, clinical, label_column, time_column, event_column, missing_clinical, reading) -> Cohort:
    """Read and join the inputs; a Cohort passes through (re-checked) with its own registered columns."""
    if isinstance(expression, Cohort):
        cohort = expression
        return join_cohort(cohort.expression, cohort.clinical, label_column or cohort.label_column,
                           time_column or cohort.time_column, event_column or cohort.event_column,
                           missing_clinical, cohort.name, f"{cohort.name} clinical", name=cohort.name)
    if clinical is None:
        return _anndata_cohort(expression, label_column, time_column, event_column, missing_clinical, reading)
    clinical_source = str(clinical) if isinstance(clinical, (str, Path)) else "clinical table"
    clinical = read_clinical(clinical) if isinstance(clinical, (str, Path)) else clinical
    if isinstance(expression, (str, Path)):
        expression_source = str(expression)
        expression = read_expression(expression, sample_ids=clinical.index, **reading)
    else:
        expression_source = "expression matrix"
        expression = _in_memory_frame(expression, reading)
    return join_cohort(expression, clinical, label_column, time_column, event_column, missing_clinical,
                       expression_source, clinical_source, name=Path(expression_source).name)


def _anndata_cohort(expression, label_column, time_column, event_column, missing_clinical, reading) -> Cohort:
    """No clinical table: an AnnData (object or .h5ad) whose obs holds the registered columns."""
    from .anndata import load_anndata, obs_table

    is_file = isinstance(expression, (str, Path))
    if is_file and str(expression).lower().endswith(".h5ad"):
        adata, source = load_anndata(expression), str(expression)
    elif not is_file and is_anndata(expression):
        adata, source = expression, "AnnData"
    else:
        raise ClinicalInputError("build_dataset needs a clinical table (--clinical), unless the expression is an "
                                 "AnnData / .h5ad whose obs holds the label, time and event columns")
    frame = _in_memory_frame(adata, reading, source=source)
    return join_cohort(frame, obs_table(adata, source), label_column, time_column, event_column, missing_clinical,
                       source, f"{source} obs", name=Path(source).name)


def _in_memory_frame(expression, reading: dict, source: str = "expression matrix") -> pd.DataFrame:
    """A DataFrame or AnnData (with its layer / gene column) -> validated samples x genes, genes mapped if asked."""
    frame = as_expression_frame(expression, aggregate=reading["aggregate"], source=source, layer=reading["layer"],
                                gene_column=reading["gene_column"])
    if reading["gene_map"] is None:
        return frame
    return map_genes(frame, reading["gene_map"], reading["aggregate"], source=source)


def check_non_negative(expression: pd.DataFrame, samples: pd.Index, source: str, chunk: int = 1024) -> None:
    """log1p needs non-negative values: name the gene and the sample id of the first negative one up front, since
    the tokenizer is fitted on bare training rows and could only name a row number."""
    rows = np.sort(expression.index.get_indexer(samples))
    values = expression.to_numpy()
    first, count = None, 0
    for start in range(0, len(rows), chunk):
        negative = values[rows[start : start + chunk]] < 0
        if first is None and negative.any():
            row, column = np.argwhere(negative)[0]
            first = (rows[start + row], column)
        count += int(negative.sum())
    if first is not None:
        row, column = first
        raise ExpressionInputError(
            f"{source}: normalization='log1p' needs non-negative values, but gene {expression.columns[column]!r} is "
            f"{values[row, column]:g} in sample {expression.index[row]!r} ({count} negative cells); use "
            "--normalization none (or auto) for data already logged or z-scored"
        )


def _clinical_columns(cohort: Cohort) -> tuple[dict, dict[str, np.ndarray], list[str]]:
    """Per-sample stored columns, named as the heads' `forward` arguments: `labels` (ClassLabel over all classes,
    -1 = missing), `survival_time`, `event`."""
    features: dict = {}
    columns: dict[str, np.ndarray] = {}
    class_names: list[str] = []
    clinical = cohort.clinical
    if cohort.label_column:
        labels = clinical[cohort.label_column]
        class_names = sorted(labels.dropna().astype(str).unique())
        lookup = {name: index for index, name in enumerate(class_names)}
        features["labels"] = datasets.ClassLabel(names=class_names)
        columns["labels"] = np.array([lookup.get(str(v), -1) if pd.notna(v) else -1 for v in labels], dtype=np.int64)
    if cohort.time_column:
        features["survival_time"] = datasets.Value("float32")
        features["event"] = datasets.Value("float32")  # float: NaN marks a missing event under missing='keep'
        columns["survival_time"] = clinical[cohort.time_column].to_numpy(np.float32)
        columns["event"] = clinical[cohort.event_column].to_numpy(np.float32)
    return features, columns, class_names


def _summary(cohort: Cohort, split: pd.Series, tokenizer, class_names, normalization, requested, split_source,
             output, seconds) -> dict:
    values = cohort.expression.to_numpy()
    rows = cohort.expression.index.get_indexer(split.index)
    missing = sum(int(np.isnan(values[rows[i : i + 1024]]).sum()) for i in range(0, len(rows), 1024))
    missing /= len(rows) * values.shape[1]
    values_min, values_max = float(np.nanmin(values)), float(np.nanmax(values))
    if requested != "auto":
        reason = f"as requested; values span {values_min:.3g} .. {values_max:.3g}"
    elif normalization == "log1p":
        reason = f"auto: values span {values_min:.3g} .. {values_max:.3g}, raw-looking scale"
    else:
        reason = f"auto: values span {values_min:.3g} .. {values_max:.3g}, already logged or z-scored"
    summary = {
        "output": str(output),
        "name": cohort.name,
        "samples": int(len(split)),
        "splits": {name: int(count) for name, count in split.value_counts().sort_index(ascending=False).items()},
        "split_source": split_source,
        "genes": len(tokenizer.genes),
        "num_levels": tokenizer.num_levels,
        "missing_fraction": missing,
        "normalization": normalization,
        "normalization_reason": reason,
        "label_column": cohort.label_column,
        "classes": None,
        "time_column": cohort.time_column,
        "event_column": cohort.event_column,
        "events": None,
        "seconds": round(seconds, 2),
    }
    if cohort.label_column:
        counts = cohort.clinical.loc[split.index, cohort.label_column].astype(str).value_counts()
        summary["classes"] = {name: int(counts.get(name, 0)) for name in class_names}
    if cohort.event_column:
        summary["events"] = int(np.nansum(cohort.clinical.loc[split.index, cohort.event_column].to_numpy()))
    return summary


__all__ = ["BuildDatasetArguments", "build_dataset", "build_dataset_from_arguments", "format_summary"]
