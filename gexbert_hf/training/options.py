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


__all__ = ["PretrainingOptions", "TrainingArgumentError"]
