"""Readers: expression files in the layouts the field publishes, clinical and split tables, and their join.

Every reader returns samples x genes (expression) or one row per sample (clinical), validated, with errors that name
the file and the offending line, column, gene or sample. Nothing is dropped silently: samples found in only one of
expression / clinical are counted in a warning.
"""

from __future__ import annotations

import functools
import gzip
import logging
import warnings
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pyarrow.lib import ArrowException

from ..errors import ClinicalInputError, ExpressionInputError, GexBertError, one_line, preview
from ..expression_input_gexbert import as_expression_frame, describe_ids
from .cohorts import Cohort
from .gene_ids import ORIENTATIONS, detect_orientation, gene_map_from_table, map_genes

logger = logging.getLogger(__name__)

MISSING_CLINICAL = ("error", "drop", "keep")
SPLIT_NAMES = ("train", "validation", "test")
_TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
# what the parsers raise for a file that is truncated, corrupt or not in the format its name says
UNREADABLE = (EOFError, zlib.error, OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError,
              ArrowException)


def _names_unreadable_files(error_class: type[GexBertError], kind: str):
    """Decorate a reader so that a file the parsers cannot decode (a truncated `.gz`, a corrupt Parquet or h5ad, a
    binary file named `.csv`) raises one `error_class` line naming the file, not a library traceback."""

    def decorate(reader):
        @functools.wraps(reader)
        def read(path, *args, **kwargs):
            try:
                return reader(path, *args, **kwargs)
            except GexBertError:
                raise
            except UNREADABLE as error:
                raise error_class(f"{path}: cannot be read as {kind} ({one_line(error)}); is the file complete and "
                                  "in the format its name says?") from error

        return read

    return decorate


# ----------------------------------------------------------------------------------------------------------------------
# expression
# ----------------------------------------------------------------------------------------------------------------------
@_names_unreadable_files(ExpressionInputError, "an expression file")
def read_expression(
    path: str | Path,
    orientation: str = "auto",
    aggregate: str | None = None,
    sample_ids: Sequence[str] | None = None,
    vocabulary: Sequence[str] | None = None,
    layer: str | None = None,
    gene_column: str | None = None,
    gene_map: str | Path | Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Any supported expression file -> validated samples x genes float64 DataFrame (NaN = not measured).

    `.h5ad` is AnnData (obs = samples; `layer` instead of `X`, `gene_column` a var column naming the genes). Tables
    (TSV / CSV / Parquet, first column = row names) may be either way round: with `orientation='auto'` the axis whose
    names overlap `vocabulary` (the model's genes) holds the genes, else the axis overlapping `sample_ids` (the
    clinical table's) holds the samples, else id patterns decide (TCGA barcodes, Ensembl ids, gene symbols...), else
    the format: tab-separated files are Xena genes x samples, CSV / Parquet samples x genes. `gene_map` (a
    two-column file or a dict, from -> to) renames the genes.
    """
    path = _existing(path, ExpressionInputError)
    if orientation not in ORIENTATIONS:
        raise ExpressionInputError(f"{path}: orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    gene_map = read_gene_map(gene_map) if isinstance(gene_map, (str, Path)) else gene_map
    if path.name.lower().endswith(".h5ad"):
        frame = read_h5ad(path, aggregate=aggregate, layer=layer, gene_column=gene_column)
        _check_anndata_orientation(path, frame, orientation, vocabulary, sample_ids, gene_map)
    else:
        if layer is not None or gene_column is not None:
            raise ExpressionInputError(f"{path}: `layer` and `gene_column` apply to an AnnData (.h5ad) input only")
        orientation = table_orientation(path, orientation, vocabulary, sample_ids, gene_map)
        if orientation == "genes_x_samples":
            frame = read_xena_tsv(path, aggregate=aggregate)
        else:
            frame = read_expression_table(path, aggregate=aggregate)
    return frame if gene_map is None else map_genes(frame, gene_map, aggregate, source=str(path))


@_names_unreadable_files(ExpressionInputError, "an expression table")
def table_orientation(
    path: str | Path,
    orientation: str = "auto",
    vocabulary: Sequence[str] | None = None,
    sample_ids: Sequence[str] | None = None,
    gene_map: Mapping[str, str] | None = None,
) -> str:
    """The way round a table file is (`samples_x_genes` or `genes_x_samples`), `auto` decided as `read_expression`
    does: a command writes its output the same way round as its input."""
    path = Path(path)
    if orientation != "auto":
        return orientation
    rows, columns = _file_axes(path)
    return detect_orientation(rows, columns, vocabulary, sample_ids, gene_map, source=str(path)) or (
        "samples_x_genes" if path.name.lower().endswith(_TABLE_SUFFIXES) else "genes_x_samples")


@_names_unreadable_files(ExpressionInputError, "a Xena genes x samples table")
def read_xena_tsv(path: str | Path, aggregate: str | None = None) -> pd.DataFrame:
    """Genes x samples (UCSC-Xena layout: header `sample` + one column per sample; each row a gene) -> samples x genes.

    Tab-separated by default, comma-separated for `.csv`, plain or gzip; Parquet with the genes as index or first
    column.
    """
    raw = _read_checked_table(_existing(path, ExpressionInputError), "gene", "sample", aggregate)
    return as_expression_frame(raw.T, aggregate=aggregate, source=f"{path} (genes x samples)")


@_names_unreadable_files(ExpressionInputError, "a samples x genes table")
def read_expression_table(path: str | Path, aggregate: str | None = None) -> pd.DataFrame:
    """Samples x genes CSV / TSV / Parquet, first column (or the Parquet index) = sample id -> samples x genes."""
    raw = _read_checked_table(_existing(path, ExpressionInputError), "sample", "gene", aggregate_rows=None)
    return as_expression_frame(raw, aggregate=aggregate, source=f"{path} (samples x genes)")


def _read_checked_table(path: Path, row_kind: str, column_kind: str, aggregate_rows: str | None) -> pd.DataFrame:
    """A table whose first column (or Parquet index) names its rows, checked before any conversion: the header,
    the row ids, duplicated rows (allowed when they will be aggregated) and every cell a number."""
    if _is_parquet(path):
        raw = _read_parquet(path, what=row_kind)
        header = [str(raw.index.name)] + [str(column) for column in raw.columns]
    else:
        header = _header(path, _separator(path))
        _check_header(path, header, axis=column_kind, first=row_kind)
        raw = pd.read_csv(path, sep=_separator(path), index_col=0, engine="c", low_memory=False)
    _check_identifiers(path, raw.index, what=row_kind, column=header[0])
    _check_duplicated_rows(path, raw.index, what=row_kind, aggregate=aggregate_rows)
    _check_numeric(path, raw, row_kind=row_kind, column_kind=column_kind)
    return raw


@_names_unreadable_files(ExpressionInputError, "AnnData (.h5ad)")
def read_h5ad(
    path: str | Path, aggregate: str | None = None, layer: str | None = None, gene_column: str | None = None
) -> pd.DataFrame:
    """AnnData `.h5ad` (obs = samples, var = genes; `X` or a named layer; genes named by var_names or a var column)."""
    from .anndata import anndata_to_frame, load_anndata

    path = _existing(path, ExpressionInputError)
    return anndata_to_frame(load_anndata(path), layer=layer, gene_column=gene_column, aggregate=aggregate,
                            source=f"{path} (AnnData)")


def read_gene_map(path: str | Path) -> dict[str, str]:
    """Gene-id mapping file: two columns with a header line, the input's ids (from) then the model's (to)."""
    path = _existing(path, ExpressionInputError)
    return gene_map_from_table(_read_table(path), source=str(path))


# ----------------------------------------------------------------------------------------------------------------------
# clinical and split tables
# ----------------------------------------------------------------------------------------------------------------------
@_names_unreadable_files(ClinicalInputError, "a clinical table")
def read_clinical(path: str | Path, sample_column: str | None = None) -> pd.DataFrame:
    """Clinical table (TSV / CSV / Parquet), one row per sample, indexed by sample id (`sample`, else column 1)."""
    path = _existing(path, ClinicalInputError)
    if path.name.lower().endswith(".h5ad"):  # the obs of an AnnData: indexed by sample already
        from .anndata import load_anndata, obs_table

        return obs_table(load_anndata(path), source=str(path))
    table = _read_table(path)
    if sample_column is None:
        sample_column = "sample" if "sample" in table.columns else str(table.columns[0])
    if sample_column not in table.columns:
        raise ClinicalInputError(f"{path}: no column {sample_column!r}; columns are {preview(table.columns, 12)}")
    ids = table[sample_column]
    blank = ids.isna() | (ids.astype(str).str.strip() == "")
    if blank.any():
        raise ClinicalInputError(f"{path}: empty sample id on line(s) {preview(_lines(np.flatnonzero(blank)))}")
    ids = ids.astype(str)
    duplicated = ids[ids.duplicated(keep=False)]
    if len(duplicated):
        raise ClinicalInputError(
            f"{path}: duplicated sample ids: {preview(duplicated.unique())} (lines {preview(_lines(duplicated.index))})"
        )
    return table.drop(columns=[sample_column]).set_axis(pd.Index(ids.to_numpy(), name="sample"))


@_names_unreadable_files(ClinicalInputError, "a split table")
def read_split(path: str | Path) -> pd.Series:
    """Split table with columns `sample` and `split` (train / validation / test) -> Series indexed by sample."""
    path = _existing(path, ClinicalInputError)
    table = _read_table(path)
    for column in ("sample", "split"):
        if column not in table.columns:
            raise ClinicalInputError(f"{path}: no column {column!r}; a split table holds `sample` and `split`")
    ids = table["sample"].astype(str)
    duplicated = ids[ids.duplicated(keep=False)]
    if len(duplicated):
        raise ClinicalInputError(f"{path}: sample(s) listed twice: {preview(duplicated.unique())}")
    split = table["split"].astype(str).str.strip().str.lower()
    unknown = ~split.isin(SPLIT_NAMES)
    if unknown.any():
        first = np.flatnonzero(unknown)[0]
        raise ClinicalInputError(
            f"{path}: line {first + 2}, sample {ids.iloc[first]!r}: split {table['split'].iloc[first]!r} is not one "
            f"of {SPLIT_NAMES}"
        )
    return pd.Series(split.to_numpy(), index=pd.Index(ids.to_numpy(), name="sample"), name="split")


# ----------------------------------------------------------------------------------------------------------------------
# join
# ----------------------------------------------------------------------------------------------------------------------
def join_cohort(
    expression: pd.DataFrame,
    clinical: pd.DataFrame,
    label_column: str | None = None,
    time_column: str | None = None,
    event_column: str | None = None,
    missing_clinical: str = "error",
    expression_source: str = "expression",
    clinical_source: str = "clinical table",
    name: str = "cohort",
) -> Cohort:
    """Align expression and clinical on sample id and check the registered columns.

    Samples in only one of the two are counted in a warning (never silently lost). Survival times must be
    non-negative numbers, events 0/1; a missing label / time / event raises unless `missing_clinical` is 'drop' (the
    sample leaves, with a warning) or 'keep' (it stays, NaN; its consumers filter).
    """
    if missing_clinical not in MISSING_CLINICAL:
        raise ValueError(f"missing_clinical must be one of {MISSING_CLINICAL}, got {missing_clinical!r}")
    columns = {"label": label_column, "time": time_column, "event": event_column}
    for role, column in columns.items():
        if column is not None and column not in clinical.columns:
            raise ClinicalInputError(
                f"{clinical_source}: no {role} column {column!r}; columns are {preview(clinical.columns, 12)}"
            )
    if (time_column is None) != (event_column is None):
        raise ClinicalInputError(f"{clinical_source}: survival needs both a time and an event column")

    common = expression.index[expression.index.isin(clinical.index)]
    only_expression = expression.index.difference(clinical.index)
    only_clinical = clinical.index.difference(expression.index)
    if len(common) == 0:
        raise ClinicalInputError(
            f"nothing left after joining {expression_source} ({len(expression)} samples, e.g. "
            f"{preview(expression.index, 3)}) with {clinical_source} ({len(clinical)} samples, e.g. "
            f"{preview(clinical.index, 3)}): no sample id in common"
        )
    for count, where, other, ids in ((len(only_expression), expression_source, clinical_source, only_expression),
                                     (len(only_clinical), clinical_source, "the expression", only_clinical)):
        if count:
            message = f"{count} samples of {where} are not in {other} and are left out: {preview(ids)}"
            warnings.warn(message, stacklevel=2)
            logger.warning(message)
    clinical = clinical.loc[common].copy()
    if time_column is not None:
        clinical[time_column] = _numeric_column(clinical, time_column, clinical_source)
        negative = clinical.index[clinical[time_column].to_numpy() < 0]
        if len(negative):
            raise ClinicalInputError(
                f"{clinical_source}: negative survival time in column {time_column!r} for sample(s) {preview(negative)}"
            )
        clinical[event_column] = _numeric_column(clinical, event_column, clinical_source)
        bad = clinical[event_column].notna() & ~clinical[event_column].isin([0, 1])
        if bad.any():
            first = clinical.index[bad.to_numpy()][0]
            raise ClinicalInputError(
                f"{clinical_source}: event column {event_column!r} must hold 0/1, sample {first!r} has "
                f"{clinical.at[first, event_column]:g}"
            )
    registered = [column for column in columns.values() if column is not None]
    missing = clinical[registered].isna().any(axis=1) if registered else pd.Series(False, index=clinical.index)
    if missing.any() and missing_clinical != "keep":
        samples = clinical.index[missing.to_numpy()]
        empty = [column for column in registered if clinical[column].isna().any()]
        if missing_clinical == "error":
            raise ClinicalInputError(
                f"{clinical_source}: missing value in column(s) {preview(empty)} for {len(samples)} sample(s): "
                f"{preview(samples)}; pass missing_clinical='drop' to leave them out or 'keep' to keep them"
            )
        warnings.warn(f"{clinical_source}: {len(samples)} samples with a missing {preview(empty)} are left out: "
                      f"{preview(samples)}", stacklevel=2)
        clinical = clinical.loc[~missing.to_numpy()]
    if len(clinical) == 0:
        raise ClinicalInputError(f"nothing left after joining {expression_source} with {clinical_source}")
    if not clinical.index.equals(expression.index):  # a copy only when samples were left out
        expression = expression.loc[clinical.index]
    return Cohort(expression, clinical, label_column=label_column, time_column=time_column,
                  event_column=event_column, name=name)


def apply_split(cohort: Cohort, split: pd.Series, source: str = "split table") -> pd.Series:
    """The split of each cohort sample; raises naming split samples unknown to the cohort, warns on unassigned ones."""
    unknown = split.index.difference(cohort.expression.index)
    if len(unknown):
        raise ClinicalInputError(f"{source}: {len(unknown)} sample(s) not in the joined cohort: {preview(unknown)}")
    unassigned = cohort.expression.index.difference(split.index)
    if len(unassigned):
        warnings.warn(f"{source}: {len(unassigned)} samples have no split and are left out: {preview(unassigned)}",
                      stacklevel=2)
    return split.reindex(cohort.expression.index).dropna()


# ----------------------------------------------------------------------------------------------------------------------
# cohort folders: expression.tsv.gz (Xena genes x samples), clinical.tsv, split.tsv
# ----------------------------------------------------------------------------------------------------------------------
def load_cohort(
    data_dir: str | Path,
    label_column: str | None = "cancer_type",
    time_column: str | None = "os_months",
    event_column: str | None = "os_event",
    missing_clinical: str = "keep",
) -> Cohort:
    """A cohort folder (expression.tsv.gz in Xena genes x samples layout, clinical.tsv) -> Cohort.

    Samples missing a survival time are kept (NaN) by default: classification uses them, survival code filters.
    """
    data_dir = Path(data_dir)
    expression_path = data_dir / "expression.tsv.gz"
    clinical_path = data_dir / "clinical.tsv"
    clinical = read_clinical(clinical_path)
    expression = read_expression(expression_path, orientation="genes_x_samples")
    return join_cohort(expression, clinical, label_column, time_column, event_column, missing_clinical,
                       str(expression_path), str(clinical_path), name=data_dir.name)


def load_split(data_dir: str | Path) -> pd.Series:
    """`split.tsv` of a cohort folder -> Series (train / test) indexed by sample."""
    return read_split(Path(data_dir) / "split.tsv")


# ----------------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------------
def _existing(path: str | Path, error: type[Exception]) -> Path:
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    return path


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith((".parquet", ".pq"))


def _separator(path: Path) -> str:
    return "," if ".csv" in path.name.lower() else "\t"


def _read_parquet(path: Path, what: str) -> pd.DataFrame:
    """Parquet with its row names as index (as pandas writes it) or, failing that, as first column."""
    raw = pd.read_parquet(path)
    if isinstance(raw.index, pd.RangeIndex):
        if raw.shape[1] == 0 or pd.api.types.is_numeric_dtype(raw.dtypes.iloc[0]):
            raise ExpressionInputError(
                f"{path}: no {what} column: the index is a row number and the first column "
                f"{str(raw.columns[0]) if raw.shape[1] else '(none)'!r} holds numbers"
            )
        raw = raw.set_index(raw.columns[0])
    return raw


def _file_axes(path: Path) -> tuple[pd.Index, pd.Index]:
    """Row names (first column) and column names of a table, without parsing its values."""
    if _is_parquet(path):
        raw = _read_parquet(path, what="row-name")
        return raw.index.astype(str), raw.columns.astype(str)
    header = _header(path, _separator(path))
    rows = pd.read_csv(path, sep=_separator(path), usecols=[0], dtype=str, engine="c").iloc[:, 0]
    return pd.Index(rows.dropna().astype(str)), pd.Index(header[1:])


def _check_anndata_orientation(path: Path, frame: pd.DataFrame, orientation: str, vocabulary, sample_ids,
                               gene_map) -> None:
    """An AnnData is obs x var = samples x genes; refuse one whose obs, not var, are the genes."""
    if orientation == "genes_x_samples":
        raise ExpressionInputError(f"{path}: an AnnData is obs x var = samples x genes; store the transpose "
                                   "(adata.T) or drop the orientation option")
    if orientation == "auto" and detect_orientation(frame.index, frame.columns, vocabulary, sample_ids, gene_map,
                                                    source=str(path)) == "genes_x_samples":
        raise ExpressionInputError(
            f"{path}: the AnnData looks transposed: its obs names ({describe_ids(list(frame.index))}) look like the "
            f"genes and its var names ({describe_ids(list(frame.columns))}) like the samples; obs must be samples "
            "and var genes (store adata.T)"
        )


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.name.lower().endswith(".gz") else open(path)


def _header(path: Path, sep: str) -> list[str]:
    with _open_text(path) as handle:
        line = handle.readline().rstrip("\r\n")
    if not line:
        raise ExpressionInputError(f"{path}: empty file (no header line)")
    return line.split(sep)


def _check_header(path: Path, header: list[str], axis: str, first: str) -> None:
    """One column of row names and at least one data column, with unique names (pandas would rename duplicates)."""
    if len(header) < 2:
        raise ExpressionInputError(
            f"{path}: header has {len(header)} column; expected a {first} column then one column per {axis} "
            "(is the separator right?)"
        )
    names = pd.Index(header[1:])
    duplicated = names[names.duplicated()].unique()
    if len(duplicated):
        positions = [i + 2 for i, name in enumerate(header[1:]) if name in set(duplicated)]
        raise ExpressionInputError(
            f"{path}: duplicated {axis} ids in the header: {preview(duplicated)} (columns {preview(positions)})"
        )


def _check_identifiers(path: Path, index: pd.Index, what: str, column: str) -> None:
    """The first column must name genes (samples): not numbers, not blanks."""
    if pd.api.types.is_numeric_dtype(index.dtype) or (
        len(index) and pd.to_numeric(pd.Series(index[:1000]), errors="coerce").notna().all()
    ):
        raise ExpressionInputError(
            f"{path}: no {what} column: first column {column!r} holds numbers (e.g. {index[0]!r}); its first column "
            f"must name the {what}s"
        )
    blank = pd.isna(index) | (index.astype(str).str.strip() == "")
    if blank.any():
        raise ExpressionInputError(f"{path}: empty {what} id on line(s) {preview(_lines(np.flatnonzero(blank)))}")


def _check_duplicated_rows(path: Path, index: pd.Index, what: str, aggregate: str | None) -> None:
    if aggregate is not None:
        return
    duplicated = index.duplicated(keep=False)
    if duplicated.any():
        names = index[duplicated].unique()
        hint = "; pass aggregate= one of mean, median, max, sum, first" if what == "gene" else ""
        raise ExpressionInputError(
            f"{path}: duplicated {what}s: {preview(names)} (lines {preview(_lines(np.flatnonzero(duplicated)))}){hint}"
        )


def _check_numeric(path: Path, raw: pd.DataFrame, row_kind: str, column_kind: str) -> None:
    """Name the first non-numeric cell by line, column and ids (pandas left its column as text)."""
    for position, dtype in enumerate(raw.dtypes):
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            continue
        column = raw.iloc[:, position]
        bad = pd.to_numeric(column, errors="coerce").isna().to_numpy() & column.notna().to_numpy()
        if not bad.any():
            continue
        row = np.flatnonzero(bad)[0]
        raise ExpressionInputError(
            f"{path}: line {row + 2}, column {position + 2} ({column_kind} {raw.columns[position]!r}, {row_kind} "
            f"{raw.index[row]!r}): non-numeric value {column.iloc[row]!r} ({bad.sum()} such cells in this column)"
        )


def _read_table(path: Path) -> pd.DataFrame:
    if _is_parquet(path):
        table = pd.read_parquet(path)
        return table if isinstance(table.index, pd.RangeIndex) else table.reset_index()
    return pd.read_csv(path, sep=_separator(path), engine="c", dtype={"sample": str})


def _numeric_column(clinical: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = pd.to_numeric(clinical[column], errors="coerce")
    bad = values.isna() & clinical[column].notna()
    if bad.any():
        first = clinical.index[bad.to_numpy()][0]
        raise ClinicalInputError(
            f"{source}: column {column!r}, sample {first!r}: {clinical.at[first, column]!r} is not a number"
        )
    return values.astype(np.float64)


def _lines(positions) -> list[int]:
    """0-based data row positions -> 1-based file line numbers (line 1 is the header)."""
    return [int(position) + 2 for position in positions]


__all__ = [
    "ORIENTATIONS", "apply_split", "join_cohort", "load_cohort", "load_split", "read_clinical", "read_expression",
    "read_expression_table", "read_gene_map", "read_h5ad", "read_split", "read_xena_tsv", "table_orientation",
]
