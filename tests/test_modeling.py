"""GexBERT models: shapes, invariances (gene order, padding, batch), attention implementations, losses, heads."""

import numpy as np
import pytest
import torch

from gexbert_hf import (
    GexBertConfig,
    GexBertForMaskedExpression,
    GexBertForSequenceClassification,
    GexBertForSurvival,
    GexBertModel,
)
from gexbert_hf.configuration_gexbert import MASK_LEVEL_ID


@pytest.fixture()
def inputs(embedded_tokenizer, embedded_cohort):
    return embedded_tokenizer(embedded_cohort.expression.iloc[:6, :20], queries=[embedded_cohort.expression.columns[30]])


def _model(model_class, config, **overrides):
    torch.manual_seed(0)
    for key, value in overrides.items():
        setattr(config, key, value)
    return model_class(config).eval()


@pytest.mark.parametrize("value_embedding", ["level", "continuous", "both"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_base_model_shapes(tiny_config, inputs, value_embedding, pooling):
    model = _model(GexBertModel, tiny_config, value_embedding=value_embedding, pooling=pooling)
    outputs = model(**inputs, output_hidden_states=True)
    assert outputs.last_hidden_state.shape == (6, 22, 32)
    assert outputs.pooler_output.shape == (6, 32)
    assert len(outputs.hidden_states) == tiny_config.num_hidden_layers + 1


def test_no_positional_embedding_output_ignores_gene_order(tiny_config, inputs):
    model = _model(GexBertForMaskedExpression, tiny_config, value_embedding="both")
    permutation = torch.cat([torch.tensor([0]), 1 + torch.randperm(21, generator=torch.Generator().manual_seed(3))])
    shuffled = {key: value[:, permutation] for key, value in inputs.items()}
    with torch.no_grad():
        reference, permuted = model(**inputs), model(**shuffled)
    torch.testing.assert_close(permuted.level_logits, reference.level_logits[:, permutation], atol=1e-5, rtol=1e-5)
    encoder = _model(GexBertModel, tiny_config, value_embedding="both", pooling="mean")
    with torch.no_grad():
        torch.testing.assert_close(encoder(**shuffled).pooler_output, encoder(**inputs).pooler_output,
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_padding_and_batch_mates_do_not_change_a_sample(tiny_config, embedded_tokenizer, embedded_cohort,
                                                         attn_implementation):
    tiny_config._attn_implementation = attn_implementation
    model = _model(GexBertForMaskedExpression, tiny_config, value_embedding="continuous")
    encoded = embedded_tokenizer.encode(embedded_cohort.expression.iloc[:3])
    features = [
        {"input_ids": encoded["gene_ids"][:10], "level_ids": encoded["level_ids"][0, :10],
         "values": encoded["values"][0, :10]},
        {"input_ids": encoded["gene_ids"], "level_ids": encoded["level_ids"][1], "values": encoded["values"][1]},
        {"input_ids": encoded["gene_ids"][:40], "level_ids": encoded["level_ids"][2, :40],
         "values": encoded["values"][2, :40]},
    ]
    with torch.no_grad():
        alone = model(**embedded_tokenizer.pad(features[:1]))
        together = model(**embedded_tokenizer.pad(features))
    assert together.level_logits.shape[1] == 77  # padded to the longest sample
    torch.testing.assert_close(together.level_logits[0, :11], alone.level_logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together.value_predictions[0, :11], alone.value_predictions[0], atol=1e-5, rtol=1e-5)


def test_eager_and_sdpa_agree(tiny_config, inputs):
    inputs = dict(inputs)
    inputs["attention_mask"] = inputs["attention_mask"].clone()
    inputs["attention_mask"][0, -5:] = 0  # exercise the padding mask too
    results = {}
    for implementation in ("eager", "sdpa"):
        config = GexBertConfig(**tiny_config.to_dict())
        config._attn_implementation = implementation
        model = _model(GexBertForSequenceClassification, config)
        with torch.no_grad():
            results[implementation] = model(**inputs).logits
    torch.testing.assert_close(results["eager"], results["sdpa"], atol=1e-5, rtol=1e-5)


def test_attentions_are_returned_on_request(tiny_config, inputs):
    model = _model(GexBertModel, tiny_config)
    outputs = model(**inputs, output_attentions=True)
    assert len(outputs.attentions) == tiny_config.num_hidden_layers
    attention = outputs.attentions[0]
    assert attention.shape == (6, tiny_config.num_attention_heads, 22, 22)
    torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:-1]))
    assert model(**inputs).attentions is None


def test_masked_expression_loss_only_on_targets(tiny_config, inputs):
    model = _model(GexBertForMaskedExpression, tiny_config)
    labels = torch.full(inputs["input_ids"].shape, -100)
    value_labels = torch.full(inputs["input_ids"].shape, float("nan"))
    labels[:, 5], value_labels[:, 5] = 3, 0.5
    outputs = model(**inputs, labels=labels, value_labels=value_labels)
    outputs.level_logits.retain_grad()
    outputs.value_predictions.retain_grad()
    outputs.loss.backward()
    level_grad = outputs.level_logits.grad.abs().sum(-1)
    assert (level_grad[:, 5] > 0).all() and level_grad[:, [i for i in range(22) if i != 5]].abs().sum() == 0
    value_grad = outputs.value_predictions.grad
    assert (value_grad[:, 5] != 0).all() and value_grad[:, :5].abs().sum() == 0
    expected = torch.nn.functional.cross_entropy(outputs.level_logits[:, 5].detach(), labels[:, 5]) + \
        torch.nn.functional.mse_loss(outputs.value_predictions[:, 5].detach(), value_labels[:, 5])
    torch.testing.assert_close(outputs.loss.detach(), expected)


def test_masked_expression_without_targets_gives_zero_loss_with_gradient(tiny_config, inputs):
    model = _model(GexBertForMaskedExpression, tiny_config)
    outputs = model(**inputs, labels=torch.full(inputs["input_ids"].shape, -100))
    assert outputs.loss.item() == 0.0 and outputs.loss.requires_grad


def test_query_tokens_are_predicted_from_context(tiny_config, inputs):
    model = _model(GexBertForMaskedExpression, tiny_config)
    assert (inputs["level_ids"][:, -1] == MASK_LEVEL_ID).all()
    probabilities = model(**inputs).level_logits.softmax(-1)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(6, 22))


def test_classification_head_loss_and_labels(tiny_config, inputs):
    tiny_config.num_labels = 3
    tiny_config.id2label = {0: "a", 1: "b", 2: "c"}
    tiny_config.label2id = {"a": 0, "b": 1, "c": 2}
    model = _model(GexBertForSequenceClassification, tiny_config)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    outputs = model(**inputs, labels=labels)
    assert outputs.logits.shape == (6, 3)
    torch.testing.assert_close(outputs.loss, torch.nn.functional.cross_entropy(outputs.logits, labels))


def test_survival_head_returns_risk_and_cox_loss(tiny_config, inputs):
    model = _model(GexBertForSurvival, tiny_config)
    outputs = model(**inputs, survival_time=torch.tensor([5.0, 3, 9, 1, 4, 4]), event=torch.tensor([1, 0, 1, 1, 0, 1]))
    assert outputs.risk.shape == (6,) and torch.isfinite(outputs.loss)
    outputs.loss.backward()
    assert model.risk_head.weight.grad.abs().sum() > 0


def test_training_step_reduces_loss(tiny_config, inputs):
    model = _model(GexBertForMaskedExpression, tiny_config).train()
    labels = torch.randint(0, tiny_config.num_levels, inputs["input_ids"].shape)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.9


def test_config_rejects_bad_choices():
    with pytest.raises(ValueError, match="value_embedding"):
        GexBertConfig(value_embedding="positional")
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        GexBertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="pooling"):
        GexBertConfig(pooling="max")


def test_gradient_checkpointing_gives_the_same_gradients(tiny_config, inputs):
    labels = torch.randint(0, tiny_config.num_levels, inputs["input_ids"].shape)
    gradients = []
    for checkpointing in (False, True):
        model = _model(GexBertForMaskedExpression, GexBertConfig(**tiny_config.to_dict())).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(**inputs, labels=labels).loss.backward()
        gradients.append(np.concatenate([p.grad.flatten().numpy() for p in model.parameters() if p.grad is not None]))
    np.testing.assert_allclose(gradients[0], gradients[1], atol=1e-6)


def test_masked_expression_output_carries_the_encoders_pooled_embedding(tiny_config, inputs):
    model = _model(GexBertForMaskedExpression, tiny_config)
    encoder = GexBertModel(model.config).eval()
    encoder.load_state_dict(model.base_model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).pooler_output, encoder(**inputs).pooler_output)


def _imports(path) -> set[str]:
    """Top-level modules a file imports (relative ones with their dots), lazy imports inside functions included."""
    import ast

    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or "").split(".")[0])
    return imported


def test_the_model_file_imports_only_torch_transformers_and_its_siblings():
    """It travels as remote code: nothing of the package (no hub, no inference, no numpy metrics) may be imported,
    not even lazily inside a method; its checkpoint sibling only the standard library and the hub client."""
    import sys
    from pathlib import Path

    import gexbert_hf

    package = Path(gexbert_hf.__file__).parent
    assert _imports(package / "modeling_gexbert.py") <= {
        "__future__", "collections", "dataclasses", "typing", "torch", "transformers", "numpy",
        ".configuration_gexbert", ".checkpoint_gexbert"}
    sibling = _imports(package / "checkpoint_gexbert.py") - {"huggingface_hub", ".errors_gexbert"}  # imports nothing
    assert all(name in sys.stdlib_module_names for name in sibling), sibling


NEW_CONFIG_FIELDS = {"panel_genes": None, "query_unseen": False, "max_queries": None, "panel_seed": 0,
                     "base_model": None, "training_samples_hash": None, "adaptation": None}


@pytest.mark.parametrize("name", ["tcga31-mirna", "tcga13-mrna"])
def test_a_config_json_without_the_newer_fields_loads_with_their_defaults(name, tmp_path):
    """A shipped config.json as saved before these fields existed loads, with each field at its declared default."""
    import json

    from gexbert_hf import pretrained_path

    saved = json.loads((pretrained_path(name) / "config.json").read_text())
    old = {key: value for key, value in saved.items() if key not in NEW_CONFIG_FIELDS}  # as it was saved
    (tmp_path / "config.json").write_text(json.dumps(old))
    config = GexBertConfig.from_pretrained(tmp_path)
    assert {key: getattr(config, key) for key in NEW_CONFIG_FIELDS} == NEW_CONFIG_FIELDS


def test_every_config_field_is_declared_documented_and_round_trips(tmp_path):
    import inspect

    declared = set(inspect.signature(GexBertConfig.__init__).parameters) - {"self", "kwargs"}
    assert set(NEW_CONFIG_FIELDS) <= declared
    for name in declared:
        assert f"{name} (`" in GexBertConfig.__doc__, f"{name} is not documented in the GexBertConfig docstring"
    values = {"panel_genes": ["TP53", "BRCA1"], "query_unseen": True, "max_queries": 50, "panel_seed": 7,
              "base_model": "tcga13-mrna", "training_samples_hash": {"salt": "s", "hashes": ["ab", "cd"]},
              "adaptation": {"epochs": 2, "learning_rate": 1e-4}}
    GexBertConfig(**values).save_pretrained(tmp_path)
    loaded = GexBertConfig.from_pretrained(tmp_path)
    assert {key: getattr(loaded, key) for key in values} == values


# ----------------------------------------------------------------------------------------------------------------------
# transformers' forward conventions: keyword arguments, tuples, recorded outputs
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_class", [GexBertModel, GexBertForMaskedExpression, GexBertForSequenceClassification,
                                         GexBertForSurvival])
def test_a_misspelt_keyword_argument_is_refused_by_name(tiny_config, inputs, model_class):
    model = _model(model_class, tiny_config)
    misspelt = {**inputs, "atention_mask": inputs.pop("attention_mask")}
    with pytest.raises(TypeError, match=f"{model_class.__name__}.forward.*'atention_mask'"):
        model(**misspelt)


@pytest.mark.parametrize("model_class", [GexBertModel, GexBertForMaskedExpression, GexBertForSequenceClassification,
                                         GexBertForSurvival])
def test_return_dict_false_gives_the_same_tensors_as_a_tuple(tiny_config, inputs, model_class):
    model = _model(model_class, tiny_config)
    with torch.no_grad():
        as_output = model(**inputs, output_hidden_states=True)
        as_tuple = model(**inputs, output_hidden_states=True, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(as_output.to_tuple())
    for a, b in zip(as_output.to_tuple(), as_tuple):
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            assert torch.equal(x, y)


def test_hidden_states_and_attentions_come_from_the_encoder_on_request(tiny_config, inputs):
    """Per layer, from transformers' output capturing: the embeddings, each layer's output (the last one before
    the final norm), and eager attention weights even where the model runs sdpa; the decoder is not recorded."""
    tiny_config._attn_implementation = "sdpa"
    model = _model(GexBertForMaskedExpression, tiny_config)
    with torch.no_grad():
        outputs = model(**inputs, output_hidden_states=True, output_attentions=True)
        plain = model(**inputs)
        embeddings = model.gexbert.embeddings(inputs["input_ids"], inputs["level_ids"], inputs["values"])
    layers = tiny_config.num_hidden_layers
    assert len(outputs.hidden_states) == layers + 1 and len(outputs.attentions) == layers
    assert torch.equal(outputs.hidden_states[0], embeddings)
    torch.testing.assert_close(model.gexbert.encoder.final_norm(outputs.hidden_states[-1]),
                               model.gexbert(**inputs).last_hidden_state)
    torch.testing.assert_close(outputs.level_logits, plain.level_logits, atol=1e-5, rtol=1e-5)
    assert plain.hidden_states is None and plain.attentions is None


def test_the_config_can_ask_for_attentions(tiny_config, inputs):
    tiny_config.output_attentions = True
    model = _model(GexBertModel, tiny_config)
    with torch.no_grad():
        attentions = model(**inputs).attentions
    assert len(attentions) == tiny_config.num_hidden_layers
    torch.testing.assert_close(attentions[0].sum(-1), torch.ones(attentions[0].shape[:-1]))


def test_the_trainer_scales_the_loss_for_gradient_accumulation_itself(tiny_config):
    """The losses are means over their own targets: the model must not claim the Trainer's `num_items_in_batch`."""
    for model_class in (GexBertForMaskedExpression, GexBertForSequenceClassification, GexBertForSurvival):
        assert model_class(tiny_config).accepts_loss_kwargs is False


def test_weights_are_initialised_as_written_in_init_weights(tiny_config):
    tiny_config.initializer_range = 0.5  # far from any default, so a skipped initialisation shows
    model = _model(GexBertForMaskedExpression, tiny_config).requires_grad_(False)
    embeddings = model.gexbert.embeddings
    assert torch.equal(embeddings.gene_embeddings.weight[tiny_config.pad_token_id], torch.zeros(32))
    assert abs(float(embeddings.gene_embeddings.weight[2:].std()) - 0.5) < 0.05
    attention = model.gexbert.encoder.layer[0].attention
    assert abs(float(attention.qkv.weight.std()) - 0.5) < 0.05 and not attention.qkv.bias.any()
    norm = model.decoder.final_norm
    assert torch.equal(norm.weight, torch.ones(32)) and not norm.bias.any()


def test_a_head_ignores_the_targets_of_the_other_heads(tiny_config, inputs):
    """One fine-tuning batch carries every target the samples have; each head reads its own."""
    tiny_config.num_labels = 2
    classifier = _model(GexBertForSequenceClassification, tiny_config)
    survival = _model(GexBertForSurvival, tiny_config)
    targets = {"labels": torch.tensor([0, 1, 0, 1, 1, 0]), "survival_time": torch.tensor([5.0, 3, 9, 1, 4, 4]),
               "event": torch.tensor([1, 0, 1, 1, 0, 1])}
    with torch.no_grad():
        assert torch.equal(classifier(**inputs, **targets).loss, classifier(**inputs, labels=targets["labels"]).loss)
        assert torch.equal(survival(**inputs, **targets).loss,
                           survival(**inputs, survival_time=targets["survival_time"], event=targets["event"]).loss)
