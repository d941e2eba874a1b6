"""Fine-tuning with the Trainer: classification and survival metrics, panels with unseen-gene queries, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gexbert_hf import GexBertForMaskedExpression, GexBertForSequenceClassification, GexBertForSurvival
from gexbert_hf.cli import main
from gexbert_hf.data.collator import panel_ids_and_queries
from gexbert_hf.data.samples import EncodedSamples
from gexbert_hf.inference import class_probabilities, predict
from gexbert_hf.training.finetune import (
    FinetuningOptions,
    choose_panel,
    finetune_classifier,
    finetune_survival,
)


@pytest.fixture(scope="module")
def pretrained(embedded_tokenizer):
    from gexbert_hf import GexBertConfig

    torch.manual_seed(0)
    config = GexBertConfig.from_tokenizer(embedded_tokenizer, hidden_size=32, num_hidden_layers=2,
                                          num_attention_heads=4, intermediate_size=64, max_genes=64)
    return GexBertForMaskedExpression(config)


def _samples(tokenizer, cohort, rows):
    clinical = cohort.clinical.iloc[rows]
    return EncodedSamples.from_frame(tokenizer, cohort.expression.iloc[rows], {
        "label": (clinical["er"] == "positive").to_numpy(np.int64),
        "survival_time": clinical["time"].to_numpy(np.float32), "event": clinical["event"].to_numpy(np.float32)})


def _options(**overrides) -> FinetuningOptions:
    values = {"epochs": 3, "batch_size": 32, "learning_rate": 1e-3, "progress": False}
    values.update(overrides)
    return FinetuningOptions(**values)


def test_classification_from_a_panel_with_queries_reports_metrics_and_saves_the_best_model(
        pretrained, embedded_tokenizer, embedded_cohort, tmp_path):
    train, validation = (_samples(embedded_tokenizer, embedded_cohort, rows)
                         for rows in (range(0, 130), range(130, 198)))
    panel = embedded_tokenizer.genes[:16]
    result = finetune_classifier(pretrained, embedded_tokenizer, train, validation, ["negative", "positive"],
                                 _options(query_unseen=True, max_queries=20), panel, output_dir=tmp_path)
    assert {"accuracy", "macro_f1", "roc_auc", "loss"} <= set(result.metrics)
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    assert any("eval_macro_f1" in record for record in result.history)
    # the encoder started from the pretrained one (unused query embeddings stay as pretrained)
    assert result.model.gexbert.embeddings.gene_embeddings.weight.shape[0] == embedded_tokenizer.vocab_size
    saved = GexBertForSequenceClassification.from_pretrained(tmp_path)
    assert saved.config.panel_genes == panel and saved.config.query_unseen and saved.config.max_queries == 20
    assert saved.config.id2label == {0: "negative", 1: "positive"}
    assert not (tmp_path / "checkpoints").exists()
    probabilities = class_probabilities(predict(saved, embedded_tokenizer, validation))
    assert probabilities.shape == (len(validation), 2)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probabilities, class_probabilities(predict(result.model, embedded_tokenizer, validation)),
                               rtol=1e-5, atol=1e-6)


def test_encoder_learning_rate_ratio_scales_only_the_pretrained_encoder(
        pretrained, embedded_tokenizer, embedded_cohort, tmp_path):
    train, validation = (_samples(embedded_tokenizer, embedded_cohort, rows)
                         for rows in (range(0, 130), range(130, 198)))
    before = {name: value.clone() for name, value in pretrained.gexbert.state_dict().items()}
    frozen = finetune_classifier(pretrained, embedded_tokenizer, train, validation, ["negative", "positive"],
                                 _options(epochs=1, encoder_learning_rate_ratio=0.0, probe_init=False),
                                 embedded_tokenizer.genes[:16])
    for name, value in frozen.model.gexbert.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0, msg=f"encoder weight {name} moved")
    still = finetune_classifier(pretrained, embedded_tokenizer, train, validation, ["negative", "positive"],
                               _options(epochs=1, learning_rate=0.0, probe_init=False),
                               embedded_tokenizer.genes[:16])
    assert not torch.equal(frozen.model.classifier.weight, still.model.classifier.weight)  # the head did train
    moving = finetune_classifier(pretrained, embedded_tokenizer, train, validation, ["negative", "positive"],
                                 _options(epochs=1, probe_init=False), embedded_tokenizer.genes[:16])
    assert any(not torch.equal(value, before[name]) for name, value in moving.model.gexbert.state_dict().items())
    # the restoration decoder a value-reading head carries is pretrained too: frozen with the encoder
    for name, value in frozen.model.decoder.state_dict().items():
        torch.testing.assert_close(value, pretrained.decoder.state_dict()[name], rtol=0, atol=0)


def test_survival_fine_tuning_reports_a_c_index(pretrained, embedded_tokenizer, embedded_cohort, tmp_path):
    train, validation = (_samples(embedded_tokenizer, embedded_cohort, rows)
                         for rows in (range(0, 130), range(130, 198)))
    result = finetune_survival(pretrained, embedded_tokenizer, train, validation, _options(), output_dir=tmp_path)
    assert 0.0 <= result.metrics["c_index"] <= 1.0
    risk = predict(GexBertForSurvival.from_pretrained(tmp_path), embedded_tokenizer, validation)["risk"].to_numpy()
    assert risk.shape == (len(validation),) and np.isfinite(risk).all()


def test_panels_and_queries(embedded_tokenizer, tmp_path):
    panel = choose_panel(embedded_tokenizer, panel_size=16, panel_seed=3)
    assert panel == choose_panel(embedded_tokenizer, panel_size=16, panel_seed=3) and len(set(panel)) == 16
    panel_ids, query_ids = panel_ids_and_queries(embedded_tokenizer, panel, query_unseen=True, max_queries=10)
    assert len(panel_ids) == 16 and len(query_ids) == 10 and not set(panel_ids) & set(query_ids)
    genes_file = tmp_path / "panel.txt"
    genes_file.write_text("# my panel\n" + "\n".join(panel[:3]) + "\nNOT_A_GENE\n")
    from gexbert_hf.errors import ExpressionInputError

    with pytest.raises(ExpressionInputError, match="NOT_A_GENE"):
        choose_panel(embedded_tokenizer, genes_file=str(genes_file))


def test_finetune_command_on_a_built_dataset(synthetic_cohort, tmp_path, capsys):
    from gexbert_hf.data.build import build_dataset

    dataset, model_dir = tmp_path / "dataset", tmp_path / "pretrained"
    build_dataset(synthetic_cohort, output=dataset, verbose=False)
    assert main(["pretrain", "--dataset", str(dataset), "--output_dir", str(model_dir), "--preset", "tiny",
                 "--max_steps", "2", "--batch_size", "16", "--save_steps", "0", "--progress", "false"]) == 0
    output = tmp_path / "classifier"
    assert main(["finetune", "classify", "--model", str(model_dir), "--dataset", str(dataset), "--output_dir",
                 str(output), "--epochs", "2", "--panel_size", "8", "--query_unseen", "--progress", "false"]) == 0
    metrics = json.loads((output / "finetune_metrics.json").read_text())
    assert {"validation", "test"} <= set(metrics) and "macro_f1" in metrics["test"]
    assert len(GexBertForSequenceClassification.from_pretrained(output).config.panel_genes) == 8
    assert main(["finetune", "survival", "--model", str(model_dir), "--dataset", str(dataset), "--output_dir",
                 str(tmp_path / "survival"), "--epochs", "1", "--progress", "false"]) == 0
    assert main(["finetune", "classify", "--model", str(model_dir), "--dataset", str(dataset), "--output_dir",
                 str(output), "--epochs", "1", "--progress", "false"]) == 2
    assert "already holds a model" in capsys.readouterr().err


def test_classification_metric_takes_predicted_classes_as_evaluate_accuracy_does():
    """The offline stand-in for `evaluate.load("accuracy")` in the README's Trainer example."""
    from gexbert_hf.training.finetune import ClassificationMetric

    references = np.array([0, 1, 0, 0, 1])
    from_classes = ClassificationMetric().compute(predictions=np.array([0, 1, 1, 0, 1]), references=references)
    assert from_classes["accuracy"] == pytest.approx(0.8) and "roc_auc" not in from_classes
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    from_scores = ClassificationMetric().compute(predictions=scores, references=references)
    assert from_scores["accuracy"] == from_classes["accuracy"] and from_scores["roc_auc"] == 1.0


# ----------------------------------------------------------------------------------------------------------------------
# the recipe: a head reading pooled embedding + measured / restored gene values, started from the linear probe
# ----------------------------------------------------------------------------------------------------------------------
def _probe_features(pretrained, tokenizer, samples, panel, query_ids) -> np.ndarray:
    """The linear probe's inputs, built without the classification head: the masked-expression model's pooled
    embedding, its restored expected level (share of the level range) for each query, the panel's standardised
    values as encoded; columns in a fixed gene order."""
    from gexbert_hf.data.collator import DataCollatorForExpressionFinetuning
    from gexbert_hf.data.samples import fetch_rows

    panel_ids = tokenizer.convert_genes_to_ids(panel)
    collator = DataCollatorForExpressionFinetuning(tokenizer, panel_ids=panel_ids, query_ids=query_ids, seed=1)
    batch = collator(fetch_rows(samples, list(range(len(samples)))))
    pretrained.eval()
    with torch.no_grad():
        outputs = pretrained(batch["input_ids"], batch["level_ids"], batch["values"], batch["attention_mask"])
    levels = torch.softmax(outputs.level_logits, -1) @ torch.arange(tokenizer.num_levels, dtype=torch.float32)
    expected = (levels / (tokenizer.num_levels - 1)).numpy()
    ids = batch["input_ids"].numpy()
    restored = np.stack([[expected[row, list(ids[row]).index(gene)] for gene in query_ids]
                         for row in range(len(ids))])
    columns = [list(samples.gene_ids).index(gene) for gene in panel_ids]
    return np.hstack([outputs.pooler_output.numpy(), samples.values[:, columns], restored])


def test_the_head_started_from_the_probe_predicts_as_the_linear_probe_does(
        pretrained, embedded_tokenizer, embedded_cohort):
    from sklearn.linear_model import LogisticRegression

    train, validation = (_samples(embedded_tokenizer, embedded_cohort, rows)
                         for rows in (range(0, 130), range(130, 198)))
    panel = embedded_tokenizer.genes[:12]
    result = finetune_classifier(pretrained, embedded_tokenizer, train, validation, ["negative", "positive"],
                                 _options(epochs=0, query_unseen=True, max_queries=10, classifier_hidden_size=0),
                                 panel)
    assert result.model.config.classifier_reads_values and result.history[0]["kept_probe"]
    assert not hasattr(result.model, "classifier_mlp")
    _, query_ids = panel_ids_and_queries(embedded_tokenizer, panel, True, 10, 0)
    x_train, x_validation = (_probe_features(pretrained, embedded_tokenizer, samples, panel, query_ids)
                             for samples in (train, validation))
    mean, std = x_train.mean(0), x_train.std(0)
    probe = LogisticRegression(C=result.history[0]["probe"]["probe_C"], max_iter=2000)
    probe.fit((x_train - mean) / std, train.sample_fields["label"])
    expected = probe.predict_proba((x_validation - mean) / std)
    head = class_probabilities(predict(result.model, embedded_tokenizer, validation))
    np.testing.assert_allclose(head, expected, atol=2e-3)
    assert result.metrics["macro_f1"] == pytest.approx(result.history[0]["probe"]["validation"]["macro_f1"])


def test_fine_tuning_from_the_probe_never_ends_below_it_on_validation(
        pretrained, embedded_tokenizer, embedded_cohort):
    train, validation = (_samples(embedded_tokenizer, embedded_cohort, rows)
                         for rows in (range(0, 130), range(130, 198)))
    # a learning rate far too high: the epochs wreck the probe, and the probe is what comes back
    result = finetune_classifier(pretrained, embedded_tokenizer, train, validation, ["negative", "positive"],
                                 _options(epochs=2, learning_rate=0.5, query_unseen=True, max_queries=10),
                                 embedded_tokenizer.genes[:12])
    probe = result.history[0]["probe"]["eval_macro_f1"]
    epochs = [record["eval_macro_f1"] for record in result.history[1:] if "eval_macro_f1" in record]
    assert result.metrics["macro_f1"] >= probe and result.metrics["macro_f1"] == max([probe, *epochs])
    assert result.history[0]["kept_probe"] == (probe >= max(epochs))


def test_the_mlp_branch_starts_at_the_probe_and_is_kept_only_where_it_beats_it_on_validation(
        pretrained, embedded_tokenizer, embedded_cohort):
    train, validation = (_samples(embedded_tokenizer, embedded_cohort, rows)
                         for rows in (range(0, 130), range(130, 198)))
    result = finetune_classifier(pretrained, embedded_tokenizer, train, validation, ["negative", "positive"],
                                 _options(epochs=0, query_unseen=True, max_queries=10, classifier_hidden_size=16),
                                 embedded_tokenizer.genes[:12])
    probe = result.history[0]["probe"]
    assert result.model.classifier_mlp[0].out_features == 16
    assert probe["mlp_validation_macro_f1"] >= max(probe["probe_validation_macro_f1"].values())
    assert result.metrics["macro_f1"] == pytest.approx(probe["mlp_validation_macro_f1"])
    assert result.metrics == probe["validation"]
    weight = result.model.classifier_mlp[-1].weight
    assert (probe["mlp_epochs"] == 0) == bool((weight == 0).all())  # untrained branch: zero logits, the probe


def test_recipe_defaults_and_a_head_without_a_decoder_to_start_from(pretrained, embedded_tokenizer, embedded_cohort):
    defaults = FinetuningOptions()
    assert defaults.classifier_reads_values and defaults.probe_init and defaults.classifier_hidden_size > 0
    train, validation = (_samples(embedded_tokenizer, embedded_cohort, rows)
                         for rows in (range(0, 130), range(130, 198)))
    # the bare encoder has no restoration decoder: the head falls back to the pooled embedding, still probe-started
    result = finetune_classifier(pretrained.gexbert, embedded_tokenizer, train, validation, ["negative", "positive"],
                                 _options(epochs=0), embedded_tokenizer.genes[:12])
    assert not result.model.config.classifier_reads_values and not hasattr(result.model, "decoder")
    assert not hasattr(result.model, "classifier_mlp")
    assert result.model.classifier.in_features == pretrained.config.hidden_size
    assert "probe" in result.history[0]


def test_a_classifier_saved_before_the_value_reading_head_loads_with_the_pooled_head(tiny_config, tmp_path):
    tiny_config.num_labels = 3
    torch.manual_seed(0)
    old = GexBertForSequenceClassification(tiny_config)
    old.save_pretrained(tmp_path)
    config_file = tmp_path / "config.json"
    saved = json.loads(config_file.read_text())
    saved.pop("classifier_reads_values", None)  # as written before the field existed
    config_file.write_text(json.dumps(saved))
    loaded = GexBertForSequenceClassification.from_pretrained(tmp_path)
    assert not loaded.config.classifier_reads_values and not hasattr(loaded, "decoder")
    inputs = {"input_ids": torch.tensor([[1, 2, 3, 4]]), "level_ids": torch.tensor([[0, 5, 6, 7]]),
              "values": torch.tensor([[0.0, 0.1, -0.2, 0.3]])}
    old.eval()
    loaded.eval()
    torch.testing.assert_close(loaded(**inputs).logits, old(**inputs).logits)


def test_a_value_reading_classifier_round_trips_with_its_standardisation(
        pretrained, embedded_tokenizer, embedded_cohort, tmp_path):
    train, validation = (_samples(embedded_tokenizer, embedded_cohort, rows)
                         for rows in (range(0, 130), range(130, 198)))
    result = finetune_classifier(pretrained, embedded_tokenizer, train, validation, ["negative", "positive"],
                                 _options(epochs=0, query_unseen=True, max_queries=10), embedded_tokenizer.genes[:12],
                                 output_dir=tmp_path)
    saved = GexBertForSequenceClassification.from_pretrained(tmp_path)
    assert saved.config.classifier_reads_values
    torch.testing.assert_close(saved.feature_scale, result.model.feature_scale)
    assert not torch.equal(saved.feature_scale, torch.ones_like(saved.feature_scale))
    np.testing.assert_allclose(class_probabilities(predict(saved, embedded_tokenizer, validation)),
                               class_probabilities(predict(result.model, embedded_tokenizer, validation)),
                               rtol=1e-5, atol=1e-6)
