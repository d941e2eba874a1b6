"""Sample embeddings: one vector per profile from any GexBERT head's encoder, for maps, clustering or new models.

A profile enters as its measured genes (NaN = not measured, left out as in fine-tuning and prediction); the
encoder's pooled output (or its CLS / mean-over-genes token, when asked for the other pooling) is the embedding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..configuration_gexbert import POOLINGS
from ..data.collator import DataCollatorForMaskedExpression
from ..data.samples import EncodedSamples, fetch_rows
from ..errors import ExpressionInputError
from ..tokenization_gexbert import GexBertTokenizer, as_expression_frame

OBSM_KEY = "X_gexbert"
EMBEDDING_SEED = 1  # the gene subsampling stream when `max_genes` caps a profile: the same call, the same vector


def is_anndata(data) -> bool:
    """Duck-typed AnnData (obs = samples, var = genes): no anndata import needed to recognise one."""
    return all(hasattr(data, name) for name in ("obs_names", "var_names", "X", "obsm", "copy"))


def anndata_to_frame(adata) -> pd.DataFrame:
    """`adata.X` as a samples x genes DataFrame (dense), indexed by `obs_names`, columns `var_names`."""
    matrix = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    return pd.DataFrame(matrix, index=pd.Index(adata.obs_names), columns=pd.Index(adata.var_names).map(str))


@torch.no_grad()
def embed(
    model,
    tokenizer: GexBertTokenizer,
    data,
    batch_size: int = 64,
    pooling: str | None = None,
    max_genes: int | None = None,
    progress: bool = False,
):
    """Embed every sample of `data`: a samples x hidden DataFrame indexed like `data`, or an AnnData copy.

    `model` is any GexBERT (pretrained, classifier, survival or the bare encoder); only its encoder runs.
    `pooling` is `"cls"` or `"mean"` (default: the model's `config.pooling`, the one its heads were trained on).
    `max_genes` caps the genes read per sample (seeded subsample; default all measured genes): attention cost
    grows with its square. An AnnData (`.obs_names`, `.var_names`, `.X`) comes back as a copy with
    `obsm["X_gexbert"]`; a DataFrame as a DataFrame with columns `gexbert_0 ...`, the caller's index kept.
    """
    pooling = pooling or model.config.pooling
    if pooling not in POOLINGS:
        raise ExpressionInputError(f"embed: pooling must be one of {POOLINGS}, got {pooling!r}")
    if batch_size < 1:
        raise ExpressionInputError(f"embed: batch_size must be positive, got {batch_size}")
    frame = anndata_to_frame(data) if is_anndata(data) else data
    if not isinstance(frame, pd.DataFrame):
        raise ExpressionInputError(f"embed: data must be a samples x genes DataFrame or an AnnData, got "
                                   f"{type(data).__name__}")
    if frame.shape[0] == 0:
        raise ExpressionInputError("embedding input: no samples")
    known = tokenizer.select_known(as_expression_frame(frame, source="embedding input"), source="embedding input")
    vectors = _pooled_embeddings(model, tokenizer, EncodedSamples.from_frame(tokenizer, known), batch_size, pooling,
                                 max_genes, progress)
    if is_anndata(data):
        result = data.copy()
        result.obsm[OBSM_KEY] = vectors
        return result
    return pd.DataFrame(vectors, index=frame.index.copy(), columns=[f"gexbert_{i}" for i in range(vectors.shape[1])])


def _pooled_embeddings(model, tokenizer: GexBertTokenizer, samples: EncodedSamples, batch_size: int, pooling: str,
                       max_genes: int | None, progress: bool) -> np.ndarray:
    """`(samples, hidden)` float32: the encoder (`model.base_model`) over measured genes, batch by batch."""
    encoder = model.base_model
    collator = DataCollatorForMaskedExpression(tokenizer, max_genes=max_genes, mask_fraction=0.0, seed=EMBEDDING_SEED)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts = []
    for start in tqdm(range(0, len(samples), batch_size), desc="embedding", unit="batch", disable=not progress):
        batch = collator(fetch_rows(samples, range(start, min(start + batch_size, len(samples))))).to(device)
        outputs = encoder(input_ids=batch["input_ids"], level_ids=batch["level_ids"], values=batch["values"],
                          attention_mask=batch["attention_mask"], return_dict=True)
        parts.append(_pool(outputs, batch["attention_mask"], pooling, model.config.pooling).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(parts)


def _pool(outputs, attention_mask: torch.Tensor, pooling: str, native: str) -> torch.Tensor:
    """The encoder's own `pooler_output` when it pools as asked; otherwise CLS, or the mean over gene tokens."""
    if pooling == native:
        return outputs.pooler_output
    hidden = outputs.last_hidden_state
    if pooling == "cls":
        return hidden[:, 0]
    weights = attention_mask[:, 1:].unsqueeze(-1).to(hidden.dtype)  # gene tokens: CLS and padding excluded
    return (hidden[:, 1:] * weights).sum(1) / weights.sum(1).clamp(min=1.0)


__all__ = ["OBSM_KEY", "anndata_to_frame", "embed", "is_anndata"]
