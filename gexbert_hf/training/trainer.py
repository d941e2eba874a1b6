"""Trainer glue for fine-tuning: the stock `Trainer` with its own deterministic evaluation collator and a lower
learning rate for the pretrained encoder, fed row by row from in-memory samples or a tokenized dataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from transformers import EarlyStoppingCallback, PrinterCallback, Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

from ..data.collator import DataCollatorForExpressionFinetuning, panel_ids_and_queries
from ..data.samples import fetch_rows
from ..tokenization_gexbert import GexBertTokenizer
from .options import FinetuningOptions

# parameter name prefixes of what a head carries over from pretraining
PRETRAINED_PARTS = ("gexbert.", "decoder.", "level_head.")


class RowDataset(torch.utils.data.Dataset):
    """Index access to an `EncodedSamples` or a tokenized `datasets.Dataset`, one dict per sample, for `Trainer`."""

    def __init__(self, samples):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        return fetch_rows(self.samples, [int(index)])[0]


class PanelTrainer(Trainer):
    """`Trainer` whose evaluation and prediction batches come from their own deterministic collator."""

    def __init__(self, *args, eval_collator: DataCollatorForExpressionFinetuning, encoder_learning_rate_ratio: float = 1.0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_collator = eval_collator
        self.encoder_learning_rate_ratio = encoder_learning_rate_ratio

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        """Trainer's optimizer, with the pretrained parts (encoder, and the restoration decoder a value-reading
        classifier carries) in their own groups at a scaled rate."""
        if self.optimizer is not None or self.encoder_learning_rate_ratio == 1.0:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        optimizer_class, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        decay = set(self.get_decay_parameter_names(model))
        groups = []
        for encoder in (True, False):
            for decayed in (True, False):
                parameters = [parameter for name, parameter in model.named_parameters()
                              if parameter.requires_grad and name.startswith(PRETRAINED_PARTS) == encoder
                              and (name in decay) == decayed]
                if parameters:
                    groups.append({"params": parameters, "weight_decay": self.args.weight_decay if decayed else 0.0,
                                   "lr": self.args.learning_rate * (self.encoder_learning_rate_ratio if encoder
                                                                    else 1.0)})
        self.optimizer = optimizer_class(groups, **optimizer_kwargs)
        return self.optimizer

    def _with_eval_collator(self, make_loader, *args):
        training_collator = self.data_collator
        self.eval_collator.calls = 0  # the same gene subsets at every evaluation
        self.data_collator = self.eval_collator
        try:
            return make_loader(*args)
        finally:
            self.data_collator = training_collator

    def get_eval_dataloader(self, eval_dataset=None):
        return self._with_eval_collator(super().get_eval_dataloader, eval_dataset)

    def get_test_dataloader(self, test_dataset):
        return self._with_eval_collator(super().get_test_dataloader, test_dataset)


def _collators(tokenizer: GexBertTokenizer, model, options: FinetuningOptions, panel_genes: list[str] | None
               ) -> tuple[DataCollatorForExpressionFinetuning, DataCollatorForExpressionFinetuning]:
    panel_ids, query_ids = panel_ids_and_queries(tokenizer, panel_genes, options.query_unseen, options.max_queries,
                                                 options.panel_seed)
    # the collators pass the targets (labels, survival_time, event) through under the heads' argument names
    common = {"panel_ids": panel_ids, "query_ids": query_ids}
    training = DataCollatorForExpressionFinetuning(tokenizer, max_genes=options.max_genes or model.config.max_genes,
                                                   seed=options.seed, **common)
    evaluation = DataCollatorForExpressionFinetuning(tokenizer, max_genes=options.max_genes, seed=options.seed + 1,
                                                     **common)
    return training, evaluation


def _training_arguments(options: FinetuningOptions, trainer_dir: Path, metric: str, label_names: list[str]
                        ) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(trainer_dir),
        num_train_epochs=options.epochs,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=max(options.batch_size, 64),
        learning_rate=options.learning_rate,
        weight_decay=options.weight_decay,
        warmup_steps=options.warmup_ratio,  # below 1: a share of the steps (transformers 5)
        lr_scheduler_type="linear",
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        save_total_limit=1,
        save_only_model=True,
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=True,
        label_names=label_names,
        remove_unused_columns=False,
        report_to=[],
        seed=options.seed,
        data_seed=options.seed,
        bf16=options.bf16,
        disable_tqdm=not options.progress,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def build_trainer(head, tokenizer: GexBertTokenizer, train, validation, options: FinetuningOptions,
                  panel_genes: list[str] | None, trainer_dir: Path, label_names: list[str], metric: str,
                  compute_metrics: Callable) -> PanelTrainer:
    """A `PanelTrainer` for `head` on the two sets, keeping the epoch with the best `metric` (early stopping)."""
    training_collator, eval_collator = _collators(tokenizer, head, options, panel_genes)
    trainer = PanelTrainer(
        model=head, args=_training_arguments(options, trainer_dir, metric, label_names),
        data_collator=training_collator, eval_collator=eval_collator, train_dataset=RowDataset(train),
        eval_dataset=RowDataset(validation), compute_metrics=compute_metrics,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=options.early_stopping_patience)],
        encoder_learning_rate_ratio=options.encoder_learning_rate_ratio,
    )
    if not options.progress:  # quiet: no per-epoch log lines
        trainer.remove_callback(PrinterCallback)
    return trainer


def train_best_epoch(trainer: PanelTrainer, progress: bool) -> tuple[dict[str, float], list[dict]]:
    """Train, then evaluate the best epoch: its validation metrics (`eval_` dropped) and the log history."""
    if not progress:  # no shard-writing bars either
        hf_logging.disable_progress_bar()
    try:
        trainer.train()
        final = trainer.evaluate()
    finally:
        if not progress:
            hf_logging.enable_progress_bar()
    metrics = {key.removeprefix("eval_"): float(value) for key, value in final.items()
               if isinstance(value, (int, float))}
    return metrics, list(trainer.state.log_history)


__all__ = ["PanelTrainer", "RowDataset", "build_trainer", "train_best_epoch"]
