"""GexBertTokenizer: expression matrix -> model inputs, and predicted levels -> expression values.

A fitted tokenizer holds everything learned from the training samples (scikit-learn's `fit` then `transform`
contract, so test samples never shape the level edges): the gene vocabulary, the normalisation, per-gene quantile
level edges and level values, and a robust per-gene centre and scale for the continuous value input.

Decoding is robust to extreme training values: a predicted level decodes to the mean of the training values in that
level, except the lowest and highest levels (open on one side), which decode to their median; so one cell of 1e300
(or tcga13's z-scores of 3.7e4) can neither move the level edges nor the values any imputation returns.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from transformers import BatchEncoding

from .configuration_gexbert import LEVEL_OFFSET, MASK_LEVEL_ID, MISSING_LEVEL_ID, PAD_LEVEL_ID
from .errors import ExpressionInputError, ModelFileError, one_line, preview

TOKENIZER_CONFIG_NAME = "gexbert_tokenizer.json"
TOKENIZER_ARRAYS_NAME = "gexbert_tokenizer.safetensors"
NORMALIZATIONS = ("log1p", "none")
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
) -> pd.DataFrame:
    """Validate a samples x genes matrix and return it as a float64 DataFrame; NaN stays as 'not measured'.

    Raises `ExpressionInputError` naming the gene, sample or shape at fault.
    """
    if isinstance(data, pd.DataFrame):
        if genes is not None:
            raise ExpressionInputError(f"{source}: pass `genes` only with a numpy array; a DataFrame names its columns")
        frame = data
    else:
        array = np.asarray(data)
        if array.ndim != 2:
            raise ExpressionInputError(f"{source}: expected a 2-D samples x genes matrix, got shape {array.shape}")
        if genes is None:
            raise ExpressionInputError(f"{source}: a numpy array needs `genes`, one name per column")
        if len(genes) != array.shape[1]:
            raise ExpressionInputError(
                f"{source}: {len(genes)} gene names for {array.shape[1]} columns; shapes must match"
            )
        if samples is not None and len(samples) != array.shape[0]:
            raise ExpressionInputError(
                f"{source}: {len(samples)} sample ids for {array.shape[0]} rows; shapes must match"
            )
        frame = pd.DataFrame(array, columns=list(genes), index=samples)
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


class GexBertTokenizer:
    """Fitted gene vocabulary + expression levels; `__call__` turns a matrix into `model(**inputs)` tensors."""

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
        normalization: str = "log1p",
        num_levels: int = 32,
        aggregate: str | None = None,
        value_clip: float = 8.0,
    ) -> GexBertTokenizer:
        """Fit vocabulary, per-gene quantile level edges and value scaling on training samples (samples x genes).

        Quantile edges make the levels robust to extreme outliers: a value of 3.7e4 only lands in the top level,
        and the top and bottom levels decode to their median, not their mean, so it does not move what they decode to.
        Genes with no measured value in the training samples cannot be fitted and are dropped with a warning.
        """
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        if num_levels < 2:
            raise ValueError(f"num_levels must be at least 2, got {num_levels}")
        frame = as_expression_frame(data, genes, aggregate=aggregate, source="training matrix")
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
    def select_known(self, frame: pd.DataFrame, source: str = "expression matrix") -> pd.DataFrame:
        """Keep the genes of the vocabulary, with one warning naming a few of those dropped."""
        unknown = [gene for gene in frame.columns if gene not in self.gene_to_index]
        if unknown:
            warnings.warn(
                f"{source}: {len(unknown)} of {frame.shape[1]} genes are unknown to the tokenizer vocabulary "
                f"and are dropped: {preview(unknown)}",
                stacklevel=3,
            )
            frame = frame.loc[:, [gene for gene in frame.columns if gene in self.gene_to_index]]
        if frame.shape[1] == 0:
            raise ExpressionInputError(f"{source}: none of its genes is in the tokenizer vocabulary")
        return frame

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
        self, data: pd.DataFrame | np.ndarray, genes: Sequence[str] | None = None, aggregate: str | None = None
    ) -> dict[str, np.ndarray | list[str]]:
        """Matrix -> per-gene arrays without padding or CLS: the form a `datasets.Dataset` stores.

        Returns `gene_ids` (genes,), `level_ids` and `values` (samples x genes), and the `samples` and `genes` kept.
        NaN becomes the MISSING level with value 0: an input that is never a restoration target.
        """
        frame = self.select_known(as_expression_frame(data, genes, aggregate=aggregate))
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
        }

    def __call__(
        self,
        data: pd.DataFrame | np.ndarray,
        genes: Sequence[str] | None = None,
        queries: Sequence[str] | None = None,
        return_tensors: str | None = "pt",
        aggregate: str | None = None,
    ) -> BatchEncoding:
        """Model inputs for every sample of `data`: `input_ids`, `level_ids`, `values`, `attention_mask`.

        `queries` are genes to restore: they enter with the MASK level (replacing any measured value) and the
        model predicts them, whether or not `data` holds them.
        """
        encoded = self.encode(data, genes, aggregate=aggregate)
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
    # persistence: JSON + safetensors, no pickle
    # ------------------------------------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | Path) -> list[str]:
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "tokenizer_class": type(self).__name__,
            "genes": self.genes,
            "normalization": self.normalization,
            "num_levels": self.num_levels,
            "value_clip": self.value_clip,
            "special_tokens": list(SPECIAL_TOKENS),
        }
        (directory / TOKENIZER_CONFIG_NAME).write_text(json.dumps(config, indent=1))
        arrays = {"level_edges": self.level_edges, "level_values": self.level_values, "center": self.center,
                  "scale": self.scale}
        save_file({key: np.ascontiguousarray(value) for key, value in arrays.items()},
                  str(directory / TOKENIZER_ARRAYS_NAME))
        return [str(directory / TOKENIZER_CONFIG_NAME), str(directory / TOKENIZER_ARRAYS_NAME)]

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> GexBertTokenizer:
        directory = Path(directory)
        config_path = directory / TOKENIZER_CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(f"{config_path}: no GexBERT tokenizer saved in {directory}")
        try:
            config = json.loads(config_path.read_text())
            genes, normalization, value_clip = config["genes"], config["normalization"], config["value_clip"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelFileError(f"{config_path}: not a readable GexBERT tokenizer config ({one_line(error)})") from error
        arrays_path = directory / TOKENIZER_ARRAYS_NAME
        try:
            arrays = load_file(str(arrays_path))
        except (OSError, SafetensorError) as error:
            raise ModelFileError(f"{arrays_path}: cannot load the tokenizer's arrays, the file is missing, truncated "
                                 f"or corrupt ({one_line(error)})") from error
        try:
            return cls(genes=genes, normalization=normalization, value_clip=value_clip, **arrays)
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"{directory}: the tokenizer files do not fit together ({one_line(error)})") from error

    def __repr__(self) -> str:
        return (f"GexBertTokenizer(genes={len(self.genes)}, num_levels={self.num_levels}, "
                f"normalization={self.normalization!r})")


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


__all__ = ["GexBertTokenizer", "as_expression_frame"]
