"""Which axis of a table holds the genes, gene ids renamed to the model's (a two-column mapping, version suffixes),
and gene list files.

Orientation is read from evidence in this order: overlap with the model's vocabulary (impute, predict), overlap with
known sample ids (the clinical table of build-dataset), then id patterns (TCGA barcodes, Ensembl ids, miRNA ids, gene
symbols...). When both axes hold the same kind of ids the caller is asked to say (`orientation=`); when nothing tells
(generic ids on both axes), the file format's convention decides (tab-separated = Xena genes x samples, CSV /
Parquet = samples x genes).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..errors import ExpressionInputError, preview
from ..expression_input_gexbert import (
    GENE_ID_KINDS,
    SAMPLE_ID_KINDS,
    as_expression_frame,
    describe_ids,
    id_kind,
    spelling_key,
    strip_version,
)

ORIENTATIONS = ("auto", "genes_x_samples", "samples_x_genes")
# kinds that say "these are genes": plain numbers could as well be sample numbers; symbol-like names are weak
# evidence (`SYN-000001`, `tumour1` look like symbols too), outweighed by any other kind
_GENE_EVIDENCE = set(GENE_ID_KINDS) - {"Entrez gene ids"}
_WEAK_EVIDENCE = {"gene symbols"}


def detect_orientation(
    rows: Sequence[str],
    columns: Sequence[str],
    vocabulary: Sequence[str] | None = None,
    sample_ids: Sequence[str] | None = None,
    gene_map: Mapping[str, str] | None = None,
    source: str = "expression table",
) -> str | None:
    """'samples_x_genes' or 'genes_x_samples' from the labels of a table's rows and columns; None without evidence.

    Raises `ExpressionInputError` when both axes look like the same kind of id (the caller must name the orientation).
    """
    if vocabulary is not None:  # a vocabulary gene in any spelling (`spelling_key`: version, case, -._)
        known = {spelling_key(gene) for gene in vocabulary}
        rows_known = sum(spelling_key(name) in known for name in map_gene_names(rows, gene_map))
        columns_known = sum(spelling_key(name) in known for name in map_gene_names(columns, gene_map))
        if rows_known != columns_known:
            return "genes_x_samples" if rows_known > columns_known else "samples_x_genes"
    if sample_ids is not None:
        known = {str(sample) for sample in sample_ids}
        rows_known, columns_known = _overlap(rows, known), _overlap(columns, known)
        if rows_known != columns_known:
            return "samples_x_genes" if rows_known > columns_known else "genes_x_samples"
    return _orientation_from_patterns(rows, columns, source)


def _orientation_from_patterns(rows: Sequence[str], columns: Sequence[str], source: str) -> str | None:
    row_kind, column_kind = id_kind(rows), id_kind(columns)
    for evidence, genes_axis_is_rows in ((SAMPLE_ID_KINDS, False), (_GENE_EVIDENCE, True)):
        row_match, column_match = row_kind in evidence, column_kind in evidence
        if row_match and column_match:  # the stronger kind decides; two weak ones say nothing
            row_match, column_match = row_kind not in _WEAK_EVIDENCE, column_kind not in _WEAK_EVIDENCE
            if not (row_match or column_match):
                return None
        if row_match and column_match:
            raise ExpressionInputError(
                f"{source}: cannot tell which axis holds the samples: its row names ({describe_ids(rows)}) and its "
                f"column names ({describe_ids(columns)}) look alike; pass orientation='samples_x_genes' or "
                "'genes_x_samples' (--orientation)"
            )
        if row_match != column_match:
            rows_are_genes = row_match == genes_axis_is_rows
            return "genes_x_samples" if rows_are_genes else "samples_x_genes"
    return None


def _overlap(names: Sequence[str], known: set[str]) -> int:
    return sum(strip_version(str(name)) in known for name in names)


# ----------------------------------------------------------------------------------------------------------------------
# gene-id mapping
# ----------------------------------------------------------------------------------------------------------------------
def gene_map_from_table(table: pd.DataFrame, source: str) -> dict[str, str]:
    """A two-column table (from, to; with a header line) -> {from: to}; rows with an empty side are skipped."""
    if table.shape[1] != 2:
        raise ExpressionInputError(f"{source}: a gene-id mapping has two columns (from, to), found {table.shape[1]}: "
                                   f"{preview(table.columns)}")
    header_kind = id_kind([str(table.columns[0])])
    if header_kind is not None and header_kind == id_kind(table.iloc[:, 0].astype(str).tolist()):
        raise ExpressionInputError(
            f"{source}: its first line ({table.columns[0]}, {table.columns[1]}) looks like a mapping, not a header; "
            "add a header line such as `from<TAB>to`"
        )
    pairs = table.dropna().astype(str)
    pairs = pairs[(pairs.iloc[:, 0].str.strip() != "") & (pairs.iloc[:, 1].str.strip() != "")]
    sources, targets = pairs.iloc[:, 0].str.strip(), pairs.iloc[:, 1].str.strip()
    conflicting = pd.DataFrame({"from": sources, "to": targets}).drop_duplicates().duplicated("from", keep=False)
    if conflicting.any():
        names = sources[conflicting.to_numpy()].unique()
        raise ExpressionInputError(f"{source}: ids mapped to several targets: {preview(names)}")
    return dict(zip(sources, targets))


def map_genes(
    frame: pd.DataFrame, gene_map: Mapping[str, str], aggregate: str | None = None, source: str = "expression"
) -> pd.DataFrame:
    """Rename the genes of a samples x genes frame through `gene_map` (version suffixes ignored on both sides).

    Genes absent from the mapping keep their id (a warning counts them); genes mapped to the same target are
    duplicates, merged with `aggregate` or refused.
    """
    lookup = _lookup(gene_map)
    targets = [_target(gene, lookup) for gene in frame.columns]
    unmapped = [gene for gene, target in zip(frame.columns, targets) if target is None]
    if len(unmapped) == frame.shape[1]:
        raise ExpressionInputError(
            f"{source}: none of its {frame.shape[1]} genes ({describe_ids(list(frame.columns))}) is in the first "
            f"column of the gene-id mapping ({describe_ids(list(gene_map))})"
        )
    if unmapped:
        warnings.warn(f"{source}: {len(unmapped)} of {frame.shape[1]} genes are not in the gene-id mapping and keep "
                      f"their ids: {preview(unmapped)}", stacklevel=2)
    names = [target or gene for gene, target in zip(frame.columns, targets)]
    return as_expression_frame(frame.set_axis(names, axis=1), aggregate=aggregate, source=f"{source} (ids mapped)")


def map_gene_names(names: Sequence[str], gene_map: Mapping[str, str] | None) -> list[str]:
    """Each name through `gene_map` (version suffixes ignored), unchanged when absent from it."""
    if gene_map is None:
        return [str(name) for name in names]
    lookup = _lookup(gene_map)
    return [_target(str(name), lookup) or str(name) for name in names]


def _lookup(gene_map: Mapping[str, str]) -> dict[str, str]:
    """The mapping keyed by exact id and by unversioned id (an exact key wins)."""
    return {**{strip_version(key): value for key, value in gene_map.items()}, **gene_map}


def _target(gene: str, lookup: Mapping[str, str]) -> str | None:
    target = lookup.get(gene)
    return target if target is not None else lookup.get(strip_version(gene))


def read_gene_list(path: str | Path) -> list[str]:
    """Genes of a text file, one a line, `#` starting a comment, duplicates dropped in order."""
    path = Path(path)
    if not path.is_file():
        raise ExpressionInputError(f"{path}: gene list file does not exist")
    genes = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return list(dict.fromkeys(gene for gene in genes if gene))


__all__ = ["ORIENTATIONS", "detect_orientation", "gene_map_from_table", "map_gene_names", "map_genes", "read_gene_list"]
