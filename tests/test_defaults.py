"""Python and CLI defaults agree: `normalization` is `auto` everywhere and means one rule."""

import dataclasses
import inspect
import warnings

import numpy as np
import pandas as pd
import pytest

from gexbert_hf import GexBertTokenizer
from gexbert_hf.data.build import BuildDatasetArguments, build_dataset
from gexbert_hf.data.encoding import fit_tokenizer
from gexbert_hf.levels_gexbert import auto_normalization


def _default(function, name):
    return inspect.signature(function).parameters[name].default


def test_normalization_defaults_agree_between_python_and_the_cli():
    cli = {field.name: field.default for field in dataclasses.fields(BuildDatasetArguments)}["normalization"]
    assert cli == "auto"
    assert _default(GexBertTokenizer.fit, "normalization") == cli
    assert _default(fit_tokenizer, "normalization") == cli
    assert _default(build_dataset, "normalization") == cli


@pytest.fixture()
def counts():
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.poisson(rng.uniform(1, 300, size=8), size=(30, 8)).astype(float),
                        columns=[f"G{i}" for i in range(8)])


def test_fit_by_default_logs_counts_and_keeps_logged_or_scored_data(counts):
    assert GexBertTokenizer.fit(counts, num_levels=4).normalization == "log1p"
    logged = np.log2(counts + 1)
    assert GexBertTokenizer.fit(logged, num_levels=4).normalization == "none"
    scored = (logged - logged.mean()) / logged.std()  # negative values: log1p would refuse them
    assert GexBertTokenizer.fit(scored, num_levels=4).normalization == "none"
    for frame in (counts, logged, scored):
        assert GexBertTokenizer.fit(frame, num_levels=4).normalization == auto_normalization(frame)
    assert GexBertTokenizer.fit(counts, normalization="none", num_levels=4).normalization == "none"
    with pytest.raises(ValueError, match="auto"):
        GexBertTokenizer.fit(counts, normalization="log2")


def test_chunked_fit_decides_auto_once_for_every_chunk(counts):
    frame = counts.copy()
    frame.iloc[:, :4] = np.log1p(frame.iloc[:, :4])  # one chunk looks logged on its own, the other raw
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chunked = fit_tokenizer(frame, gene_chunk=4, num_levels=4)
    whole = GexBertTokenizer.fit(frame, num_levels=4)
    assert chunked.normalization == whole.normalization == "log1p"
    np.testing.assert_allclose(chunked.level_edges, whole.level_edges)
