"""Shared fixtures: the shared TCGA data folder, the embedded cohort, a small synthetic cohort."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """`../shared/data` beside the repository: skipped when absent, except under CI=true where absence fails."""
    if not SHARED_DATA_DIR.is_dir():
        reason = f"real TCGA data folder {SHARED_DATA_DIR} is absent (see its README for the expected layout)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def embedded_cohort():
    """GSE7390 as shipped with scikit-survival: runs on any machine."""
    from gexbert_hf.data.cohorts import load_embedded_cohort

    return load_embedded_cohort()


@pytest.fixture(scope="session")
def synthetic_cohort():
    """A small synthetic cohort (120 samples x 60 genes, 3 tumour types)."""
    from gexbert_hf.data.cohorts import make_synthetic_cohort

    return make_synthetic_cohort(n_samples=120, n_genes=60, n_types=3, n_modules=6, seed=0)


@pytest.fixture(scope="session", autouse=True)
def single_torch_thread():
    """Tiny models run fastest, and deterministically, on one thread; several threads on a shared 2-core machine
    spin-wait against each other."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def embedded_tokenizer(embedded_cohort):
    from gexbert_hf import GexBertTokenizer

    return GexBertTokenizer.fit(embedded_cohort.expression, normalization="none", num_levels=16)


@pytest.fixture()
def tiny_config(embedded_tokenizer):
    """A tiny GexBERT matching the embedded tokenizer, dropout off so outputs are deterministic."""
    from gexbert_hf import GexBertConfig

    return GexBertConfig.from_tokenizer(
        embedded_tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0,
    )


@pytest.fixture(scope="session")
def model_dir(embedded_tokenizer, tmp_path_factory):
    """A saved, untrained masked-expression GexBERT with the embedded tokenizer: a model folder for the commands."""
    import torch

    from gexbert_hf import GexBertConfig, GexBertForMaskedExpression

    directory = tmp_path_factory.mktemp("model") / "pretrained"
    torch.manual_seed(0)
    config = GexBertConfig.from_tokenizer(embedded_tokenizer, hidden_size=32, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=64)
    GexBertForMaskedExpression(config).save_pretrained(directory)
    embedded_tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def model_dirs(embedded_tokenizer, tmp_path_factory):
    """Untrained tiny models of each head, saved with their tokenizer: the files the commands' tests exercise."""
    import torch

    from gexbert_hf import (
        GexBertConfig,
        GexBertForMaskedExpression,
        GexBertForSequenceClassification,
        GexBertForSurvival,
    )

    root = tmp_path_factory.mktemp("models")
    config = GexBertConfig.from_tokenizer(embedded_tokenizer, hidden_size=32, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=64)
    panel = embedded_tokenizer.genes[:8]
    dirs = {}
    for name, cls, extra in (
        ("pretrained", GexBertForMaskedExpression, {}),
        ("classifier", GexBertForSequenceClassification,
         {"id2label": {0: "negative", 1: "positive"}, "label2id": {"negative": 0, "positive": 1},
          "panel_genes": panel, "query_unseen": True}),
        ("survival", GexBertForSurvival, {}),
    ):
        torch.manual_seed(0)
        head_config = GexBertConfig.from_dict({**config.to_dict(), **extra})
        directory = root / name
        cls(head_config).save_pretrained(directory)
        embedded_tokenizer.save_pretrained(directory)
        dirs[name] = directory
    return dirs


@pytest.fixture()
def expression_csv(embedded_cohort, tmp_path):
    """`make(samples, genes, holes)`: the first samples x genes of the embedded cohort with NaN at the `holes`
    (row, [columns]) written as `input.csv` (samples x genes, first column `sample`); returns (frame, path)."""

    def make(samples: int, genes: int, holes: tuple[int, list[int]]):
        frame = embedded_cohort.expression.iloc[:samples, :genes].copy()
        frame.iloc[holes[0], holes[1]] = np.nan
        frame.rename_axis("sample").to_csv(tmp_path / "input.csv")
        return frame, tmp_path / "input.csv"

    return make
