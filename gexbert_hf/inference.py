"""Inference on a trained GexBERT: restoration from a panel and attention received (TEMPORARY stand-in).

The library half of issue #12 replaces this file with the one batched forward helper behind impute / restore /
embed / predict / attention. Until that lands, it holds `restore_from_panel` and `attention_received` moved verbatim
out of the study (they are library calls, not study steps) and re-exports `impute`, `predict_distribution` and
`embed` from where they live today, so the study imports its inference from one place already.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .tasks.embedding import embed
from .tasks.imputation import RestoredDistribution, impute, predict_distribution
from .tokenization_gexbert import GexBertTokenizer


@torch.no_grad()
def restore_from_panel(model, tokenizer: GexBertTokenizer, frame: pd.DataFrame, queries: Sequence[str],
                       batch_size: int = 128, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Restored means (working scale, samples x queries) and pooled embeddings (samples x hidden) of `frame`'s
    samples, seeing only `frame`'s columns (the panel) and asking for `queries` as MASK tokens.

    One encoder pass yields both: the pooled embedding of the encoder and the decoder's level distributions.
    """
    from .modeling_gexbert import expand_attention_mask

    was_training = model.training
    model.eval()
    queries = list(queries)
    query_ids = tokenizer.convert_genes_to_ids(queries) if queries else np.zeros(0, np.int64)
    restored = np.zeros((len(frame), len(queries)))
    pooled = np.zeros((len(frame), model.config.hidden_size))
    for start in tqdm(range(0, len(frame), batch_size), desc="restoring", unit="batch", disable=not progress):
        inputs = tokenizer(frame.iloc[start:start + batch_size], queries=queries or None, return_tensors="pt")
        encoded = model.gexbert(inputs["input_ids"], inputs["level_ids"], inputs["values"],
                                inputs["attention_mask"], return_dict=True)
        pooled[start:start + batch_size] = encoded.pooler_output.float().numpy()
        if queries:
            decoded = model.decoder(encoded.last_hidden_state,
                                    expand_attention_mask(inputs["attention_mask"])).last_hidden_state
            logits = model.level_head(decoded[:, -len(queries):]).float()
            probabilities = torch.softmax(logits, -1).numpy()
            restored[start:start + batch_size] = tokenizer.level_distribution_moments(probabilities, query_ids)[0]
    model.train(was_training)
    return restored, pooled


@torch.no_grad()
def attention_received(model, tokenizer: GexBertTokenizer, frame: pd.DataFrame, batch_size: int = 8
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Mean attention over samples, layers and heads between the genes of `frame` (CLS and padding dropped).

    Returns (gene x gene matrix [query, key], attention each gene receives = column mean).
    """
    was_training = model.training
    model.eval()
    encoder = model.gexbert if hasattr(model, "gexbert") else model
    n = frame.shape[1]
    total = np.zeros((n, n))
    for start in range(0, len(frame), batch_size):
        inputs = tokenizer(frame.iloc[start:start + batch_size], return_tensors="pt")
        outputs = encoder(inputs["input_ids"], inputs["level_ids"], inputs["values"], inputs["attention_mask"],
                          output_attentions=True, return_dict=True)
        stacked = torch.stack(outputs.attentions)  # layers, batch, heads, query, key
        total += stacked[..., 1:, 1:].float().mean(dim=(0, 2)).sum(0).numpy()
    model.train(was_training)
    matrix = total / len(frame)
    return matrix, matrix.mean(axis=0)


__all__ = ["RestoredDistribution", "attention_received", "embed", "impute", "predict_distribution",
           "restore_from_panel"]
