"""GexBertTokenizer: expression matrix -> model inputs, and predicted levels -> expression values.

A fitted tokenizer holds everything learned from the training samples (scikit-learn's `fit` then `transform`
contract, so test samples never shape the level edges): the gene vocabulary, the normalisation, per-gene quantile
level edges and level values, and a robust per-gene centre and scale for the continuous value input.

This file travels with every checkpoint as hub remote code (`AutoFeatureExtractor.from_pretrained(path,
trust_remote_code=True)` where `gexbert_hf` is not installed), so it imports only numpy, transformers, safetensors,
the standard library and its siblings `configuration_gexbert` and `errors_gexbert`. pandas, which reads and
validates the matrices, is imported where installed (inside `try`, which the remote-code import check skips): the
file loads without it and says what to install when a matrix is given.

Decoding is robust to extreme training values: a predicted level decodes to the mean of the training values in that
level, except the lowest and highest levels (open on one side), which decode to their median; so one cell of 1e300
(or tcga13's z-scores of 3.7e4) can neither move the level edges nor the values any imputation returns.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from transformers import BatchEncoding
from transformers.dynamic_module_utils import custom_object_save
from transformers.feature_extraction_utils import FeatureExtractionMixin
from transformers.utils import FEATURE_EXTRACTOR_NAME, cached_file

from .configuration_gexbert import LEVEL_OFFSET, MASK_LEVEL_ID, MISSING_LEVEL_ID, PAD_LEVEL_ID
from .errors_gexbert import ExpressionInputError, ModelFileError, one_line, preview


class _PandasMissing:
    """Stands in for pandas where it is not installed: the tokenizer loads, and reading a matrix says what to do."""

    def __getattr__(self, name: str):
        raise ImportError("GexBertTokenizer reads expression matrices with pandas, which is not installed: "
                          "pip install pandas")


try:
    import pandas as pd
except ImportError:  # remote code on a machine without pandas
    pd = _PandasMissing()

TOKENIZER_CONFIG_NAME = "gexbert_tokenizer.json"
TOKENIZER_ARRAYS_NAME = "gexbert_tokenizer.safetensors"
AUTO_CLASS = "AutoFeatureExtractor"
NORMALIZATIONS = ("log1p", "none")
AUTO_NORMALIZATION = "auto"  # fit-time only: resolved to one of NORMALIZATIONS by `auto_normalization`
LOG1P_MIN_MAXIMUM = 50.0  # raw counts / TPM reach far above this; logged or z-scored values stay below it
AGGREGATIONS = ("mean", "median", "max", "sum", "first")
SPECIAL_TOKENS = ("[PAD]", "[CLS]")
MAX_ABS_VALUE = 1e300  # larger finite values are refused: the fitting arithmetic on them would overflow
_FIT_CHUNK = 512  # genes per chunk when fitting quantiles: bounds the temporary copies nanquantile makes


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
    return frame


def auto_normalization(values: pd.DataFrame | np.ndarray) -> str:
    """The one rule behind `normalization='auto'` (Python, CLI, demo, benchmark alike): `log1p` for non-negative,
    raw-looking values (maximum at least 50), `none` for data already logged or z-scored."""
    values = values.to_numpy(dtype=np.float64) if isinstance(values, pd.DataFrame) else np.asarray(values, float)
    return "none" if np.nanmin(values) < 0 or np.nanmax(values) < LOG1P_MIN_MAXIMUM else "log1p"


def resolve_normalization(normalization: str, values: pd.DataFrame | np.ndarray) -> str:
    """`auto` -> the normalisation `values` call for; an explicit choice is checked and kept."""
    if normalization == AUTO_NORMALIZATION:
        return auto_normalization(values)
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {(*NORMALIZATIONS, AUTO_NORMALIZATION)}, got {normalization!r}")
    return normalization



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


class GexBertTokenizer(FeatureExtractionMixin):
    """Fitted gene vocabulary + expression levels; `__call__` turns a matrix into `model(**inputs)` tensors.

    It is a transformers feature extractor, loadable with `AutoFeatureExtractor`: its input is a matrix of numbers,
    as an audio model's is, and `FeatureExtractionMixin` gives exactly the save/load/hub/remote-code machinery such
    a preprocessor needs. `AutoTokenizer` would not fit: it expects text and a (slow or fast) string tokenizer
    backend, of which this has neither. `save_pretrained` writes `preprocessor_config.json` (the Auto-class entry
    point, with its `auto_map`) beside the vocabulary and level arrays, and copies this file and its siblings.
    """

    pad_token_id = 0
    cls_token_id = 1

    def __init__(
        self,
        genes: Sequence[str],
        normalization: str,
        level_edges: np.ndarray,
        level_values: np.ndarray,
        center: np.ndarray,
        scale: np.ndarray,
        value_clip: float = 8.0,
    ):
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.genes = [str(gene) for gene in genes]
        self.normalization = normalization
        self.level_edges = np.asarray(level_edges, dtype=np.float64)
        self.level_values = np.asarray(level_values, dtype=np.float64)
        self.center = np.asarray(center, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.value_clip = float(value_clip)
        self.gene_to_index = {gene: index for index, gene in enumerate(self.genes)}
        if len(self.gene_to_index) != len(self.genes):
            raise ValueError("the tokenizer vocabulary holds duplicated genes")

    # ------------------------------------------------------------------------------------------------------------------
    # vocabulary
    # ------------------------------------------------------------------------------------------------------------------
    @property
    def num_levels(self) -> int:
        return self.level_values.shape[1]

    @property
    def vocab_size(self) -> int:
        return len(SPECIAL_TOKENS) + len(self.genes)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def fingerprint(self) -> str:
        """Short hash of what a model's embeddings depend on: the ordered genes, the level count, the normalisation.

        `GexBertConfig.from_tokenizer` stores it as `config.tokenizer_fingerprint`;
        `gexbert_hf.checks.check_tokenizer_matches` compares the two wherever a model meets a tokenizer."""
        return fingerprint_of(self.genes, self.num_levels, self.normalization)

    def convert_genes_to_ids(self, genes: Sequence[str]) -> np.ndarray:
        """Vocabulary ids of known genes; raises naming the unknown ones."""
        unknown = [gene for gene in genes if gene not in self.gene_to_index]
        if unknown:
            raise ExpressionInputError(f"genes unknown to the tokenizer vocabulary: {preview(unknown)}")
        return np.array([self.gene_to_index[gene] + len(SPECIAL_TOKENS) for gene in genes], dtype=np.int64)

    def convert_ids_to_genes(self, ids: Sequence[int]) -> list[str]:
        return [SPECIAL_TOKENS[i] if i < len(SPECIAL_TOKENS) else self.genes[i - len(SPECIAL_TOKENS)] for i in ids]

    # ------------------------------------------------------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        data: pd.DataFrame | np.ndarray,
        genes: Sequence[str] | None = None,
        normalization: str = AUTO_NORMALIZATION,
        num_levels: int = 32,
        aggregate: str | None = None,
        value_clip: float = 8.0,
        layer: str | None = None,
        gene_column: str | None = None,
    ) -> GexBertTokenizer:
        """Fit vocabulary, per-gene quantile level edges and value scaling on training samples (samples x genes).

        `normalization`: `log1p`, `none`, or `auto` (as `gexbert build-dataset`: log1p for non-negative raw-looking
        values, none when any is negative or all are below 50); the fitted tokenizer records the one chosen.
        Quantile edges make the levels robust to extreme outliers: a value of 3.7e4 only lands in the top level,
        and the top and bottom levels decode to their median, not their mean, so it does not move what they decode to.
        Genes with no measured value in the training samples cannot be fitted and are dropped with a warning.
        Ensembl ids lose their version suffix (`ENSG00000141510.16` -> `ENSG00000141510`), so any release matches.
        """
        if normalization not in (*NORMALIZATIONS, AUTO_NORMALIZATION):
            raise ValueError(f"normalization must be one of {(*NORMALIZATIONS, AUTO_NORMALIZATION)}, "
                             f"got {normalization!r}")
        if num_levels < 2:
            raise ValueError(f"num_levels must be at least 2, got {num_levels}")
        frame = _training_frame(data, genes, aggregate, layer, gene_column)
        normalization = resolve_normalization(normalization, frame)
        values = _normalize(frame, normalization, source="training matrix")
        never_measured = np.isnan(values).all(axis=0)
        if never_measured.any():
            warnings.warn(
                f"{never_measured.sum()} genes have no measured value in the training samples and are left out of "
                f"the vocabulary: {preview(frame.columns[never_measured])}",
                stacklevel=2,
            )
        kept_genes = list(frame.columns[~never_measured])
        values = values[:, ~never_measured]

        # Even quantiles are the edges between levels; odd ones (bin medians) stand in for empty levels.
        quantile_levels = np.arange(1, 2 * num_levels) / (2 * num_levels)
        n_genes = values.shape[1]
        quantiles = np.empty((n_genes, len(quantile_levels)))
        spread = np.empty((n_genes, 5))  # quartiles and median, then the 1st/99th percentiles for the fallback
        for start in range(0, n_genes, _FIT_CHUNK):
            chunk = values[:, start : start + _FIT_CHUNK]
            quantiles[start : start + _FIT_CHUNK] = np.nanquantile(chunk, quantile_levels, axis=0).T
            spread[start : start + _FIT_CHUNK] = np.nanquantile(chunk, [0.25, 0.5, 0.75, 0.01, 0.99], axis=0).T
        # Median and IQR: a handful of extreme outliers moves neither (a winsorised SD would still move with n=200).
        center = spread[:, 1]
        scale = (spread[:, 2] - spread[:, 0]) / 1.349  # the SD of a normal distribution with that IQR
        fallback = (spread[:, 4] - spread[:, 3]) / 4.653  # genes whose IQR is zero (mostly unexpressed)
        scale = np.where(scale > 1e-8, scale, np.where(fallback > 1e-8, fallback, 1.0))
        edges = quantiles[:, 1::2]
        return cls(
            genes=kept_genes,
            normalization=normalization,
            level_edges=edges,
            level_values=_level_values(values, edges, fallback=quantiles[:, 0::2]),
            center=center,
            scale=scale,
            value_clip=value_clip,
        )

    # ------------------------------------------------------------------------------------------------------------------
    # encoding
    # ------------------------------------------------------------------------------------------------------------------
    def vocabulary_name(self, gene: str) -> str | None:
        """The vocabulary gene `gene` stands for, ignoring Ensembl version suffixes on either side; None if unknown."""
        if gene in self.gene_to_index:
            return gene
        return self._unversioned_genes.get(strip_version(gene))

    @cached_property
    def _unversioned_genes(self) -> dict[str, str]:
        return {strip_version(name): name for name in reversed(self.genes)}

    def select_known(self, frame: pd.DataFrame, source: str = "expression matrix") -> pd.DataFrame:
        """Keep the genes of the vocabulary, under their vocabulary names, with one warning naming those dropped."""
        names = {gene: self.vocabulary_name(gene) for gene in frame.columns}
        unknown = [gene for gene, name in names.items() if name is None]
        if len(unknown) == frame.shape[1]:
            raise ExpressionInputError(self._no_known_genes_message(list(frame.columns), source))
        if unknown:
            warnings.warn(
                f"{source}: {len(unknown)} of {frame.shape[1]} genes are unknown to the tokenizer vocabulary "
                f"and are dropped: {preview(unknown)}",
                stacklevel=3,
            )
            frame = frame.loc[:, [gene for gene, name in names.items() if name is not None]]
        renamed = {gene: names[gene] for gene in frame.columns if names[gene] != gene}
        if renamed:
            frame = frame.rename(columns=renamed)
            twice = frame.columns[frame.columns.duplicated()].unique()
            if len(twice):
                raise ExpressionInputError(
                    f"{source}: several of its genes are the same vocabulary gene once Ensembl version suffixes are "
                    f"stripped: {preview([gene for gene in renamed if renamed[gene] in set(twice)])}"
                )
        return frame

    def _no_known_genes_message(self, genes: list[str], source: str) -> str:
        """Why nothing matched: the ids the input holds, those the model expects, and the likely fix."""
        message = (f"{source}: none of its {len(genes)} genes is in the tokenizer vocabulary: it holds "
                   f"{describe_ids(genes)}; the model expects {describe_ids(self.genes)}")
        if looks_like_sample_ids(genes):
            return message + ". The column names look like sample ids: is the table transposed?"
        if id_kind(genes) != id_kind(self.genes):
            return message + (". Map the ids to the model's with a gene-id mapping (a two-column file from,to: "
                              "--gene_map; an AnnData var column: gene_column=, --gene_column)")
        return message

    def normalize(self, values: np.ndarray, genes: Sequence[str] | None = None) -> np.ndarray:
        """Raw values -> the tokenizer's working scale (log1p or unchanged)."""
        return _normalize(pd.DataFrame(values, columns=genes), self.normalization, source="expression matrix")

    def denormalize(self, values: np.ndarray) -> np.ndarray:
        """Working scale -> the scale of the user's input."""
        return np.expm1(values) if self.normalization == "log1p" else values

    def levels_of(self, normalized: np.ndarray, gene_index: np.ndarray) -> np.ndarray:
        """Level index in `[0, num_levels)` of normalised values (samples x genes); NaN -> -1."""
        levels = np.empty(normalized.shape, dtype=np.int64)
        for column, gene in enumerate(gene_index):
            levels[:, column] = _level_index(self.level_edges[gene], normalized[:, column])
        levels[np.isnan(normalized)] = -1
        return levels

    def standardize(self, normalized: np.ndarray, gene_index: np.ndarray) -> np.ndarray:
        """Robustly standardised, clipped values: the continuous input and the regression target."""
        with np.errstate(over="ignore"):  # a 1e300 outlier over a tiny scale: inf, clipped just below
            standardized = (normalized - self.center[gene_index]) / self.scale[gene_index]
        return np.clip(standardized, -self.value_clip, self.value_clip)

    def encode(
        self,
        data: pd.DataFrame | np.ndarray,
        genes: Sequence[str] | None = None,
        aggregate: str | None = None,
        layer: str | None = None,
        gene_column: str | None = None,
    ) -> dict[str, np.ndarray | list[str]]:
        """Matrix (or AnnData) -> per-gene arrays without padding or CLS: the form a `datasets.Dataset` stores.

        Returns `gene_ids` (genes,), `level_ids` and `values` (samples x genes), and the `samples` and `genes` kept.
        NaN becomes the MISSING level with value 0: an input that is never a restoration target.
        """
        return self.encode_known(self.select_known(as_expression_frame(data, genes, aggregate=aggregate, layer=layer,
                                                                       gene_column=gene_column)))

    def encode_known(self, frame: pd.DataFrame) -> dict[str, np.ndarray | list[str]]:
        """`encode` of a matrix validated already (`as_expression_frame`) whose columns are vocabulary genes
        (`select_known`): the arrays alone, so that a caller validates a matrix once. Also returns `normalized`,
        the values on the working scale (NaN = not measured), so that a caller normalises it once too."""
        gene_index = self.convert_genes_to_ids(list(frame.columns)) - len(SPECIAL_TOKENS)
        normalized = _normalize(frame, self.normalization, source="expression matrix")
        levels = self.levels_of(normalized, gene_index)
        level_ids = np.where(levels >= 0, levels + LEVEL_OFFSET, MISSING_LEVEL_ID)
        values = np.nan_to_num(self.standardize(normalized, gene_index), nan=0.0).astype(np.float32)
        return {
            "gene_ids": gene_index + len(SPECIAL_TOKENS),
            "level_ids": level_ids,
            "values": values,
            "samples": list(frame.index),
            "genes": list(frame.columns),
            "normalized": normalized,
        }

    def __call__(
        self,
        data: pd.DataFrame | np.ndarray,
        genes: Sequence[str] | None = None,
        queries: Sequence[str] | None = None,
        return_tensors: str | None = "pt",
        aggregate: str | None = None,
        layer: str | None = None,
        gene_column: str | None = None,
    ) -> BatchEncoding:
        """Model inputs for every sample of `data`: `input_ids`, `level_ids`, `values`, `attention_mask`.

        `data` is samples x genes: a DataFrame, a numpy array with `genes`, or an AnnData (`layer`, `gene_column`).
        `queries` are genes to restore: they enter with the MASK level (replacing any measured value) and the
        model predicts them, whether or not `data` holds them.
        """
        encoded = self.encode(data, genes, aggregate=aggregate, layer=layer, gene_column=gene_column)
        n_samples = len(encoded["samples"])
        gene_ids = np.broadcast_to(encoded["gene_ids"], encoded["level_ids"].shape)
        level_ids, values = encoded["level_ids"], encoded["values"]
        if queries:
            query_ids = self.convert_genes_to_ids(list(dict.fromkeys(queries)))
            keep = ~np.isin(encoded["gene_ids"], query_ids)
            gene_ids = np.concatenate([gene_ids[:, keep], np.broadcast_to(query_ids, (n_samples, len(query_ids)))], 1)
            level_ids = np.concatenate([level_ids[:, keep], np.full((n_samples, len(query_ids)), MASK_LEVEL_ID)], 1)
            values = np.concatenate([values[:, keep], np.zeros((n_samples, len(query_ids)), np.float32)], 1)
        features = [
            {"input_ids": gene_ids[row], "level_ids": level_ids[row], "values": values[row]} for row in range(n_samples)
        ]
        return self.pad(features, return_tensors=return_tensors)

    def pad(self, features: Sequence[dict], return_tensors: str | None = "pt") -> BatchEncoding:
        """Prepend the CLS token and pad a list of per-sample token lists to the longest one.

        Each feature holds `input_ids`, `level_ids`, `values` and optionally `labels` (level targets, -100 = none)
        and `value_labels` (NaN = none); extra sample-level keys (class labels, survival times) are stacked as is.
        """
        if not features:
            raise ValueError("pad() needs at least one sample")
        token_keys = {"input_ids": self.pad_token_id, "level_ids": PAD_LEVEL_ID, "values": 0.0, "labels": -100,
                      "value_labels": np.nan}
        cls_values = {"input_ids": self.cls_token_id, "level_ids": PAD_LEVEL_ID, "values": 0.0, "labels": -100,
                      "value_labels": np.nan}
        dtypes = {"input_ids": np.int64, "level_ids": np.int64, "values": np.float32, "labels": np.int64,
                  "value_labels": np.float32}
        length = 1 + max(len(feature["input_ids"]) for feature in features)
        batch: dict[str, np.ndarray] = {}
        # `labels` is per token for restoration but one class per sample for classification: the shape decides.
        per_token = {key for key in token_keys if key in features[0] and np.ndim(features[0][key]) == 1}
        for key, fill in token_keys.items():
            if key not in per_token:
                continue
            array = np.full((len(features), length), fill, dtype=dtypes[key])
            array[:, 0] = cls_values[key]
            for row, feature in enumerate(features):
                tokens = np.asarray(feature[key])
                array[row, 1 : 1 + len(tokens)] = tokens
            batch[key] = array
        mask = np.zeros((len(features), length), dtype=np.int64)
        for row, feature in enumerate(features):
            mask[row, : 1 + len(feature["input_ids"])] = 1
        batch["attention_mask"] = mask
        for key in features[0]:
            if key not in per_token:
                batch[key] = np.asarray([feature[key] for feature in features])
        return BatchEncoding(batch, tensor_type=return_tensors)

    # ------------------------------------------------------------------------------------------------------------------
    # decoding
    # ------------------------------------------------------------------------------------------------------------------
    def level_distribution_moments(
        self, probabilities: np.ndarray, gene_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (working scale) of predicted level distributions `(..., num_levels)`."""
        level_values = self.level_values[np.asarray(gene_ids) - len(SPECIAL_TOKENS)]
        mean = (probabilities * level_values).sum(-1)
        variance = (probabilities * (level_values - mean[..., None]) ** 2).sum(-1)
        return mean, np.sqrt(np.maximum(variance, 0.0))

    def level_distribution_interval(
        self, probabilities: np.ndarray, gene_ids: np.ndarray, coverage: float = 0.8
    ) -> tuple[np.ndarray, np.ndarray]:
        """Central `coverage` interval (working scale) of predicted level distributions."""
        level_values = np.broadcast_to(self.level_values[np.asarray(gene_ids) - len(SPECIAL_TOKENS)],
                                       probabilities.shape)
        cumulative = np.cumsum(probabilities, axis=-1)
        tail = (1.0 - coverage) / 2.0
        low = np.minimum((cumulative < tail).sum(-1), self.num_levels - 1)
        high = np.minimum((cumulative < 1.0 - tail).sum(-1), self.num_levels - 1)
        return (np.take_along_axis(level_values, low[..., None], -1)[..., 0],
                np.take_along_axis(level_values, high[..., None], -1)[..., 0])

    def unstandardize(self, standardized: np.ndarray, gene_ids: np.ndarray) -> np.ndarray:
        """Regression output -> working scale."""
        gene_index = np.asarray(gene_ids) - len(SPECIAL_TOKENS)
        return standardized * self.scale[gene_index] + self.center[gene_index]

    # ------------------------------------------------------------------------------------------------------------------
    # persistence: JSON + safetensors, no pickle; the Auto-class entry point and the code travel along
    # ------------------------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The JSON part of the tokenizer, as `gexbert_tokenizer.json` holds it (the arrays go to safetensors)."""
        return {
            "tokenizer_class": type(self).__name__,
            "genes": self.genes,
            "normalization": self.normalization,
            "num_levels": self.num_levels,
            "value_clip": self.value_clip,
            "special_tokens": list(SPECIAL_TOKENS),
        }

    def save_pretrained(self, save_directory: str | Path, **kwargs) -> list[str]:
        """Vocabulary and settings (JSON), level arrays (safetensors), `preprocessor_config.json` with the
        `auto_map` that `AutoFeatureExtractor` follows, and this file with its siblings as remote code.

        Other keyword arguments (which transformers' hub upload passes to every `save_pretrained`) are ignored.
        """
        if kwargs.get("push_to_hub"):
            raise ValueError("save_pretrained does not upload; use tokenizer.push_to_hub(repo_id) or "
                             "model.push_to_hub(repo_id, tokenizer=tokenizer)")
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / TOKENIZER_CONFIG_NAME).write_text(json.dumps(self.to_dict(), indent=1))
        arrays = {"level_edges": self.level_edges, "level_values": self.level_values, "center": self.center,
                  "scale": self.scale}
        save_file({key: np.ascontiguousarray(value) for key, value in arrays.items()},
                  str(directory / TOKENIZER_ARRAYS_NAME))
        (directory / FEATURE_EXTRACTOR_NAME).write_text(json.dumps(self.auto_class_entry(), indent=2) + "\n")
        code_files = custom_object_save(self, directory) or []  # this module and its relative imports
        return [str(directory / name) for name in (TOKENIZER_CONFIG_NAME, TOKENIZER_ARRAYS_NAME,
                                                   FEATURE_EXTRACTOR_NAME)] + [str(path) for path in code_files]

    @classmethod
    def auto_class_entry(cls) -> dict:
        """What `preprocessor_config.json` holds: the class and where its code is (`module.Class`, remote code)."""
        module = cls.__module__.rsplit(".", 1)[-1]
        return {"feature_extractor_type": cls.__name__, "auto_map": {AUTO_CLASS: f"{module}.{cls.__name__}"}}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs) -> GexBertTokenizer:
        """A saved tokenizer from a directory or a hub repo id. Hub options (`revision`, `token`, `cache_dir`...)
        pass to transformers' file resolution; others (those `AutoFeatureExtractor` adds) are ignored."""
        config_path = _saved_file(pretrained_model_name_or_path, TOKENIZER_CONFIG_NAME, kwargs)
        try:
            config = json.loads(Path(config_path).read_text())
            genes, normalization, value_clip = config["genes"], config["normalization"], config["value_clip"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelFileError(f"{config_path}: not a readable GexBERT tokenizer config ({one_line(error)})") from error
        arrays_path = Path(config_path).with_name(TOKENIZER_ARRAYS_NAME)
        try:
            arrays_path = _saved_file(pretrained_model_name_or_path, TOKENIZER_ARRAYS_NAME, kwargs)
            arrays = load_file(str(arrays_path))
        except (OSError, SafetensorError) as error:
            raise ModelFileError(f"{arrays_path}: cannot load the tokenizer's arrays, the file is missing, truncated "
                                 f"or corrupt ({one_line(error)})") from error
        try:
            return cls(genes=genes, normalization=normalization, value_clip=value_clip, **arrays)
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"{pretrained_model_name_or_path}: the tokenizer files do not fit together "
                                 f"({one_line(error)})") from error

    def __repr__(self) -> str:
        return (f"GexBertTokenizer(genes={len(self.genes)}, num_levels={self.num_levels}, "
                f"normalization={self.normalization!r})")


def _training_frame(data, genes, aggregate: str | None, layer: str | None, gene_column: str | None) -> pd.DataFrame:
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


_HUB_OPTIONS = ("cache_dir", "force_download", "proxies", "token", "revision", "local_files_only", "subfolder")


def _saved_file(location: str | Path, name: str, options: dict) -> str:
    """Path of a tokenizer file in a local directory, or downloaded (and cached) from a hub repo."""
    directory = Path(location)
    if directory.is_dir():
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name}: no GexBERT tokenizer saved in {directory}")
        return str(directory / name)
    hub_options = {key: options[key] for key in _HUB_OPTIONS if key in options}
    path = cached_file(str(location), name, _raise_exceptions_for_missing_entries=False, **hub_options)
    if path is None:
        raise FileNotFoundError(f"{location}: no GexBERT tokenizer ({name}) in this hub repository")
    return path


def fingerprint_of(genes: Sequence[str], num_levels: int, normalization: str) -> str:
    text = json.dumps({"genes": list(genes), "num_levels": int(num_levels), "normalization": normalization})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _level_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Level of each value. A value tied with edges (a mass of zeros spanning many quantiles) takes the lowest of
    their levels, so the rare values above the tie still land in levels of their own: with 97% zeros every edge is
    0, and counting ties upwards would put zeros and non-zeros into one top level."""
    return np.searchsorted(edges, values, side="left")


def _level_values(values: np.ndarray, edges: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Per gene and level, the value a predicted level decodes to (working scale).

    An interior level is bounded by its two edges, so its mean training value (the squared-error-optimal value; a
    level's median is further off in a skewed gene) cannot leave the bin. The lowest and the highest level are open
    on one side: there a single extreme cell (a z-score of 3.7e4, a typo of 1e300) would drag the mean anywhere, so
    they decode to their median (of two values, the one nearer the interior, so the extreme one never decides).
    Empty levels keep the quantile midpoint."""
    num_levels = edges.shape[1] + 1
    decoded = fallback.copy()
    for gene in range(values.shape[1]):
        column = values[:, gene]
        column = column[~np.isnan(column)]
        levels = _level_index(edges[gene], column)
        counts = np.bincount(levels, minlength=num_levels)
        sums = np.bincount(levels, weights=column, minlength=num_levels)
        filled = counts > 0
        filled[[0, -1]] = False
        decoded[gene, filled] = sums[filled] / counts[filled]
        for level, interior_most in ((0, np.max), (num_levels - 1, np.min)):
            if counts[level]:
                members = column[levels == level]
                decoded[gene, level] = np.median(members) if len(members) > 2 else interior_most(members)
    return decoded


def _normalize(frame: pd.DataFrame, normalization: str, source: str) -> np.ndarray:
    values = frame.to_numpy(dtype=np.float64)
    if normalization == "none":
        return values.copy()
    negative = values < 0
    if negative.any():
        rows, cols = np.nonzero(negative)
        raise ExpressionInputError(
            f"{source}: normalization='log1p' needs non-negative values, but gene {frame.columns[cols[0]]!r} is "
            f"{values[rows[0], cols[0]]:g} in sample {frame.index[rows[0]]!r} ({negative.sum()} negative cells); "
            "use normalization='none' for data already logged or z-scored"
        )
    return np.log1p(values)


__all__ = ["GexBertTokenizer", "anndata_frame", "as_expression_frame", "auto_normalization", "id_kind", "is_anndata",
           "strip_version"]
