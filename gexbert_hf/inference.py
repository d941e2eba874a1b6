"""Using a trained GexBERT on expression profiles: one batched forward pass behind every use.

`forward_batches` holds what every use shares: eval mode, no gradients, the model's device, batches, a progress bar,
and the training flag given back as found. On it sit restoration (`predict_distribution`, `impute`,
`restore_from_panel`), sample embeddings (`embed`), fine-tuned predictions (`predict`: classes or risk) and
attention (`attention_received`). A matrix is validated once at the edge (`as_expression_frame`, or the reader that
produced it: `validated_frame` does not validate a validated frame again), encoded and normalised once
(`GexBertTokenizer.encode_known`), then travels as arrays.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm
from transformers import BatchEncoding

from .configuration_gexbert import LEVEL_OFFSET, MISSING_LEVEL_ID, POOLINGS
from .data.collator import DataCollatorForExpressionFinetuning, DataCollatorForMaskedExpression, panel_ids_and_queries
from .data.samples import EncodedSamples, fetch_rows
from .errors import ExpressionInputError, NonFiniteOutputError, preview
from .expression_input_gexbert import describe_ids, is_anndata, validated_frame
from .input_scale import check_frame_scale
from .inputs_gexbert import build_model_inputs
from .loading import check_tokenizer_matches, model_name, require_head
from .threads import configure_threads
from .tokenization_gexbert import GexBertTokenizer

IMPUTATION_INPUT = "imputation input"
EMBEDDING_INPUT = "embedding input"
OBSM_KEY = "X_gexbert"
EMBEDDING_SEED = 1  # the gene subsampling stream when `max_genes` caps a profile: the same call, the same vector


# ----------------------------------------------------------------------------------------------------------------------
# the one forward loop
# ----------------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def forward_batches(model: torch.nn.Module, n_samples: int, batch_size: int,
                    make_batch: Callable[[range], BatchEncoding], read: Callable, forward: Callable | None = None,
                    description: str = "", progress: bool = False, **forward_options) -> list:
    """`read(outputs, batch)` for each batch of `n_samples` rows, `outputs = forward(**batch)` (default the model
    itself; e.g. `model.base_model` for the encoder alone) in eval mode on the model's device; the model's
    training flag is given back as found, also when a batch fails."""
    if batch_size < 1:
        raise ExpressionInputError(f"batch_size must be positive, got {batch_size}")
    configure_threads()
    forward = model if forward is None else forward
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    results = []
    try:
        for start in tqdm(range(0, n_samples, batch_size), desc=description, unit="batch", disable=not progress):
            batch = make_batch(range(start, min(start + batch_size, n_samples))).to(device)
            results.append(read(forward(**batch, **forward_options), batch))
    finally:
        model.train(was_training)
    return results


def check_finite_output(values: np.ndarray, samples: Sequence, model) -> None:
    """Raise `NonFiniteOutputError` naming the model and samples when `values` (one row per sample) hold NaN or inf."""
    bad = ~np.isfinite(np.asarray(values, dtype=np.float64).reshape(len(samples), -1)).all(axis=1)
    if bad.any():
        raise NonFiniteOutputError(
            f"{model_name(model)}: the model outputs NaN or infinite values for {int(bad.sum())} of {len(samples)} "
            f"samples ({preview([samples[i] for i in np.flatnonzero(bad)])}); its weights are corrupt or diverged, and "
            "nothing is returned or written from them"
        )


def query_positions(batch: BatchEncoding, n_queries: int) -> torch.Tensor:
    """Token positions `(rows, n_queries)` of the query genes, which `inputs_gexbert` appends last in every row."""
    ends = batch["attention_mask"].sum(dim=1, keepdim=True)
    return ends - n_queries + torch.arange(n_queries, device=ends.device)[None, :]


def _with_columns(matrix: np.ndarray, count: int, fill) -> np.ndarray:
    """`matrix` with `count` columns of `fill` appended (the genes asked for that the input lacks)."""
    return np.hstack([matrix, np.full((len(matrix), count), fill, dtype=matrix.dtype)])


# ----------------------------------------------------------------------------------------------------------------------
# restoration: missing values and absent genes from the predicted level distribution
# ----------------------------------------------------------------------------------------------------------------------
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


def predict_distribution(model, tokenizer: GexBertTokenizer, data, genes: Sequence[str] | None = None,
                         batch_size: int = 64, coverage: float = 0.8, progress: bool = False,
                         layer: str | None = None, gene_column: str | None = None, scale_check: str = "refuse",
                         source: str = IMPUTATION_INPUT) -> RestoredDistribution:
    """Predict every missing value of `data` and every gene of `genes` absent from it (working scale).

    `data` is a samples x genes DataFrame, a validated frame (a reader's output) or an AnnData (`layer`,
    `gene_column`); it is validated, encoded and normalised once. Every NaN and every requested absent gene enters as
    a MASK query beside the measured genes of its sample. The input's genes keep their names in the result even
    where they match the vocabulary only without an Ensembl version suffix. `scale_check`: input on another scale
    than the checkpoint's is refused (`"refuse"`), or only warned about (`"warn"`), or not checked (`"off"`); see
    `gexbert_hf.input_scale`. `source` names the input in errors (a file path, say).
    """
    frame = validated_frame(data, source=source, layer=layer, gene_column=gene_column)
    require_head(model, "imputation")
    check_tokenizer_matches(tokenizer, model.config, source=model_name(model))
    known = tokenizer.select_known(frame, source=source)
    requested = list(dict.fromkeys(genes or []))
    tokenizer.convert_genes_to_ids(requested)  # raises naming genes the model cannot restore
    absent = [gene for gene in requested if gene not in known.columns]
    encoded = tokenizer.encode_known(known)
    check_frame_scale(tokenizer, known, source, scale_check, normalized=encoded["normalized"])
    gene_ids = np.concatenate([encoded["gene_ids"], tokenizer.convert_genes_to_ids(absent)])
    observed = _with_columns(encoded["normalized"], len(absent), np.nan)
    level_ids = _with_columns(encoded["level_ids"], len(absent), MISSING_LEVEL_ID)
    values = _with_columns(encoded["values"], len(absent), 0.0)
    mean, std, lower, upper = _level_distributions(model, tokenizer, gene_ids, level_ids, values, batch_size,
                                                   coverage, progress)
    check_finite_output(mean, encoded["samples"], model)
    input_names = {tokenizer.vocabulary_name(gene): gene for gene in frame.columns}
    return RestoredDistribution(
        samples=encoded["samples"], genes=[input_names.get(gene, gene) for gene in [*known.columns, *absent]],
        raw=_with_columns(known.to_numpy(), len(absent), np.nan), observed=observed,
        mean=mean, std=std, lower=lower, upper=upper,
    )


def _level_distributions(model, tokenizer: GexBertTokenizer, gene_ids: np.ndarray, level_ids: np.ndarray,
                         values: np.ndarray, batch_size: int, coverage: float, progress: bool
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, spread and central `coverage` interval of every token's predicted level distribution (CLS dropped);
    every missing value enters as a MASK query in its place."""

    def read(outputs, batch) -> tuple[np.ndarray, ...]:
        probabilities = torch.softmax(outputs.level_logits[:, 1:].float(), dim=-1).cpu().numpy()
        return (*tokenizer.level_distribution_moments(probabilities, gene_ids),
                *tokenizer.level_distribution_interval(probabilities, gene_ids, coverage))

    parts = forward_batches(model, len(level_ids), batch_size,
                            lambda rows: build_model_inputs(gene_ids, level_ids[rows], values[rows], missing="restore"),
                            read, description="imputing", progress=progress)
    mean, std, lower, upper = (np.concatenate(part) for part in zip(*parts))
    return mean, std, lower, upper


def impute(model, tokenizer: GexBertTokenizer, data, genes: Sequence[str] | None = None, batch_size: int = 64,
           progress: bool = False, layer: str | None = None, gene_column: str | None = None,
           scale_check: str = "refuse", source: str = IMPUTATION_INPUT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return `(filled, uncertainty)`, DataFrames shaped like the input plus any requested absent genes.

    `data` is a samples x genes DataFrame or an AnnData (obs x var; `layer` instead of `X`, `gene_column` a var
    column naming the genes); the frames are indexed by sample (obs names) either way, a DataFrame's own labels
    kept, so `data.fillna(filled)` lines up.

    Measured values are kept as given; each NaN (and each absent requested gene) is replaced by the mean of its
    predicted distribution, back on the input's scale. `uncertainty` is that distribution's standard deviation on
    the tokenizer's working scale (log1p-space for `log1p` tokenizers), 0 for measured values.
    Input on another scale than the checkpoint's is refused (`scale_check="warn"` or `"off"` to proceed).
    """
    if isinstance(data, pd.DataFrame) and data.shape[0] == 0:
        raise ExpressionInputError(f"{source}: no samples")
    restored = predict_distribution(model, tokenizer, data, genes, batch_size, progress=progress, layer=layer,
                                    gene_column=gene_column, scale_check=scale_check, source=source)
    measured = ~np.isnan(restored.raw)
    index, columns = pd.Index(restored.samples, name="sample"), pd.Index(restored.genes)
    filled = pd.DataFrame(np.where(measured, restored.raw, tokenizer.denormalize(restored.mean)), index, columns)
    uncertainty = pd.DataFrame(np.where(measured, 0.0, restored.std), index, columns)
    if not isinstance(data, pd.DataFrame):
        return filled, uncertainty
    index, columns = _caller_labels(data, filled)
    return filled.set_axis(index).set_axis(columns, axis=1), uncertainty.set_axis(index).set_axis(columns, axis=1)


def _caller_labels(data: pd.DataFrame, filled: pd.DataFrame) -> tuple[pd.Index, pd.Index]:
    """The caller's own row and column labels (values, dtype, name), which validation turned into strings. Requested
    genes absent from `data` keep their vocabulary names."""
    if len(data.index) != len(filled.index):  # validation never drops or reorders samples; guard the promise
        raise RuntimeError(f"imputation returned {len(filled.index)} samples for {len(data.index)} given")
    own = {str(column): column for column in data.columns}
    return data.index.copy(), pd.Index([own.get(gene, gene) for gene in filled.columns], name=data.columns.name)


def restore_from_panel(model, tokenizer: GexBertTokenizer, frame: pd.DataFrame, queries: Sequence[str],
                       batch_size: int = 128, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Restored means (working scale, samples x queries) and pooled embeddings (samples x hidden) of `frame`'s
    samples, seeing only `frame`'s measured values (the panel; NaN left out) and asking for `queries` as MASK tokens.

    One pass yields both: the pooled embedding of the encoder and the decoder's level distributions.
    """
    queries = list(queries)
    encoded = tokenizer.encode(frame)
    query_ids = tokenizer.convert_genes_to_ids(queries) if queries else np.zeros(0, np.int64)

    def read(outputs, batch) -> tuple[np.ndarray, np.ndarray]:
        pooled = outputs.pooler_output.float().cpu().numpy().astype(np.float64)
        if not queries:
            return np.zeros((len(pooled), 0)), pooled
        positions = query_positions(batch, len(queries))
        logits = torch.take_along_dim(outputs.level_logits, positions[..., None], dim=1)
        probabilities = torch.softmax(logits.float(), -1).cpu().numpy()
        return tokenizer.level_distribution_moments(probabilities, query_ids)[0], pooled

    parts = forward_batches(model, len(encoded["samples"]), batch_size,
                            lambda rows: build_model_inputs(encoded["gene_ids"], encoded["level_ids"][rows],
                                                            encoded["values"][rows], query_ids=query_ids), read,
                            forward=model if queries else model.base_model, description="restoring",
                            progress=progress)
    restored, pooled = (np.concatenate(part) for part in zip(*parts))
    return restored, pooled


# ----------------------------------------------------------------------------------------------------------------------
# sample embeddings
# ----------------------------------------------------------------------------------------------------------------------
def embed(model, tokenizer: GexBertTokenizer, data, batch_size: int = 64, pooling: str | None = None,
          max_genes: int | None = None, progress: bool = False, scale_check: str = "refuse"):
    """Embed every sample of `data`: a samples x hidden DataFrame indexed like `data`, or an AnnData copy.

    `model` is any GexBERT (pretrained, classifier, survival or the bare encoder); only its encoder runs, over each
    profile's measured genes (NaN = not measured, left out as in fine-tuning and prediction).
    `pooling` is `"cls"` or `"mean"` (default: the model's `config.pooling`, the one its heads were trained on).
    `max_genes` caps the genes read per sample (seeded subsample; default all measured genes): attention cost
    grows with its square. An AnnData (`.obs_names`, `.var_names`, `.X`) comes back as a copy with
    `obsm["X_gexbert"]`; a DataFrame as a DataFrame with columns `gexbert_0 ...`, the caller's index kept.
    Input on another scale than the checkpoint's is refused (`scale_check="warn"` or `"off"` to proceed).
    """
    pooling = pooling or model.config.pooling
    if pooling not in POOLINGS:
        raise ExpressionInputError(f"embed: pooling must be one of {POOLINGS}, got {pooling!r}")
    if batch_size < 1:
        raise ExpressionInputError(f"embed: batch_size must be positive, got {batch_size}")
    if not (isinstance(data, pd.DataFrame) or is_anndata(data)):
        raise ExpressionInputError(f"embed: data must be a samples x genes DataFrame or an AnnData, got "
                                   f"{type(data).__name__}")
    if isinstance(data, pd.DataFrame) and data.shape[0] == 0:
        raise ExpressionInputError(f"{EMBEDDING_INPUT}: no samples")
    known = tokenizer.select_known(validated_frame(data, source=EMBEDDING_INPUT), source=EMBEDDING_INPUT)
    encoded = tokenizer.encode_known(known)
    check_frame_scale(tokenizer, known, EMBEDDING_INPUT, scale_check, normalized=encoded["normalized"])
    samples = EncodedSamples(encoded)
    collator = DataCollatorForMaskedExpression(tokenizer, max_genes=max_genes, mask_fraction=0.0, seed=EMBEDDING_SEED)
    encoder = model.base_model

    def read(outputs, batch) -> np.ndarray:
        pooled = (outputs.pooler_output if pooling == model.config.pooling
                  else encoder.pool(outputs.last_hidden_state, batch["attention_mask"], pooling))
        return pooled.float().cpu().numpy()

    vectors = np.concatenate(forward_batches(model, len(samples), batch_size,
                                             lambda rows: collator(fetch_rows(samples, rows)), read, forward=encoder,
                                             description="embedding", progress=progress))
    if is_anndata(data):
        result = data.copy()
        result.obsm[OBSM_KEY] = vectors
        return result
    return pd.DataFrame(vectors, index=data.index.copy(), columns=[f"gexbert_{i}" for i in range(vectors.shape[1])])


# ----------------------------------------------------------------------------------------------------------------------
# fine-tuned heads: classes and risk, from the panel (and queries) the model was fine-tuned with
# ----------------------------------------------------------------------------------------------------------------------
def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of logits `(..., classes)`, numerically stable."""
    shifted = logits - logits.max(-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(-1, keepdims=True)


def predict(model, tokenizer: GexBertTokenizer, data, batch_size: int = 64, source: str = "input",
            scale_check: str = "refuse") -> pd.DataFrame:
    """Predictions of a fine-tuned head for every sample of `data`, from the panel and queries the model was
    fine-tuned with (its config): `predicted` + `probability_<label>` columns, or `risk` (Cox log hazard ratio).

    `data` is a samples x genes DataFrame or an AnnData (validated, gene names mapped and its scale checked:
    `scale_check="warn"` or `"off"` to proceed on another scale), or samples encoded already (an `EncodedSamples`
    or a tokenized `datasets.Dataset`), which are read as they are."""
    head = require_head(model, "prediction")
    check_tokenizer_matches(tokenizer, model.config, source=model_name(model))
    samples = data if _is_encoded(data) else _encoded_panel_input(model, tokenizer, data, source, scale_check)
    outputs = _head_outputs(model, tokenizer, samples, batch_size, "logits" if head == "classification" else "risk")
    names = getattr(samples, "samples", None) or (samples["sample"] if "sample" in getattr(samples, "column_names",
                                                                                              []) else None)
    index = pd.Index(names if names is not None else range(len(samples)), name="sample")
    check_finite_output(outputs, list(index), model)
    if head == "survival":
        return pd.DataFrame({"risk": outputs}, index=index)
    probabilities = softmax(outputs)
    labels = [model.config.id2label[i] for i in range(probabilities.shape[1])]
    table = pd.DataFrame(probabilities, index=index, columns=[f"probability_{label}" for label in labels])
    table.insert(0, "predicted", [labels[i] for i in probabilities.argmax(1)])
    return table


def class_probabilities(predictions: pd.DataFrame) -> np.ndarray:
    """`(samples, classes)` probabilities of a `predict` table, in the model's label order."""
    return predictions.drop(columns="predicted").to_numpy()


def _is_encoded(data) -> bool:
    return isinstance(data, EncodedSamples) or hasattr(data, "column_names")


def _encoded_panel_input(model, tokenizer: GexBertTokenizer, data, source: str, scale_check: str) -> EncodedSamples:
    """A raw matrix, validated and encoded once, its scale checked; warns when the model's panel is partly absent."""
    frame = validated_frame(data, source=source)
    panel = model.config.panel_genes
    if panel is not None:
        measured = {tokenizer.vocabulary_name(gene) for gene in frame.columns}
        absent = [gene for gene in panel if gene not in measured]
        if len(absent) == len(panel):
            raise ExpressionInputError(f"{source}: none of the model's {len(panel)} panel genes is measured "
                                       f"(e.g. {preview(panel, 3)}); the input holds "
                                       f"{describe_ids(list(frame.columns))}")
        if absent:
            warnings.warn(f"{source}: {len(absent)} of the model's {len(panel)} panel genes are absent and count as "
                          f"missing: {preview(absent)}", stacklevel=3)
    known = tokenizer.select_known(frame, source=source)
    encoded = tokenizer.encode_known(known)
    check_frame_scale(tokenizer, known, source, scale_check, normalized=encoded["normalized"])
    return EncodedSamples(encoded)


def _head_outputs(model, tokenizer: GexBertTokenizer, samples, batch_size: int, output: str) -> np.ndarray:
    """The head's `output` for every sample, built from the panel, queries, query cap and seed in the model config."""
    config = model.config
    panel_ids, query_ids = panel_ids_and_queries(tokenizer, config.panel_genes, config.query_unseen,
                                                 config.max_queries, config.panel_seed)
    collator = DataCollatorForExpressionFinetuning(tokenizer, panel_ids=panel_ids, query_ids=query_ids, seed=1)
    return np.concatenate(forward_batches(model, len(samples), batch_size,
                                          lambda rows: collator(fetch_rows(samples, rows)),
                                          lambda outputs, batch: getattr(outputs, output).float().cpu().numpy()))


def describe_needed_genes(model, tokenizer: GexBertTokenizer, frame: pd.DataFrame,
                          source: str) -> str:
    """One line before predicting: which genes the model reads (its panel, else its vocabulary), and how many of
    them `frame` measures, so a mismatched input is seen before its predictions are trusted."""
    panel = model.config.panel_genes
    needed = list(panel) if panel else tokenizer.genes
    measured = frame.columns[frame.notna().any(axis=0).to_numpy()]
    present = len(set(needed) & {tokenizer.vocabulary_name(str(gene)) for gene in measured})
    what = f"a panel of {len(needed)} genes (config.json panel_genes)" if panel else f"any of its {len(needed)} genes"
    return f"the model reads {what}: {preview(needed)}; {present} of them measured in {source}"


# ----------------------------------------------------------------------------------------------------------------------
# attention
# ----------------------------------------------------------------------------------------------------------------------
def attention_received(model, tokenizer: GexBertTokenizer, frame: pd.DataFrame, batch_size: int = 8
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Mean attention over samples, layers and heads between the genes of `frame` (CLS and padding dropped).

    Returns (gene x gene matrix [query, key], attention each gene receives = column mean).
    """
    encoded = tokenizer.encode(frame)
    if (encoded["level_ids"] < LEVEL_OFFSET).any():
        raise ExpressionInputError("attention maps need complete profiles (gene by gene across samples): the input "
                                   "holds missing values; impute them first or drop those genes")

    def read(outputs, batch) -> np.ndarray:
        stacked = torch.stack(outputs.attentions)  # layers, batch, heads, query, key
        return stacked[..., 1:, 1:].float().mean(dim=(0, 2)).sum(0).cpu().numpy()

    parts = forward_batches(model, len(encoded["samples"]), batch_size,
                            lambda rows: build_model_inputs(encoded["gene_ids"], encoded["level_ids"][rows],
                                                            encoded["values"][rows]),
                            read, forward=model.base_model, output_attentions=True)
    total = np.zeros((len(encoded["genes"]), len(encoded["genes"])))
    for part in parts:
        total += part
    matrix = total / len(encoded["samples"])
    return matrix, matrix.mean(axis=0)


__all__ = [
    "OBSM_KEY", "RestoredDistribution", "attention_received", "embed", "forward_batches", "impute",
    "predict", "class_probabilities", "describe_needed_genes", "predict_distribution",
    "restore_from_panel", "softmax",
]
