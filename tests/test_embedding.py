"""embed(model, tokenizer, data): one vector per sample, indexed like the input, batch-size independent, AnnData in and out."""

import numpy as np
import pandas as pd
import pytest
import torch

from gexbert_hf import (
    ExpressionInputError,
    GexBertError,
    GexBertForMaskedExpression,
    GexBertForSequenceClassification,
    GexBertModel,
    embed,
)


@pytest.fixture()
def masked_model(tiny_config):
    torch.manual_seed(0)
    return GexBertForMaskedExpression(tiny_config).eval()


@pytest.fixture()
def frame(embedded_cohort):
    """Ten profiles under a caller's own index (integers, out of order, named), some genes not measured."""
    frame = embedded_cohort.expression.iloc[:10].copy()
    frame.index = pd.Index([907, 3, 55, 12, 8, 1000, 41, 2, 77, 64], dtype="int64", name="patient")
    frame.iloc[2, :40] = np.nan
    frame.iloc[7, 10:] = np.nan
    return frame


def test_embed_returns_the_pooled_encoder_output_indexed_like_the_input(masked_model, embedded_tokenizer, frame):
    embeddings = embed(masked_model, embedded_tokenizer, frame)
    assert embeddings.shape == (10, masked_model.config.hidden_size)
    pd.testing.assert_index_equal(embeddings.index, frame.index)  # values, dtype and name kept
    assert list(embeddings.columns) == [f"gexbert_{i}" for i in range(masked_model.config.hidden_size)]
    encoder = GexBertModel(masked_model.config).eval()
    encoder.load_state_dict(masked_model.gexbert.state_dict())
    full = frame.iloc[[0, 1, 3]]  # every gene measured: the tokenizer's own encoding is the same token set
    with torch.no_grad():
        expected = encoder(**embedded_tokenizer(full)).pooler_output.numpy()
    np.testing.assert_allclose(embeddings.loc[full.index].to_numpy(), expected, atol=1e-5)


def test_embedding_does_not_depend_on_the_batch_or_on_unmeasured_genes(masked_model, embedded_tokenizer, frame):
    together = embed(masked_model, embedded_tokenizer, frame, batch_size=64)
    in_threes = embed(masked_model, embedded_tokenizer, frame, batch_size=3)
    np.testing.assert_allclose(together.to_numpy(), in_threes.to_numpy(), atol=1e-5)
    sparse_row = frame.iloc[[7]].dropna(axis=1)  # its measured genes alone, no padding beside longer rows
    alone = embed(masked_model, embedded_tokenizer, sparse_row)
    np.testing.assert_allclose(alone.to_numpy(), together.iloc[[7]].to_numpy(), atol=1e-5)


def test_cls_and_mean_pooling(masked_model, embedded_tokenizer, frame):
    assert masked_model.config.pooling == "mean"
    mean = embed(masked_model, embedded_tokenizer, frame, pooling="mean")
    cls = embed(masked_model, embedded_tokenizer, frame, pooling="cls")
    np.testing.assert_allclose(mean.to_numpy(), embed(masked_model, embedded_tokenizer, frame).to_numpy())
    full = frame.iloc[[0]]
    with torch.no_grad():
        hidden = masked_model.gexbert(**embedded_tokenizer(full)).last_hidden_state
    np.testing.assert_allclose(cls.iloc[[0]].to_numpy(), hidden[:, 0].numpy(), atol=1e-5)
    assert not np.allclose(cls.to_numpy(), mean.to_numpy())
    with pytest.raises(GexBertError, match="pooling must be one of"):
        embed(masked_model, embedded_tokenizer, frame, pooling="max")


def test_embed_on_any_head_is_repeatable_and_gives_the_model_back_as_found(masked_model, embedded_tokenizer, frame, tiny_config):
    np.testing.assert_array_equal(embed(masked_model, embedded_tokenizer, frame, batch_size=4).to_numpy(),
                                  embed(masked_model, embedded_tokenizer, frame, batch_size=4).to_numpy())
    classifier = GexBertForSequenceClassification(tiny_config).eval()
    classifier.gexbert.load_state_dict(masked_model.gexbert.state_dict())
    np.testing.assert_allclose(embed(classifier, embedded_tokenizer, frame).to_numpy(),
                               embed(masked_model, embedded_tokenizer, frame).to_numpy(), atol=1e-5)
    masked_model.train()  # embedding runs in eval mode and gives the model back as it found it
    embed(masked_model, embedded_tokenizer, frame)
    assert masked_model.training


def test_anndata_comes_back_as_a_copy_with_obsm(masked_model, embedded_tokenizer, frame):
    anndata = pytest.importorskip("anndata")
    adata = anndata.AnnData(X=frame.to_numpy(), obs=pd.DataFrame(index=frame.index.astype(str)),
                            var=pd.DataFrame(index=frame.columns))
    result = embed(masked_model, embedded_tokenizer, adata)
    assert result is not adata and "X_gexbert" not in adata.obsm
    expected = embed(masked_model, embedded_tokenizer, frame).to_numpy()
    np.testing.assert_allclose(result.obsm["X_gexbert"], expected, atol=1e-6)
    assert list(result.obs_names) == list(adata.obs_names)


def test_bad_input_is_named(masked_model, embedded_tokenizer, frame):
    with pytest.raises(ExpressionInputError, match="DataFrame or an AnnData"):
        embed(masked_model, embedded_tokenizer, frame.to_numpy())
    empty = frame.copy()
    empty.iloc[1] = np.nan
    with pytest.raises(ExpressionInputError, match="no measured gene in sample.*3"):
        embed(masked_model, embedded_tokenizer, empty)
