"""Expression input: a DataFrame, numpy array or AnnData -> a validated samples x genes frame, and what kind of gene
or sample ids a list holds.

This file travels with every checkpoint beside the tokenizer as hub remote code, so it imports only numpy, the
standard library and its sibling `errors_gexbert`. pandas is imported where installed (inside `try`, which the
remote-code import check skips); elsewhere `pd` is a stand-in that says what to install, and the tokenizer files
all take their `pd` from here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .errors_gexbert import ExpressionInputError, preview


class _PandasMissing:
    """Stands in for pandas where it is not installed: the tokenizer loads, and reading a matrix says what to do."""

    def __getattr__(self, name: str):
        raise ImportError("GexBertTokenizer reads expression matrices with pandas, which is not installed: "
                          "pip install pandas")


try:
    import pandas as pd
except ImportError:  # remote code on a machine without pandas
    pd = _PandasMissing()

AGGREGATIONS = ("mean", "median", "max", "sum", "first")
VALIDATED = "gexbert_validated"  # the `attrs` mark of a frame `as_expression_frame` returned
MAX_ABS_VALUE = 1e300  # larger finite values are refused: the fitting arithmetic on them would overflow


def as_expression_frame(
    data: pd.DataFrame | np.ndarray,
    genes: Sequence[str] | None = None,
    samples: Sequence[str] | None = None,
    aggregate: str | None = None,
    source: str = "expression matrix",
    layer: str | None = None,
    gene_column: str | None = None,
) -> pd.DataFrame:
    """Validate a samples x genes matrix and return it as a float64 DataFrame; NaN stays as 'not measured'.

    `data` is a DataFrame, a numpy array with `genes`, or an AnnData (obs x var = samples x genes; `layer` picks a
    layer instead of `X`, `gene_column` a var column naming the genes instead of `var_names`).
    Raises `ExpressionInputError` naming the gene, sample or shape at fault.
    """
    frame = _unvalidated_frame(data, genes, samples, source, layer, gene_column)
    frame = frame.copy(deep=False)
    frame.columns = frame.columns.map(str)
    frame.index = frame.index.map(str)

    duplicated_samples = frame.index[frame.index.duplicated()].unique()
    if len(duplicated_samples):
        raise ExpressionInputError(f"{source}: duplicated sample ids: {preview(duplicated_samples)}")

    if all(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype) for dtype in frame.dtypes):
        values = frame.to_numpy(dtype=np.float64)  # the common case: no per-cell parsing
    else:
        numeric = frame.apply(pd.to_numeric, errors="coerce")
        bad_cells = numeric.isna().to_numpy() & ~frame.isna().to_numpy()
        if bad_cells.any():
            rows, cols = np.nonzero(bad_cells)
            value = frame.iat[rows[0], cols[0]]
            raise ExpressionInputError(
                f"{source}: non-numeric value {value!r} for gene {frame.columns[cols[0]]!r} in sample "
                f"{frame.index[rows[0]]!r} ({bad_cells.sum()} such cells)"
            )
        values = numeric.to_numpy(dtype=np.float64)
    infinite = np.isinf(values)
    if infinite.any():
        rows, cols = np.nonzero(infinite)
        raise ExpressionInputError(
            f"{source}: infinite value for gene {frame.columns[cols[0]]!r} in sample {frame.index[rows[0]]!r} "
            f"({infinite.sum()} such cells); use NaN for a value that was not measured"
        )
    with np.errstate(invalid="ignore"):
        huge = np.abs(values) > MAX_ABS_VALUE
    if huge.any():  # no measurement comes near; beyond it, quantile and scale arithmetic overflows to inf
        rows, cols = np.nonzero(huge)
        raise ExpressionInputError(
            f"{source}: value {values[rows[0], cols[0]]:g} for gene {frame.columns[cols[0]]!r} in sample "
            f"{frame.index[rows[0]]!r} is beyond ±{MAX_ABS_VALUE:g} ({huge.sum()} such cells): a parsing error or a "
            "sentinel? use NaN for a value that was not measured"
        )
    frame = pd.DataFrame(values, index=frame.index, columns=frame.columns)

    duplicated_genes = frame.columns[frame.columns.duplicated()].unique()
    if len(duplicated_genes):
        if aggregate is None:
            raise ExpressionInputError(
                f"{source}: duplicated genes: {preview(duplicated_genes)}; pass aggregate= one of {AGGREGATIONS}"
            )
        if aggregate not in AGGREGATIONS:
            raise ExpressionInputError(f"{source}: aggregate must be one of {AGGREGATIONS}, got {aggregate!r}")
        frame = frame.T.groupby(level=0, sort=False).agg(aggregate).T

    if frame.shape[0] == 0:
        raise ExpressionInputError(f"{source}: no samples (a header without data rows?)")
    empty = frame.index[frame.isna().all(axis=1).to_numpy()]
    if frame.shape[1] == 0 or len(empty):
        named = preview(empty) if len(empty) else "every sample"
        raise ExpressionInputError(f"{source}: no measured gene in sample(s) {named}")
    frame.attrs[VALIDATED] = True
    return frame


def is_validated_frame(data) -> bool:
    """True for a frame `as_expression_frame` returned (a reader's output, say) that still holds what it held then:
    its mark (pandas carries `attrs` through `drop`, slicing and arithmetic), float64 cells without inf or
    overflow, unique string labels and no empty sample. Rechecking that is cheap; a frame failing it is validated
    again."""
    if not (isinstance(data, pd.DataFrame) and data.attrs.get(VALIDATED) and data.shape[0] and data.shape[1]):
        return False
    if not (all(dtype == np.float64 for dtype in data.dtypes) and data.index.is_unique and data.columns.is_unique):
        return False
    if not all(isinstance(label, str) for labels in (data.index, data.columns) for label in labels):
        return False
    values = data.to_numpy()
    with np.errstate(invalid="ignore"):
        in_range = not (np.abs(values) > MAX_ABS_VALUE).any()
    return in_range and not np.isinf(values).any() and not np.isnan(values).all(axis=1).any()


def validated_frame(data, source: str = "expression matrix", layer: str | None = None,
                    gene_column: str | None = None) -> pd.DataFrame:
    """`data` validated once: returned as it is when `is_validated_frame`, else through `as_expression_frame`."""
    if is_validated_frame(data):
        return data
    return as_expression_frame(data, source=source, layer=layer, gene_column=gene_column)


def _unvalidated_frame(data, genes, samples, source: str, layer: str | None, gene_column: str | None) -> pd.DataFrame:
    """DataFrame, AnnData or numpy array + names -> a DataFrame with the right shape and names, values unchecked."""
    if is_anndata(data):
        if genes is not None or samples is not None:
            raise ExpressionInputError(f"{source}: an AnnData names its genes and samples; pass no `genes`/`samples`")
        return anndata_frame(data, layer=layer, gene_column=gene_column, source=source)
    if layer is not None or gene_column is not None:
        raise ExpressionInputError(f"{source}: `layer` and `gene_column` apply to an AnnData only, got a "
                                   f"{type(data).__name__}")
    if isinstance(data, pd.DataFrame):
        if genes is not None:
            raise ExpressionInputError(f"{source}: pass `genes` only with a numpy array; a DataFrame names its columns")
        return data
    array = np.asarray(data)
    if array.ndim != 2:
        raise ExpressionInputError(f"{source}: expected a 2-D samples x genes matrix, got shape {array.shape}")
    if genes is None:
        raise ExpressionInputError(f"{source}: a numpy array needs `genes`, one name per column")
    if len(genes) != array.shape[1]:
        raise ExpressionInputError(f"{source}: {len(genes)} gene names for {array.shape[1]} columns; shapes must match")
    if samples is not None and len(samples) != array.shape[0]:
        raise ExpressionInputError(f"{source}: {len(samples)} sample ids for {array.shape[0]} rows; shapes must match")
    return pd.DataFrame(array, columns=list(genes), index=samples)


# ----------------------------------------------------------------------------------------------------------------------
# AnnData, duck-typed: this file travels as remote code, so it imports neither anndata nor the rest of the package
# ----------------------------------------------------------------------------------------------------------------------
_DENSE_CHUNK = 1024  # rows densified at a time from a sparse or backed matrix


def is_anndata(data) -> bool:
    """An AnnData, or anything shaped like one (`.obs`, `.var`, `.X`)."""
    return all(hasattr(data, name) for name in ("obs", "var", "X")) and not isinstance(data, pd.DataFrame)


def anndata_frame(adata, layer: str | None = None, gene_column: str | None = None,
                  source: str = "AnnData") -> pd.DataFrame:
    """obs x var of an AnnData -> samples x genes DataFrame (values not yet validated).

    A sparse matrix is densified a chunk of rows at a time; its zeros are measured zeros, not missing values.
    """
    if layer is None:
        matrix = adata.X
        if matrix is None:
            raise ExpressionInputError(f"{source}: the AnnData has no X; name a layer (layer=, --layer)")
    else:
        layers = adata.layers
        if layer not in layers:
            raise ExpressionInputError(f"{source}: no layer {layer!r}; its layers are "
                                       f"{preview(list(layers.keys())) or '(none)'}")
        matrix = layers[layer]
    genes = anndata_gene_names(adata, gene_column, source)
    n_samples = len(adata.obs_names)
    values = np.empty((n_samples, len(genes)), dtype=np.float64)
    for start in range(0, n_samples, _DENSE_CHUNK):
        block = matrix[start : start + _DENSE_CHUNK]
        values[start : start + _DENSE_CHUNK] = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
    return pd.DataFrame(values, index=pd.Index(adata.obs_names.astype(str), name="sample"), columns=genes)


def anndata_gene_names(adata, gene_column: str | None = None, source: str = "AnnData") -> list[str]:
    """Gene name of each var: `var_names`, or the var column `gene_column` (e.g. `gene_symbols`)."""
    if gene_column is None:
        return [str(name) for name in adata.var_names]
    if gene_column not in adata.var.columns:
        raise ExpressionInputError(f"{source}: no var column {gene_column!r}; var columns are "
                                   f"{preview(adata.var.columns, 12) or '(none)'}")
    names = adata.var[gene_column]
    blank = names.isna().to_numpy() | (names.astype(str).str.strip() == "").to_numpy()
    if blank.any():
        raise ExpressionInputError(f"{source}: var column {gene_column!r} is empty for {blank.sum()} genes: "
                                   f"{preview(adata.var_names[blank])}")
    return [str(name) for name in names]


# ----------------------------------------------------------------------------------------------------------------------
# gene and sample ids: what kind of ids a list holds, Ensembl version suffixes
# ----------------------------------------------------------------------------------------------------------------------
SAMPLE_ID_KINDS = {
    "TCGA sample barcodes": r"TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}.*",
    "GTEx sample ids": r"GTEX-[A-Z0-9]+.*",
    "GEO sample accessions": r"GSM\d+",
    "SRA/ENA run accessions": r"[SED]RR\d{6,}",
}
GENE_ID_KINDS = {
    "Ensembl gene ids": r"ENS[A-Z]*G\d{6,}(\.\d+)?(_PAR_Y)?",
    "Ensembl transcript ids": r"ENS[A-Z]*T\d{6,}(\.\d+)?(_PAR_Y)?",
    "miRNA ids": r"[a-z]{3}-(mir|miR|let)-[0-9a-zA-Z-]+",
    "Affymetrix probe ids": r"X?\d+(_[a-z])?_at",
    "Entrez gene ids": r"\d+",
    "gene symbols": r"(?=(?:[0-9-]*[A-Za-z]){2})[A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*",
}
_ENSEMBL_VERSION = r"^(ENS[A-Z]*[GTP]\d{6,})\.\d+$"
_KIND_SAMPLE = 1000  # ids looked at to name the kind of a list


def id_kind(names: Sequence[str]) -> str | None:
    """The kind of ids (a key of SAMPLE_ID_KINDS or GENE_ID_KINDS) that most of `names` match, else None."""
    names = pd.Series([str(name) for name in list(names)[:_KIND_SAMPLE]], dtype=object)
    if names.empty:
        return None
    for kind, pattern in {**SAMPLE_ID_KINDS, **GENE_ID_KINDS}.items():
        if names.str.fullmatch(pattern).mean() > 0.5:
            return kind
    return None


def looks_like_sample_ids(names: Sequence[str]) -> bool:
    return id_kind(names) in SAMPLE_ID_KINDS


def describe_ids(names: Sequence[str], count: int = 3) -> str:
    """`Ensembl gene ids such as ENSG..., ENSG..., ENSG...`: what a list of ids is, with examples."""
    kind = id_kind(names) or "ids"
    return f"{kind} such as {preview(list(names)[:count], count)}"


def strip_version(gene: str) -> str:
    """`ENSG00000141510.16` -> `ENSG00000141510`; any other id unchanged."""
    return re.sub(_ENSEMBL_VERSION, r"\1", gene)


def spelling_key(gene: str) -> str:
    """What two spellings of one gene id share: no Ensembl version, one letter case, and `-` `.` `_` alike (R's
    `make.names` writes `hsa-mir-21` as `hsa.mir.21`): `HSA.MIR.21` and `hsa-mir-21` -> `hsa-mir-21`."""
    return re.sub(r"[._]", "-", strip_version(str(gene))).casefold()


def training_frame(data, genes, aggregate: str | None, layer: str | None, gene_column: str | None) -> pd.DataFrame:
    """The validated training matrix, Ensembl version suffixes stripped; refuses a table whose genes are samples."""
    frame = as_expression_frame(data, genes, aggregate=aggregate, source="training matrix", layer=layer,
                                gene_column=gene_column)
    if looks_like_sample_ids(frame.columns):
        raise ExpressionInputError(
            f"training matrix: the column names look like sample ids ({describe_ids(list(frame.columns))}): is the "
            "table transposed? fit expects samples x genes (rows = samples, columns = genes)"
        )
    unversioned = frame.columns.map(strip_version)
    if not unversioned.equals(frame.columns):
        frame = as_expression_frame(frame.set_axis(unversioned, axis=1), aggregate=aggregate,
                                    source="training matrix (Ensembl version suffixes stripped)")
    return frame


__all__ = ["AGGREGATIONS", "GENE_ID_KINDS", "SAMPLE_ID_KINDS", "anndata_frame", "anndata_gene_names",
           "as_expression_frame", "describe_ids", "id_kind", "is_anndata", "looks_like_sample_ids", "spelling_key", "strip_version",
           "training_frame"]
