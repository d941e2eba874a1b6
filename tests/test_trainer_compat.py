"""The heads work with transformers' Trainer unchanged: no subclass, only a data collator."""

import datasets
import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments

from gexbert_hf import (
    DataCollatorForExpressionFinetuning,
    DataCollatorForMaskedExpression,
    GexBertConfig,
    GexBertForMaskedExpression,
    GexBertForSequenceClassification,
    GexBertForSurvival,
    GexBertTokenizer,
)
from gexbert_hf.data.samples import EncodedSamples


def test_trainer_trains_and_evaluates_the_classifier(tiny_config, embedded_tokenizer, embedded_cohort, tmp_path):
    labels = (embedded_cohort.clinical["er"] == "positive").astype(int).to_numpy()
    samples = EncodedSamples.from_frame(embedded_tokenizer, embedded_cohort.expression, {"label": labels})
    rows = samples.rows(range(len(samples)))
    tiny_config.num_labels = 2
    torch.manual_seed(0)
    model = GexBertForSequenceClassification(tiny_config)
    before = [p.detach().clone() for p in model.parameters()]
    collator = DataCollatorForMaskedExpression(embedded_tokenizer, max_genes=32, mask_fraction=0.0,
                                               sample_keys={"label": "labels"})
    arguments = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=16, max_steps=6,
                                  learning_rate=1e-3, report_to=[], logging_steps=2, save_strategy="no",
                                  remove_unused_columns=False, use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=arguments, train_dataset=rows[:150], eval_dataset=rows[150:],
                      data_collator=collator)
    trainer.train()
    metrics = trainer.evaluate()
    assert np.isfinite(metrics["eval_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    predictions = trainer.predict(rows[150:])
    assert predictions.predictions.shape == (48, 2)
    np.testing.assert_array_equal(predictions.label_ids, labels[150:])


def test_trainer_passes_survival_targets(tiny_config, embedded_tokenizer, embedded_cohort, tmp_path):
    clinical = embedded_cohort.clinical
    samples = EncodedSamples.from_frame(embedded_tokenizer, embedded_cohort.expression,
                                        {"survival_time": clinical["time"].to_numpy(np.float32),
                                         "event": clinical["event"].to_numpy()})
    rows = samples.rows(range(len(samples)))
    model = GexBertForSurvival(tiny_config)
    collator = DataCollatorForMaskedExpression(embedded_tokenizer, mask_fraction=0.0,
                                               sample_keys=["survival_time", "event"])
    arguments = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=32, max_steps=3,
                                  report_to=[], save_strategy="no", remove_unused_columns=False, use_cpu=True,
                                  label_names=["survival_time", "event"], disable_tqdm=True)
    trainer = Trainer(model=model, args=arguments, train_dataset=rows, eval_dataset=rows[:64],
                      data_collator=collator)
    trainer.train()
    output = trainer.predict(rows[:64])
    assert output.predictions.shape == (64,)
    assert np.isfinite(output.metrics["test_loss"])


# ----------------------------------------------------------------------------------------------------------------------
# the stock Trainer on a `gexbert build-dataset` output, default arguments (issue #13, section 2)
# ----------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(embedded_cohort, tmp_path_factory):
    from gexbert_hf.data.build import build_dataset

    output = tmp_path_factory.mktemp("built") / "gse7390"
    build_dataset(embedded_cohort, output=output, verbose=False)
    return datasets.load_from_disk(str(output)), GexBertTokenizer.from_pretrained(output)


def _tiny(model_class, tokenizer, **kwargs):
    torch.manual_seed(0)
    config = GexBertConfig.from_tokenizer(tokenizer, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                          intermediate_size=64, **kwargs)
    return model_class(config)


def _stock_arguments(tmp_path, **kwargs) -> TrainingArguments:
    """Nothing GexBERT-specific: in particular `remove_unused_columns` keeps its default (True)."""
    return TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=16, max_steps=4, learning_rate=1e-3,
                             report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True, **kwargs)


def test_stock_trainer_fine_tunes_a_classifier_on_a_built_dataset(built, tmp_path):
    ds, tokenizer = built
    assert {"input_ids", "level_ids", "values", "labels"} <= set(ds["train"].column_names)
    model = _tiny(GexBertForSequenceClassification, tokenizer, num_labels=2)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(model, _stock_arguments(tmp_path), train_dataset=ds["train"], eval_dataset=ds["test"],
                      data_collator=DataCollatorForExpressionFinetuning(tokenizer))
    trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    output = trainer.predict(ds["test"])
    assert output.predictions.shape == (ds["test"].num_rows, 2) and np.isfinite(output.metrics["test_loss"])
    np.testing.assert_array_equal(output.label_ids, ds["test"]["labels"])


def test_stock_trainer_fine_tunes_survival_on_a_built_dataset(built, tmp_path):
    ds, tokenizer = built
    model = _tiny(GexBertForSurvival, tokenizer)
    arguments = _stock_arguments(tmp_path, label_names=["survival_time", "event"])  # no "label" in their names
    trainer = Trainer(model, arguments, train_dataset=ds["train"],
                      data_collator=DataCollatorForExpressionFinetuning(tokenizer))
    trainer.train()
    output = trainer.predict(ds["test"])
    assert output.predictions.shape == (ds["test"].num_rows,) and np.isfinite(output.metrics["test_loss"])
    np.testing.assert_allclose(output.label_ids[0], ds["test"]["survival_time"])
    np.testing.assert_array_equal(output.label_ids[1], ds["test"]["event"])


def test_stock_trainer_pretrains_on_a_built_dataset(built, tmp_path):
    ds, tokenizer = built
    model = _tiny(GexBertForMaskedExpression, tokenizer)
    trainer = Trainer(model, _stock_arguments(tmp_path), train_dataset=ds["train"], eval_dataset=ds["test"],
                      data_collator=DataCollatorForMaskedExpression(tokenizer, mask_fraction=0.3))
    trainer.train()
    assert np.isfinite(trainer.evaluate()["eval_loss"])


def test_stock_trainer_fine_tunes_a_value_reading_head_started_from_the_probe(built, tmp_path):
    """The README recipe on the Trainer path: a masked-expression checkpoint loaded into the value-reading head
    (its decoder carried over), the head fitted as the linear probe, then the stock Trainer."""
    from gexbert_hf.training.probe_head import start_from_probe

    ds, tokenizer = built
    pretrained = _tiny(GexBertForMaskedExpression, tokenizer)
    pretrained.save_pretrained(tmp_path / "pretrained")
    model = GexBertForSequenceClassification.from_pretrained(
        tmp_path / "pretrained", classifier_reads_values=True, classifier_hidden_size=8, num_labels=2)
    torch.testing.assert_close(model.level_head.weight, pretrained.level_head.weight)
    chosen = start_from_probe(model, tokenizer, ds["train"], ds["test"])
    assert chosen["probe_C"] > 0 and not torch.equal(model.feature_scale, torch.ones_like(model.feature_scale))
    probe = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(model, _stock_arguments(tmp_path), train_dataset=ds["train"],
                      data_collator=DataCollatorForExpressionFinetuning(tokenizer))
    trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(probe, model.parameters()))
    output = trainer.predict(ds["test"])
    assert output.predictions.shape == (ds["test"].num_rows, 2) and np.isfinite(output.metrics["test_loss"])
