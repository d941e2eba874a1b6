"""Matrix -> tokenizer -> `datasets.Dataset`, in chunks so memory stays near the matrix's own size.

`GexBertTokenizer.fit` is per gene (quantiles, centre, scale), so fitting gene chunk by gene chunk and concatenating
gives the same tokenizer while the temporaries it makes (normalised copy, quantile work space) cover one chunk only.
Encoding runs through `Dataset.map(batched=True)`, which writes each batch to Arrow on disk as it goes.
"""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from ..configuration_gexbert import LEVEL_OFFSET
from ..levels_gexbert import AUTO_NORMALIZATION, resolve_normalization
from ..tokenization_gexbert import GexBertTokenizer

GENE_CHUNK = 2048  # genes per fitting chunk
SAMPLE_CHUNK = 256  # samples per encoding batch


def fit_tokenizer(
    expression: pd.DataFrame,
    rows: np.ndarray | None = None,
    normalization: str = AUTO_NORMALIZATION,
    num_levels: int = 32,
    gene_chunk: int = GENE_CHUNK,
) -> GexBertTokenizer:
    """`GexBertTokenizer.fit` on `expression.iloc[rows]` (the training samples), gene chunk by gene chunk.

    `auto` is decided once on all training values, so every chunk is normalised alike.
    """
    values = expression.to_numpy()
    rows = np.arange(len(expression)) if rows is None else np.asarray(rows)
    normalization = resolve_normalization(normalization, values[rows])
    parts: list[GexBertTokenizer] = []
    dropped: list[str] = []
    for start in range(0, expression.shape[1], gene_chunk):
        genes = expression.columns[start : start + gene_chunk]
        chunk = values[rows, start : start + gene_chunk]
        chunk = chunk[~np.isnan(chunk).all(axis=1)]  # no value in this chunk: ignored by per-gene quantiles anyway
        if len(chunk) == 0:
            dropped += list(genes)
            continue
        part = GexBertTokenizer.fit(chunk, genes=list(genes), normalization=normalization, num_levels=num_levels,
                                    quiet=True)
        parts.append(part)
        dropped += part.unfitted_genes
    if dropped:
        warnings.warn(f"{len(dropped)} genes have no measured value in the training samples and are left out of the "
                      f"vocabulary: {', '.join(dropped[:5])}{' ...' if len(dropped) > 5 else ''}", stacklevel=2)
    return GexBertTokenizer(
        genes=[gene for part in parts for gene in part.genes],
        normalization=normalization,
        level_edges=np.concatenate([part.level_edges for part in parts]),
        level_values=np.concatenate([part.level_values for part in parts]),
        center=np.concatenate([part.center for part in parts]),
        scale=np.concatenate([part.scale for part in parts]),
    )


def token_features(tokenizer: GexBertTokenizer, sample_features: dict[str, datasets.features.FeatureType]
                   ) -> datasets.Features:
    """Arrow schema of a tokenized sample: compact integer types (ids < 2**31, levels < 2**15). Columns are named as
    the models' `forward` arguments, so `Trainer` keeps them (and drops `sample`) with its default settings."""
    level_dtype = "int8" if tokenizer.num_levels + LEVEL_OFFSET < 128 else "int16"
    return datasets.Features(
        {
            "sample": datasets.Value("string"),
            "input_ids": datasets.List(datasets.Value("int32")),
            "level_ids": datasets.List(datasets.Value(level_dtype)),
            "values": datasets.List(datasets.Value("float32")),
            **sample_features,
        }
    )


def encode_to_dataset(
    tokenizer: GexBertTokenizer,
    expression: pd.DataFrame,
    rows: np.ndarray,
    sample_columns: dict[str, np.ndarray],
    features: datasets.Features,
    cache_dir: Path,
    description: str,
    batch_size: int = SAMPLE_CHUNK,
) -> datasets.Dataset:
    """Tokenize `expression.iloc[rows]` (columns: vocabulary genes) into an on-disk Dataset, batch by batch.

    The rows are read from the full matrix one batch at a time, so no copy of a whole split is ever made. Only measured genes are stored per sample (NaN -> absent), which is what the collator reads anyway.
    `sample_columns` are per-sample values (label ids, survival) stored beside the tokens.
    """
    index = datasets.Dataset.from_dict(
        {"sample": list(expression.index[rows]), "_row": np.asarray(rows), **sample_columns},
        features=datasets.Features({"sample": features["sample"], "_row": datasets.Value("int64"),
                                    **{key: features[key] for key in sample_columns}}),
    )

    def encode_batch(batch: dict) -> dict:
        rows = np.asarray(batch["_row"])
        encoded = tokenizer.encode(expression.iloc[rows])
        measured = encoded["level_ids"] >= LEVEL_OFFSET
        gene_ids = encoded["gene_ids"].astype(np.int32)
        return {
            "input_ids": [gene_ids[keep] for keep in measured],
            "level_ids": [levels[keep] for levels, keep in zip(encoded["level_ids"], measured, strict=True)],
            "values": [values[keep] for values, keep in zip(encoded["values"], measured, strict=True)],
        }

    cache_dir.mkdir(parents=True, exist_ok=True)
    return index.map(
        encode_batch,
        batched=True,
        batch_size=batch_size,
        remove_columns=["_row"],
        features=features,
        cache_file_name=str(cache_dir / f"{description.replace(' ', '_')}-{uuid.uuid4().hex}.arrow"),
        new_fingerprint=uuid.uuid4().hex,  # the closure holds the matrix: never hash it
        writer_batch_size=batch_size,
        desc=description,
    )


LEGACY_COLUMNS = {"gene_ids": "input_ids", "label": "labels"}  # names of datasets built before they matched the models


def with_model_column_names(dataset):
    """A `Dataset` / `DatasetDict` built before its columns were named as the models' inputs, renamed (else as is)."""
    column_names = dataset.column_names
    present = set(column_names) if isinstance(column_names, list) else set(next(iter(column_names.values()), []))
    renames = {old: new for old, new in LEGACY_COLUMNS.items() if old in present and new not in present}
    return dataset.rename_columns(renames) if renames else dataset


__all__ = ["encode_to_dataset", "fit_tokenizer", "token_features", "with_model_column_names"]
