"""The study's one conversion of raw expression to the tokenizer's working scale, as a labelled frame."""

from __future__ import annotations

import pandas as pd

from ..tokenization_gexbert import GexBertTokenizer


def working_frame(tokenizer: GexBertTokenizer, raw: pd.DataFrame) -> pd.DataFrame:
    """`raw` normalised as the tokenizer does before binning (log1p or none), same index and columns: the scale
    every baseline and every comparison of the study is made on."""
    return pd.DataFrame(tokenizer.normalize(raw.to_numpy(), list(raw.columns)), index=raw.index, columns=raw.columns)
