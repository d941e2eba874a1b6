"""The study's one door into the training loops: option objects in, a trained model out, nothing left on disk."""

from __future__ import annotations

import tempfile

import numpy as np

from gexbert_hf import GexBertForMaskedExpression, GexBertTokenizer
from gexbert_hf.data.samples import EncodedSamples
from gexbert_hf.study.training_runs import finetune_in_memory, pretrain_in_memory
from gexbert_hf.training.options import FinetuningOptions, PretrainingOptions
from gexbert_hf.training.presets import build_config


def test_pretraining_and_finetuning_in_memory_train_and_leave_no_folder(synthetic_cohort, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the loops' scratch folders would stay behind
    expression = synthetic_cohort.expression
    tokenizer = GexBertTokenizer.fit(expression, normalization="log1p", num_levels=8)
    model = GexBertForMaskedExpression(build_config(tokenizer, "tiny"))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    options = PretrainingOptions(max_steps=3, batch_size=16, learning_rate=1e-3, mask_fraction=0.5, max_genes=32,
                                 seed=0, logging_steps=1, progress=False)
    result = pretrain_in_memory(model, tokenizer, EncodedSamples.from_frame(tokenizer, expression), options)
    assert result.steps == 3 and len(result.history) == 3
    assert any(not value.equal(before[name]) for name, value in result.model.state_dict().items())
    labels = synthetic_cohort.clinical["cancer_type"].astype("category").cat.codes.to_numpy(np.int64)
    names = list(synthetic_cohort.clinical["cancer_type"].astype("category").cat.categories)

    def samples(rows):
        return EncodedSamples.from_frame(tokenizer, expression.iloc[rows], {"labels": labels[rows]})

    options = FinetuningOptions(epochs=1, batch_size=32, learning_rate=1e-3, seed=0, max_queries=8,
                                early_stopping_patience=3)
    tuned = finetune_in_memory(result.model, tokenizer, samples(np.arange(0, 90)), samples(np.arange(90, 120)),
                               list(expression.columns[:8]), options, class_names=names)
    assert tuned.model.config.panel_genes == list(expression.columns[:8]) and "macro_f1" in tuned.metrics
    assert list(tmp_path.iterdir()) == []
