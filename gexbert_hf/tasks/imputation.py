"""Missing-value imputation and gene restoration with `GexBertForMaskedExpression`.

Every missing value and every requested absent gene enters as a MASK query beside the measured genes of its sample;
the predicted level distribution gives the restored value (its mean) and its uncertainty (its spread).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..checks import check_finite_output, check_tokenizer_matches, model_name
from ..configuration_gexbert import MASK_LEVEL_ID
from ..errors import ExpressionInputError
from ..threads import configure_threads
from ..tokenization_gexbert import GexBertTokenizer, as_expression_frame


@dataclass
class RestoredDistribution:
    """Per sample and gene, on the tokenizer's working scale: predicted mean, spread and central interval."""

    samples: list[str]
    genes: list[str]
    raw: np.ndarray  # the input as given, NaN where the value was missing or absent
    observed: np.ndarray  # the same on the working scale
    mean: np.ndarray
    std: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@torch.no_grad()
def predict_distribution(
    model,
    tokenizer: GexBertTokenizer,
    data: pd.DataFrame | np.ndarray,
    genes: Sequence[str] | None = None,
    batch_size: int = 64,
    coverage: float = 0.8,
    progress: bool = False,
    layer: str | None = None,
    gene_column: str | None = None,
) -> RestoredDistribution:
    """Predict every missing value of `data` and every gene of `genes` absent from it (working scale).

    `data` is a samples x genes DataFrame or an AnnData (`layer`, `gene_column`); the input's genes keep their
    names in the result even where they match the vocabulary only without an Ensembl version suffix.
    """
    configure_threads()
    if not hasattr(model, "level_head"):
        raise TypeError(f"imputation needs a GexBertForMaskedExpression, got {type(model).__name__}")
    check_tokenizer_matches(tokenizer, model.config, source=model_name(model))
    given = as_expression_frame(data, source="imputation input", layer=layer, gene_column=gene_column)
    frame = tokenizer.select_known(given, source="imputation input")
    input_names = {tokenizer.vocabulary_name(gene): gene for gene in given.columns}
    requested = list(dict.fromkeys(genes or []))
    tokenizer.convert_genes_to_ids(requested)  # raises naming genes the model cannot restore
    absent = [gene for gene in requested if gene not in frame.columns]
    if absent:
        frame = frame.join(pd.DataFrame(np.nan, index=frame.index, columns=absent))
    encoded = tokenizer.encode(frame)
    observed_mask = encoded["level_ids"] != MASK_LEVEL_ID
    observed_mask &= ~np.isnan(frame.to_numpy())
    level_ids = np.where(observed_mask, encoded["level_ids"], MASK_LEVEL_ID)
    gene_ids = encoded["gene_ids"]

    shape = level_ids.shape
    mean, std = np.zeros(shape), np.zeros(shape)
    lower, upper = np.zeros(shape), np.zeros(shape)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    starts = range(0, shape[0], batch_size)
    for start in tqdm(starts, desc="imputing", unit="batch", disable=not progress):
        stop = start + batch_size
        features = [
            {"input_ids": gene_ids, "level_ids": level_ids[row], "values": encoded["values"][row]}
            for row in range(start, min(stop, shape[0]))
        ]
        inputs = tokenizer.pad(features, return_tensors="pt").to(device)
        logits = model(**inputs).level_logits[:, 1:].float()  # drop the CLS position
        probabilities = torch.softmax(logits, dim=-1).cpu().numpy()
        mean[start:stop], std[start:stop] = tokenizer.level_distribution_moments(probabilities, gene_ids)
        lower[start:stop], upper[start:stop] = tokenizer.level_distribution_interval(probabilities, gene_ids, coverage)
    model.train(was_training)
    check_finite_output(mean, list(frame.index), model)
    raw = np.where(observed_mask, frame.to_numpy(), np.nan)
    return RestoredDistribution(
        samples=list(frame.index), genes=[input_names.get(gene, gene) for gene in frame.columns], raw=raw,
        observed=tokenizer.normalize(raw, list(frame.columns)),
        mean=mean, std=std, lower=lower, upper=upper,
    )


def impute(
    model,
    tokenizer: GexBertTokenizer,
    data: pd.DataFrame | np.ndarray,
    genes: Sequence[str] | None = None,
    batch_size: int = 64,
    progress: bool = False,
    layer: str | None = None,
    gene_column: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return `(filled, uncertainty)`, DataFrames shaped like the input plus any requested absent genes.

    `data` is a samples x genes DataFrame or an AnnData (obs x var; `layer` instead of `X`, `gene_column` a var
    column naming the genes); the frames are indexed by sample (obs names) either way.

    Measured values are kept as given; each NaN (and each absent requested gene) is replaced by the mean of its
    predicted distribution, back on the input's scale. `uncertainty` is that distribution's standard deviation on
    the tokenizer's working scale (log1p-space for `log1p` tokenizers), 0 for measured values.
    """
    if isinstance(data, pd.DataFrame) and data.shape[0] == 0:
        raise ExpressionInputError("imputation input: no samples")
    restored = predict_distribution(model, tokenizer, data, genes=genes, batch_size=batch_size, progress=progress,
                                    layer=layer, gene_column=gene_column)
    measured = ~np.isnan(restored.raw)
    filled = np.where(measured, restored.raw, tokenizer.denormalize(restored.mean))
    uncertainty = np.where(measured, 0.0, restored.std)
    index, columns = _caller_labels(data, restored)
    return (pd.DataFrame(filled, index=index, columns=columns),
            pd.DataFrame(uncertainty, index=index, columns=columns))


def _caller_labels(data, restored: RestoredDistribution) -> tuple[pd.Index, pd.Index]:
    """The caller's own row and column labels (values, dtype, name), which validation turned into strings: with
    them `data.fillna(filled)` lines up. Requested genes absent from `data` keep their vocabulary names."""
    if not isinstance(data, pd.DataFrame):
        return pd.Index(restored.samples, name="sample"), pd.Index(restored.genes)
    if len(data.index) != len(restored.samples):  # validation never drops or reorders samples; guard the promise
        raise RuntimeError(f"imputation returned {len(restored.samples)} samples for {len(data.index)} given")
    own = {str(column): column for column in data.columns}
    columns = pd.Index([own.get(gene, gene) for gene in restored.genes], name=data.columns.name)
    return data.index.copy(), columns
