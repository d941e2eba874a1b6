"""The heads work with transformers' Trainer unchanged: no subclass, only a data collator."""

import numpy as np
import torch
from transformers import Trainer, TrainingArguments

from gexbert_hf import GexBertForSequenceClassification, GexBertForSurvival
from gexbert_hf.data.collator import DataCollatorForMaskedExpression
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
