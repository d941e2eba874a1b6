"""The one forward path: restoration from a panel agrees with imputation, attention is a distribution over genes,
batches do not change a result, and the model comes back in the mode it was in, even when a batch fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gexbert_hf import GexBertForMaskedExpression
from gexbert_hf.inference import attention_received, forward_batches, predict_distribution, restore_from_panel


@pytest.fixture()
def model(tiny_config):
    torch.manual_seed(0)
    return GexBertForMaskedExpression(tiny_config).eval()


def test_restoring_from_a_panel_gives_what_imputation_gives(model, embedded_tokenizer, embedded_cohort):
    panel = embedded_cohort.expression.iloc[:9, :20]
    queries = list(embedded_cohort.expression.columns[40:44])
    restored, pooled = restore_from_panel(model, embedded_tokenizer, panel, queries, batch_size=4)
    assert restored.shape == (9, 4) and pooled.shape == (9, model.config.hidden_size)
    imputed = predict_distribution(model, embedded_tokenizer, panel, genes=queries)
    np.testing.assert_allclose(restored, imputed.mean[:, -4:], atol=1e-6)
    _, alone = restore_from_panel(model, embedded_tokenizer, panel, [], batch_size=64)
    assert not np.allclose(alone, pooled)  # the queries are read as MASK tokens by the encoder too
    np.testing.assert_allclose(restore_from_panel(model, embedded_tokenizer, panel, queries, batch_size=64)[1],
                               pooled, atol=1e-6)


def test_attention_received_is_a_distribution_over_genes(model, embedded_tokenizer, embedded_cohort):
    frame = embedded_cohort.expression.iloc[:10, :12]
    matrix, received = attention_received(model, embedded_tokenizer, frame, batch_size=3)
    assert matrix.shape == (12, 12) and received.shape == (12,)
    assert (matrix >= 0).all() and (matrix.sum(axis=1) < 1).all()  # the attention paid to CLS is left out
    np.testing.assert_allclose(received, matrix.mean(axis=0))
    np.testing.assert_allclose(attention_received(model, embedded_tokenizer, frame, batch_size=10)[0], matrix,
                               atol=1e-6)


def test_the_model_comes_back_in_training_mode_even_when_a_batch_fails(model, embedded_tokenizer, embedded_cohort):
    inputs = embedded_tokenizer(embedded_cohort.expression.iloc[:4, :8])
    seen = []

    def read(outputs, batch):
        seen.append(model.training)
        raise RuntimeError("a bad batch")

    model.train()
    with pytest.raises(RuntimeError, match="a bad batch"):
        forward_batches(model, 4, 2, lambda rows: inputs, read)
    assert seen == [False] and model.training


def test_each_use_refuses_a_model_without_its_head_by_name(tiny_config, embedded_tokenizer, embedded_cohort):
    """One place tells heads apart (`loading.head_of`): imputation needs the masked-expression head, prediction a
    fine-tuned one; the error names the model class and the next step."""
    import pytest

    from gexbert_hf import GexBertForMaskedExpression, GexBertForSequenceClassification, GexBertModel
    from gexbert_hf.errors import ModelHeadError
    from gexbert_hf.inference import impute, predict
    from gexbert_hf.loading import head_of

    frame = embedded_cohort.expression.iloc[:4]
    tiny_config.num_labels = 2
    classifier, encoder = GexBertForSequenceClassification(tiny_config), GexBertModel(tiny_config)
    with pytest.raises(ModelHeadError, match="imputation needs a restoration head, this is a "
                                             "GexBertForSequenceClassification"):
        impute(classifier, embedded_tokenizer, frame)
    with pytest.raises(ModelHeadError, match="prediction needs a classification or survival head.*gexbert finetune"):
        predict(GexBertForMaskedExpression(tiny_config), embedded_tokenizer, frame)
    assert [head_of(model) for model in (classifier, encoder)] == ["classification", "encoder"]
