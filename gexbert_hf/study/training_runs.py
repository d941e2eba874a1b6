"""The study's one door into the library's training loops: a model in memory in, the trained model out.

The loops (`pretrain_model`, `finetune_classifier`, `finetune_survival`) take plain option dataclasses and write
nothing without an `output_dir`; these two functions name the study's settings once, so no other study module
builds training options.
"""

from __future__ import annotations

from ..data.samples import EncodedSamples
from ..tokenization_gexbert import GexBertTokenizer
from ..training.finetune import FinetuneResult, FinetuningOptions, finetune_classifier, finetune_survival
from ..training.pretrain import PretrainingOptions, PretrainResult, pretrain_model


def pretrain_in_memory(model, tokenizer: GexBertTokenizer, samples: EncodedSamples, steps: int, *, batch_size: int,
                       learning_rate: float, mask_fraction: float, max_genes: int, seed: int, logging_steps: int,
                       warmup_ratio: float = 0.05, eval_samples: EncodedSamples | None = None,
                       eval_steps: int = 10**9, progress: bool = True) -> PretrainResult:
    """Masked-expression pretraining of `model` in place for `steps` steps; no checkpoint, nothing kept on disk."""
    options = PretrainingOptions(max_steps=steps, batch_size=batch_size, learning_rate=learning_rate,
                                 warmup_ratio=warmup_ratio, mask_fraction=mask_fraction, max_genes=max_genes,
                                 seed=seed, save_steps=0, logging_steps=logging_steps, eval_steps=eval_steps,
                                 progress=progress)
    return pretrain_model(model, tokenizer, samples, options, eval_samples=eval_samples)


def finetune_in_memory(model, tokenizer: GexBertTokenizer, train: EncodedSamples, validation: EncodedSamples,
                       panel: list[str], *, class_names: list[str] | None = None, epochs: float, batch_size: int,
                       learning_rate: float, seed: int, panel_seed: int = 0, max_queries: int | None = None,
                       early_stopping_patience: int = 3, warmup_ratio: float = 0.1, weight_decay: float = 0.01,
                       encoder_learning_rate_ratio: float = 1.0) -> FinetuneResult:
    """Fine-tune a classifier (`class_names` given: samples carry `labels`) or a Cox risk model (samples carry
    `survival_time` and `event`) on the `panel` genes, every other gene a MASK query; the best validation epoch."""
    options = FinetuningOptions(
        panel_seed=panel_seed, query_unseen=True, max_queries=max_queries, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, encoder_learning_rate_ratio=encoder_learning_rate_ratio,
        weight_decay=weight_decay, warmup_ratio=warmup_ratio, early_stopping_patience=early_stopping_patience,
        seed=seed, progress=False)
    if class_names is not None:
        return finetune_classifier(model, tokenizer, train, validation, class_names, options, panel_genes=panel)
    return finetune_survival(model, tokenizer, train, validation, options, panel_genes=panel)
