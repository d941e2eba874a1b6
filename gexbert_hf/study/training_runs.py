"""The study's one door into the library's training loops: a model in memory in, the trained model out.

The loops (`pretrain_model`, `finetune_classifier`, `finetune_survival`) take plain option dataclasses and write
nothing without an `output_dir`; these two functions run them in memory on the option objects a study holds (the
benchmark nests them in its arguments, the demo states its own), adding the study's fixed protocol.
"""

from __future__ import annotations

from dataclasses import replace

from ..data.samples import EncodedSamples
from ..tokenization_gexbert import GexBertTokenizer
from ..training.finetune import FinetuneResult, FinetuningOptions, finetune_classifier, finetune_survival
from ..training.pretrain import PretrainingOptions, PretrainResult, pretrain_model


def pretrain_in_memory(model, tokenizer: GexBertTokenizer, samples: EncodedSamples, options: PretrainingOptions, *,
                       eval_samples: EncodedSamples | None = None) -> PretrainResult:
    """Masked-expression pretraining of `model` in place for `options.max_steps` steps; no checkpoint, nothing kept
    on disk (no output folder, so the options' checkpoint cadence is unused)."""
    return pretrain_model(model, tokenizer, samples, options, eval_samples=eval_samples)


def finetune_in_memory(model, tokenizer: GexBertTokenizer, train: EncodedSamples, validation: EncodedSamples,
                       panel: list[str], options: FinetuningOptions, *, class_names: list[str] | None = None
                       ) -> FinetuneResult:
    """Fine-tune a classifier (`class_names` given: samples carry `labels`) or a Cox risk model (samples carry
    `survival_time` and `event`) on the `panel` genes, every other gene a MASK query (the study's protocol, whatever
    `options.query_unseen` says; no progress bars); the best validation epoch."""
    options = replace(options, query_unseen=True, progress=False)
    if class_names is not None:
        return finetune_classifier(model, tokenizer, train, validation, class_names, options, panel_genes=panel)
    return finetune_survival(model, tokenizer, train, validation, options, panel_genes=panel)
