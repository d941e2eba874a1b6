"""The two public collators: `DataCollatorForMaskedExpression` (pretraining: per-step gene subsampling, masking of
restoration targets, padding) and `DataCollatorForExpressionFinetuning` (no masking; class labels and survival
targets passed through). Both read the columns `gexbert build-dataset` writes, which are named as the models' inputs
(`input_ids`, `level_ids`, `values`, `labels`, `survival_time`, `event`), so they work with the stock `Trainer`.

Subsampling happens here, at batch time, so every epoch sees different gene subsets and attention stays affordable
(its cost grows with the square of the genes per sample). The random stream is derived from (seed, rank, call
count), so a run is reproducible and a resumed run continues the same stream (`state_dict` / `load_state_dict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from transformers import BatchEncoding

from ..configuration_gexbert import LEVEL_OFFSET, MASK_LEVEL_ID
from ..inputs_gexbert import append_queries, pad_tokens, select_tokens
from ..tokenization_gexbert import GexBertTokenizer


@dataclass
class DataCollatorForMaskedExpression:
    """Turn tokenized samples (`input_ids`, `level_ids`, `values` per sample) into a padded model batch.

    Args:
        tokenizer: the fitted tokenizer (padding and CLS conventions).
        max_genes: at most this many measured genes per sample and step (None = all).
        mask_fraction: share of the sampled genes hidden as restoration targets (at least one when > 0); their
            level becomes MASK and `labels` / `value_labels` hold the truth. Missing genes are never targets.
            0 gives plain subsampled inputs, for fine-tuning.
        max_mask_fraction: when given, each sample's share is drawn uniformly from [mask_fraction,
            max_mask_fraction], so training meets the range of missingness that imputation later faces (a model
            trained at one fixed rate sees ten times more context than it gets at 90% missing).
        panel_ids: when given, only these gene ids may be seen (a limited gene panel).
        query_ids: gene ids appended to every sample as MASK tokens without targets: genes the panel does not
            measure, which the model may still attend to as queries.
        sample_keys: per-sample fields copied into the batch, as `{dataset_key: batch_key}` or a list of keys.
        seed, rank: the random stream; give each data-parallel process its own rank.
    """

    tokenizer: GexBertTokenizer
    max_genes: int | None = None
    mask_fraction: float = 0.15
    max_mask_fraction: float | None = None
    panel_ids: Sequence[int] | None = None
    query_ids: Sequence[int] | None = None
    sample_keys: dict[str, str] | Sequence[str] = field(default_factory=dict)
    seed: int = 0
    rank: int = 0
    calls: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.mask_fraction < 1.0:
            raise ValueError(f"mask_fraction must be in [0, 1), got {self.mask_fraction}")
        if self.max_mask_fraction is not None and not self.mask_fraction <= self.max_mask_fraction < 1.0:
            raise ValueError(f"max_mask_fraction must be in [mask_fraction, 1) = [{self.mask_fraction}, 1), got "
                             f"{self.max_mask_fraction}")
        if self.max_genes is not None and self.max_genes < 1:
            raise ValueError(f"max_genes must be positive, got {self.max_genes}")
        if not isinstance(self.sample_keys, dict):
            self.sample_keys = {key: key for key in self.sample_keys}
        self._panel = None if self.panel_ids is None else np.asarray(self.panel_ids, dtype=np.int64)
        self._queries = None if self.query_ids is None else np.asarray(self.query_ids, dtype=np.int64)

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "rank": self.rank, "calls": self.calls}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.rank, self.calls = int(state["seed"]), int(state["rank"]), int(state["calls"])

    def __call__(self, samples: Sequence[dict]) -> BatchEncoding:
        rng = np.random.default_rng([self.seed, self.rank, self.calls])
        self.calls += 1
        features = [self._sample(sample, rng) for sample in samples]
        return pad_tokens(features, return_tensors="pt")

    def _sample(self, sample: dict, rng: np.random.Generator) -> dict:
        """One sample's tokens: measured genes (of the panel), a seeded subset of them, targets masked, then the
        query genes; built by the same functions as every other model input (`inputs_gexbert`)."""
        feature = select_tokens(_token_ids(sample), sample["level_ids"], sample["values"], panel_ids=self._panel)
        if self.max_genes is not None and len(feature["input_ids"]) > self.max_genes:
            chosen = rng.choice(len(feature["input_ids"]), size=self.max_genes, replace=False)
            feature = {key: value[chosen] for key, value in feature.items()}
        if self.mask_fraction > 0 or self.max_mask_fraction:
            feature = self._mask_targets(feature, rng)
        feature = append_queries(feature, self._queries)
        for dataset_key, batch_key in self.sample_keys.items():
            feature[batch_key] = sample[dataset_key]
        return feature

    def _mask_targets(self, feature: dict, rng: np.random.Generator) -> dict:
        """Hide a share of the tokens as restoration targets: at least one, and one always left visible."""
        count = len(feature["input_ids"])
        level_ids, values = feature["level_ids"].copy(), feature["values"].copy()
        n_targets = min(max(1, round(self._rate(rng) * count)), count - 1) if count > 1 else 0
        targets = rng.choice(count, size=n_targets, replace=False)
        labels = np.full(count, -100, dtype=np.int64)
        value_labels = np.full(count, np.nan, dtype=np.float32)
        labels[targets] = level_ids[targets] - LEVEL_OFFSET
        value_labels[targets] = values[targets]
        level_ids[targets] = MASK_LEVEL_ID
        values[targets] = 0.0
        return {**feature, "level_ids": level_ids, "values": values, "labels": labels, "value_labels": value_labels}

    def _rate(self, rng: np.random.Generator) -> float:
        """This sample's mask rate: fixed, or drawn from the range (the draw only happens for a range, so a fixed
        rate keeps the random stream of earlier versions)."""
        if self.max_mask_fraction is None:
            return self.mask_fraction
        return float(rng.uniform(self.mask_fraction, self.max_mask_fraction))


# Per-sample targets the heads' `forward` takes, and the names transformers' own collators rename to `labels`.
FINETUNING_TARGETS = ("labels", "survival_time", "event")
LABEL_ALIASES = ("label", "label_ids")


@dataclass
class DataCollatorForExpressionFinetuning(DataCollatorForMaskedExpression):
    """Fine-tuning batches for the classification and survival heads: padded tokens, nothing masked, and the
    sample's targets passed through under the heads' argument names.

    `labels` (class index, or `label` / `label_ids` as transformers' collators accept), `survival_time` and `event`
    are copied into the batch when a sample has them; other per-sample fields (e.g. the `sample` id) are left out.
    With the stock `Trainer` on a `gexbert build-dataset` split, no further argument is needed:
    `Trainer(model, args, train_dataset=ds["train"], data_collator=DataCollatorForExpressionFinetuning(tokenizer))`.

    Args:
        tokenizer: the fitted tokenizer. max_genes: at most this many measured genes per sample (None = all; a
            random subset per call otherwise, seeded as in `DataCollatorForMaskedExpression`).
        panel_ids / query_ids: a limited gene panel, and genes entered as MASK queries (see the pretraining collator).
    """

    mask_fraction: float = field(default=0.0, init=False)
    max_mask_fraction: float | None = field(default=None, init=False)

    def _sample(self, sample: dict, rng: np.random.Generator) -> dict:
        feature = super()._sample(sample, rng)
        feature.update(finetuning_targets(sample))
        return feature


def finetuning_targets(sample: dict) -> dict:
    """The sample's targets under the heads' argument names (`label` / `label_ids` become `labels`)."""
    targets = {key: sample[key] for key in FINETUNING_TARGETS if key in sample}
    for alias in LABEL_ALIASES:
        if alias in sample and "labels" not in targets:
            targets["labels"] = sample[alias]
    return targets


def panel_ids_and_queries(
    tokenizer: GexBertTokenizer, panel_genes: list[str] | None, query_unseen: bool = False,
    max_queries: int | None = None, seed: int = 0,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Vocabulary ids of the panel, and of the query genes (vocabulary genes outside it, at most `max_queries`)."""
    return tokenizer.panel_and_query_ids(panel_genes, query_unseen, max_queries, seed)


def _token_ids(sample: dict):
    """Gene ids of a stored sample; `gene_ids` is the column name of datasets built before it became `input_ids`."""
    return sample["input_ids"] if "input_ids" in sample else sample["gene_ids"]


__all__ = ["DataCollatorForExpressionFinetuning", "DataCollatorForMaskedExpression", "finetuning_targets",
           "panel_ids_and_queries"]
