"""The asymmetric masked-autoencoder layout (`encoder_skips_queries`): the encoder reads measured tokens only, the
MASK queries join in the decoder; the default layout is untouched."""

import pytest
import torch

from gexbert_hf import GexBertConfig, GexBertForMaskedExpression
from gexbert_hf.configuration_gexbert import MASK_LEVEL_ID, MISSING_LEVEL_ID
from gexbert_hf.modeling_gexbert import expand_attention_mask


@pytest.fixture()
def inputs(embedded_tokenizer, embedded_cohort):
    """Six samples of 20 measured genes and one query gene (the last token)."""
    return embedded_tokenizer(embedded_cohort.expression.iloc[:6, :20], queries=[embedded_cohort.expression.columns[30]])


def _models(config):
    """The same weights in both layouts."""
    torch.manual_seed(0)
    default = GexBertForMaskedExpression(config).eval()
    asymmetric = GexBertForMaskedExpression(GexBertConfig(**{**config.to_dict(), "encoder_skips_queries": True}))
    asymmetric.load_state_dict(default.state_dict())
    return default, asymmetric.eval()


def _masked_batch(embedded_tokenizer, embedded_cohort):
    """Rows of different lengths (padding), MASK tokens at different places and counts per row, some MISSING."""
    encoded = embedded_tokenizer(embedded_cohort.expression.iloc[:4, :24])
    encoded["attention_mask"][1, 18:] = 0
    encoded["attention_mask"][3, 10:] = 0
    rows = torch.rand(encoded["level_ids"].shape, generator=torch.Generator().manual_seed(1))
    masked = (rows < torch.tensor([0.2, 0.5, 0.9, 0.7])[:, None]) & encoded["attention_mask"].bool()
    masked[:, 0] = False  # CLS
    encoded["level_ids"][masked] = MASK_LEVEL_ID
    encoded["level_ids"][0, 3] = MISSING_LEVEL_ID
    encoded["level_ids"][encoded["attention_mask"] == 0] = 0
    return encoded, masked


def _encoder_inputs(model):
    seen = []
    model.gexbert.register_forward_hook(lambda module, args, output: seen.append(args))
    return seen


def test_same_shapes_finite_loss_and_gradients(tiny_config, embedded_tokenizer, embedded_cohort):
    default, asymmetric = _models(tiny_config)
    batch, masked = _masked_batch(embedded_tokenizer, embedded_cohort)
    labels = torch.where(masked, 3, -100)
    value_labels = torch.where(masked, 0.5, float("nan"))
    reference = default(**batch, labels=labels, value_labels=value_labels)
    outputs = asymmetric(**batch, labels=labels, value_labels=value_labels)
    for key in ("level_logits", "value_predictions", "pooler_output"):
        assert outputs[key].shape == reference[key].shape
    assert torch.isfinite(outputs.loss)
    outputs.loss.backward()
    for part in (asymmetric.gexbert.encoder, asymmetric.decoder, asymmetric.gexbert.embeddings.level_embeddings):
        assert sum(p.grad.abs().sum() for p in part.parameters() if p.grad is not None) > 0


def test_encoder_never_sees_mask_tokens(tiny_config, inputs):
    _, model = _models(tiny_config)
    assert (inputs["level_ids"][:, -1] == MASK_LEVEL_ID).all() and (inputs["level_ids"][:, 1:-1] != MASK_LEVEL_ID).all()
    seen = _encoder_inputs(model)
    without = {key: value[:, :-1] for key, value in inputs.items()}
    other_gene = {**inputs, "input_ids": inputs["input_ids"].clone()}
    other_gene["input_ids"][:, -1] = inputs["input_ids"][:, 5]
    with torch.no_grad():
        full, alone, moved = model(**inputs), model(**without), model(**other_gene)
    assert [args[0].shape[1] for args in seen] == [21, 21, 21]  # CLS + 20 measured genes, never the query
    torch.testing.assert_close(full.pooler_output, alone.pooler_output, rtol=0, atol=0)
    torch.testing.assert_close(moved.pooler_output, full.pooler_output, rtol=0, atol=0)
    assert not torch.allclose(moved.level_logits[:, -1], full.level_logits[:, -1])  # the query itself did change


def test_outputs_are_the_per_row_mae_computation(tiny_config, embedded_tokenizer, embedded_cohort):
    """Variable counts, padding and MISSING: each row equals encoder(measured) -> decoder(encoded + query inputs)."""
    _, model = _models(tiny_config)
    batch, masked = _masked_batch(embedded_tokenizer, embedded_cohort)
    seen = _encoder_inputs(model)
    with torch.no_grad():
        outputs = model(**batch)
        for row in range(4):
            real = batch["attention_mask"][row].bool()
            measured, query = real & ~masked[row], masked[row]
            pick = {key: batch[key][row : row + 1] for key in ("input_ids", "level_ids", "values")}
            encoded = model.gexbert(**{key: value[:, measured] for key, value in pick.items()})
            queries = model.gexbert.embeddings(*(pick[key][:, query] for key in ("input_ids", "level_ids", "values")))
            decoded = model.decoder(torch.cat([encoded.last_hidden_state, queries], 1)).last_hidden_state
            expected = model.level_head(decoded)
            got = torch.cat([outputs.level_logits[row : row + 1, measured], outputs.level_logits[row : row + 1, query]], 1)
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(outputs.pooler_output[row], encoded.pooler_output[0], atol=1e-5, rtol=1e-5)
    assert seen[0][0].shape[1] == int((batch["attention_mask"].bool() & ~masked).sum(1).max())


def test_save_and_load_keep_the_layout_and_outputs(tiny_config, inputs, tmp_path):
    _, model = _models(tiny_config)
    model.save_pretrained(tmp_path)
    loaded = GexBertForMaskedExpression.from_pretrained(tmp_path).eval()
    assert loaded.config.encoder_skips_queries is True
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).level_logits, model(**inputs).level_logits, rtol=0, atol=0)


def test_default_layout_is_unchanged(tiny_config, inputs):
    """A config without the field (every earlier checkpoint) is the default layout: decoder(encoder(all tokens))."""
    values = tiny_config.to_dict()
    values.pop("encoder_skips_queries")
    config = GexBertConfig(**values)
    assert config.encoder_skips_queries is False
    torch.manual_seed(0)
    model = GexBertForMaskedExpression(config).eval()
    with torch.no_grad():
        outputs = model(**inputs)
        encoded = model.gexbert(**inputs)
        decoded = model.decoder(encoded.last_hidden_state, expand_attention_mask(inputs["attention_mask"]))
        torch.testing.assert_close(outputs.level_logits, model.level_head(decoded.last_hidden_state), rtol=0, atol=0)
        torch.testing.assert_close(outputs.pooler_output, encoded.pooler_output, rtol=0, atol=0)
