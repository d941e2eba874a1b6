"""Row access shared by the training loop and the benchmarks: tokenized samples from memory or from `datasets`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..tokenization_gexbert import GexBertTokenizer


class EncodedSamples:
    """Tokenized samples held as arrays (`tokenizer.encode` of a DataFrame), indexable like a dataset.

    `sample_fields` are per-sample values (class `labels`, `survival_time`, `event`) stored beside the tokens; rows
    carry them with the token fields under the names a `gexbert build-dataset` dataset uses (`input_ids`, ...).
    """

    def __init__(self, encoded: dict, sample_fields: dict[str, Sequence] | None = None):
        self.gene_ids = np.asarray(encoded["gene_ids"])
        self.level_ids = np.asarray(encoded["level_ids"])
        self.values = np.asarray(encoded["values"])
        self.samples = list(encoded["samples"])
        self.sample_fields = {key: np.asarray(value) for key, value in (sample_fields or {}).items()}
        for key, value in self.sample_fields.items():
            if len(value) != len(self.samples):
                raise ValueError(f"sample field {key!r} has {len(value)} values for {len(self.samples)} samples")

    @classmethod
    def from_frame(
        cls, tokenizer: GexBertTokenizer, frame: pd.DataFrame, sample_fields: dict[str, Sequence] | None = None
    ) -> EncodedSamples:
        return cls(tokenizer.encode(frame), sample_fields)

    def __len__(self) -> int:
        return len(self.samples)

    def rows(self, indices: Sequence[int]) -> list[dict]:
        rows = []
        for index in indices:
            row = {"input_ids": self.gene_ids, "level_ids": self.level_ids[index], "values": self.values[index]}
            row.update({key: value[index] for key, value in self.sample_fields.items()})
            rows.append(row)
        return rows


def fetch_rows(samples, indices: Sequence[int]) -> list[dict]:
    """Rows of an `EncodedSamples` or a `datasets.Dataset` as a list of per-sample dicts."""
    if hasattr(samples, "rows"):
        return samples.rows(indices)
    batch = samples[list(indices)]  # datasets: one columnar read instead of one per row
    return [{key: batch[key][i] for key in batch} for i in range(len(indices))]
