"""The one place model inputs are built: CLS, measured tokens, missing values, MASK queries, padding, attention mask.

The tokenizer (`GexBertTokenizer.__call__` / `pad`), the collators (fine-tuning and pretraining batches) and
inference (`impute`, `embed`, `predict`) all call these functions, so the no-package path (`AutoFeatureExtractor` +
`AutoModel...`), the Python API and the `gexbert` commands feed a model the same tensors for the same samples.

The rule for a missing value (NaN, stored as the MISSING level):
- it is left out of the model's input (`missing="leave_out"`): prediction, embedding, fine-tuning and pretraining
  see only measured genes, so no untrained MISSING token ever reaches the encoder;
- when it is to be imputed (`missing="restore"`), it enters in its place as a MASK query, and the model predicts it.
Genes asked for as `query_ids` (genes outside a fine-tuned panel, or genes to restore) are appended as MASK tokens,
replacing a measured value of the same gene. The asymmetric layout (`config.encoder_skips_queries`) needs nothing
here: the model itself routes MASK tokens past its encoder, keeping the token order.

This file travels with every checkpoint as hub remote code, so it imports only numpy, transformers and siblings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from transformers import BatchEncoding

from .configuration_gexbert import LEVEL_OFFSET, MASK_LEVEL_ID, PAD_LEVEL_ID

PAD_TOKEN_ID = 0
CLS_TOKEN_ID = 1
MISSING_RULES = ("leave_out", "restore")

# per-token keys: (padding and CLS fill, dtype)
TOKEN_KEYS = {
    "input_ids": (PAD_TOKEN_ID, np.int64),
    "level_ids": (PAD_LEVEL_ID, np.int64),
    "values": (0.0, np.float32),
    "labels": (-100, np.int64),
    "value_labels": (np.nan, np.float32),
}
QUERY_FILL = {"level_ids": MASK_LEVEL_ID, "values": 0.0, "labels": -100, "value_labels": np.nan}


def select_tokens(gene_ids: np.ndarray, level_ids: np.ndarray, values: np.ndarray, missing: str = "leave_out",
                  panel_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One sample's measured tokens (restricted to `panel_ids` when given), its missing values left out or entered
    as MASK in their place (`missing`, see the module docstring); the input's token order is kept."""
    if missing not in MISSING_RULES:
        raise ValueError(f"missing must be one of {MISSING_RULES}, got {missing!r}")
    gene_ids = np.asarray(gene_ids, dtype=np.int64)
    level_ids = np.asarray(level_ids, dtype=np.int64)
    values = np.asarray(values, dtype=np.float32)
    measured = level_ids >= LEVEL_OFFSET
    keep = measured if missing == "leave_out" else np.ones(len(level_ids), dtype=bool)
    if panel_ids is not None:
        keep = keep & np.isin(gene_ids, panel_ids)
    levels = np.where(measured, level_ids, MASK_LEVEL_ID)[keep]
    return {"input_ids": gene_ids[keep], "level_ids": levels, "values": np.where(measured, values, 0.0)[keep]}


def append_queries(tokens: dict[str, np.ndarray], query_ids: np.ndarray | None) -> dict[str, np.ndarray]:
    """`tokens` with `query_ids` appended as MASK tokens (no value, no target); a measured token of a query gene
    is replaced by its query. Per-token keys other than the ids get their query fill; others pass through."""
    if query_ids is None or len(query_ids) == 0:
        return tokens
    query_ids = np.asarray(query_ids, dtype=np.int64)
    keep = ~np.isin(tokens["input_ids"], query_ids)
    out = dict(tokens)
    out["input_ids"] = np.concatenate([tokens["input_ids"][keep], query_ids])
    for key, fill in QUERY_FILL.items():
        if key in tokens:
            array = np.asarray(tokens[key])
            out[key] = np.concatenate([array[keep], np.full(len(query_ids), fill, dtype=array.dtype)])
    return out


def sample_tokens(gene_ids: np.ndarray, level_ids: np.ndarray, values: np.ndarray, missing: str = "leave_out",
                  panel_ids: np.ndarray | None = None, query_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One sample's tokens without CLS or padding: `select_tokens`, then `append_queries`."""
    return append_queries(select_tokens(gene_ids, level_ids, values, missing, panel_ids), query_ids)


def pad_tokens(features: Sequence[dict], return_tensors: str | None = "pt") -> BatchEncoding:
    """Prepend the CLS token and pad per-sample token lists to the longest one, with the attention mask.

    Each feature holds `input_ids`, `level_ids`, `values` and optionally `labels` (level targets, -100 = none) and
    `value_labels` (NaN = none); other sample-level keys (class labels, survival times) are stacked as they are.
    `labels` is per token for restoration but one class per sample for classification: its shape decides.
    """
    if not features:
        raise ValueError("model inputs need at least one sample")
    length = 1 + max(len(feature["input_ids"]) for feature in features)
    per_token = [key for key in TOKEN_KEYS if key in features[0] and np.ndim(features[0][key]) == 1]
    batch: dict[str, np.ndarray] = {}
    for key in per_token:
        fill, dtype = TOKEN_KEYS[key]
        array = np.full((len(features), length), fill, dtype=dtype)
        if key == "input_ids":
            array[:, 0] = CLS_TOKEN_ID
        for row, feature in enumerate(features):
            tokens = np.asarray(feature[key])
            array[row, 1: 1 + len(tokens)] = tokens
        batch[key] = array
    lengths = np.array([1 + len(feature["input_ids"]) for feature in features])
    batch["attention_mask"] = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
    for key in features[0]:
        if key not in per_token:
            batch[key] = np.asarray([feature[key] for feature in features])
    return BatchEncoding(batch, tensor_type=return_tensors)


def build_model_inputs(gene_ids: np.ndarray, level_ids: np.ndarray, values: np.ndarray, missing: str = "leave_out",
                       panel_ids: np.ndarray | None = None, query_ids: np.ndarray | None = None,
                       return_tensors: str | None = "pt") -> BatchEncoding:
    """Model inputs for rows of encoded values that share one gene order (`gene_ids` (genes,), `level_ids` and
    `values` (rows x genes), as `GexBertTokenizer.encode` returns them): `sample_tokens` per row, then `pad_tokens`."""
    rows = [sample_tokens(gene_ids, level_ids[row], values[row], missing, panel_ids, query_ids)
            for row in range(len(level_ids))]
    return pad_tokens(rows, return_tensors=return_tensors)


def panel_and_query_ids(genes: Sequence[str], panel_genes: Sequence[str] | None, query_unseen: bool = False,
                        max_queries: int | None = None, seed: int = 0, offset: int = 2
                        ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Vocabulary ids (`offset` special tokens first) of a fine-tuned panel and of its query genes: the vocabulary
    genes outside the panel, at most `max_queries` of them drawn with `seed`. What a fine-tuned config's
    `panel_genes`, `query_unseen`, `max_queries` and `panel_seed` mean as model inputs."""
    if panel_genes is None:
        return None, None
    index = {gene: position + offset for position, gene in enumerate(genes)}
    unknown = [gene for gene in panel_genes if gene not in index]
    if unknown:
        raise KeyError(f"panel genes unknown to the vocabulary: {unknown[:5]}")
    panel_ids = np.array([index[gene] for gene in dict.fromkeys(panel_genes)], dtype=np.int64)
    if not query_unseen:
        return panel_ids, None
    panel = set(panel_genes)
    outside = [gene for gene in genes if gene not in panel]
    if max_queries is not None and len(outside) > max_queries:
        chosen = np.random.default_rng([seed, 7919]).choice(len(outside), size=max_queries, replace=False)
        outside = [outside[position] for position in np.sort(chosen)]
    return panel_ids, np.array([index[gene] for gene in outside], dtype=np.int64)


__all__ = ["CLS_TOKEN_ID", "MISSING_RULES", "PAD_TOKEN_ID", "append_queries", "build_model_inputs",
           "panel_and_query_ids", "pad_tokens", "sample_tokens", "select_tokens"]
