"""The plain options of the training loops: values a script, the study or a command sets, importing nothing of the
loops themselves (so the loops, their state files and the Trainer glue can all import them without a circle)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import GexBertError


class TrainingArgumentError(GexBertError, ValueError):
    """Training options that cannot work together or on this machine (e.g. fp16 on a CPU)."""


@dataclass(kw_only=True)
class PretrainingOptions:
    """How to pretrain: steps, batches, optimiser, masking, precision, logging and checkpoint cadence. Plain values
    that a script or the study sets directly; `PretrainArguments` adds the files and switches of `gexbert pretrain`."""

    max_steps: int = field(default=2000, metadata={"help": "Optimizer steps."})
    batch_size: int = field(default=32, metadata={"help": "Samples per process and micro-batch."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimizer step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak AdamW learning rate."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (not on norms and biases)."})
    warmup_ratio: float = field(default=0.05, metadata={"help": "Share of steps warming up before cosine decay."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 = off)."})
    mask_fraction: float = field(default=0.3, metadata={"help": "Share of sampled genes masked as targets."})
    max_mask_fraction: float | None = field(default=None, metadata={
        "help": "When set, each sample's mask rate is drawn uniformly from [mask_fraction, max_mask_fraction], so "
                "training meets the missingness imputation faces (e.g. 0.1 to 0.9)."})
    max_genes: int | None = field(default=None, metadata={"help": "Genes sampled per sample and step."})
    mixed_precision: str = field(default="no", metadata={"help": "no, bf16 (CPU or GPU) or fp16 (CUDA only)."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Recompute activations to save memory."})
    seed: int = field(default=0, metadata={"help": "Seed of weights, data order, subsampling and masking."})
    logging_steps: int = field(default=20, metadata={"help": "Steps between metric log lines."})
    eval_steps: int = field(default=200, metadata={"help": "Steps between held-out restoration evaluations."})
    save_steps: int = field(default=200, metadata={"help": "Steps between checkpoints (0 = none)."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept (newest)."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})
    max_seconds: float | None = field(default=None, metadata={
        "help": "Stop after this many seconds of training even before max_steps (the learning-rate schedule still "
                "spans max_steps); the model is saved as usual. A bound for a lease or a budget, not a schedule."})


@dataclass(kw_only=True)
class FinetuningOptions:
    """How to fine-tune: queries beside a panel, epochs, batches, optimiser, early stopping, precision. Plain values
    that a script or the study sets directly; `FinetuneArguments` adds the files and switches of `gexbert finetune`."""

    query_unseen: bool = field(default=False, metadata={"help": "Append genes outside the panel as MASK queries."})
    max_queries: int | None = field(default=None, metadata={"help": "At most this many query genes (seeded)."})
    panel_seed: int = field(default=0, metadata={"help": "Seed of the random panel and of the query subsample."})
    epochs: float = field(default=3, metadata={"help": "Maximum end-to-end epochs after the probe (early stopping "
                                                       "may end sooner; 0: the probe and its MLP branch alone)."})
    batch_size: int = field(default=32, metadata={"help": "Samples per batch."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak AdamW learning rate (of the head); small, "
                                                                 "as the head starts from the fitted probe."})
    encoder_learning_rate_ratio: float = field(default=1.0, metadata={
        "help": "The pretrained encoder trains at learning_rate x this; below 1 keeps the fresh head's early, "
                "noisy gradients from overwriting what pretraining learned."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Share of steps warming up."})
    early_stopping_patience: int = field(default=1, metadata={"help": "Epochs without improvement before stopping."})
    seed: int = field(default=0, metadata={"help": "Seed of the head, data order and gene subsampling."})
    max_genes: int | None = field(default=None, metadata={"help": "Genes sampled per training sample and step "
                                                                   "(default: the model's max_genes); evaluation "
                                                                   "uses this cap too, or every gene when unset."})
    classifier_reads_values: bool = field(default=True, metadata={
        "help": "Classification: the head reads the pooled embedding and every input gene's value, measured or "
                "restored by the checkpoint's decoder (the linear probe's inputs); needs a masked-expression "
                "checkpoint (its decoder), else the pooled embedding alone."})
    classifier_hidden_size: int = field(default=256, metadata={
        "help": "Classification with classifier_reads_values: width of an MLP branch beside the linear head, "
                "trained on the frozen features after the probe (0: linear head only)."})
    probe_init: bool = field(default=True, metadata={
        "help": "Classification: start the head from logistic regression on the frozen model's features (LP-FT) "
                "and keep that probe where no fine-tuned epoch beats it on validation."})
    bf16: bool = field(default=False, metadata={"help": "bf16 mixed precision."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})


__all__ = ["FinetuningOptions", "PretrainingOptions", "TrainingArgumentError"]
