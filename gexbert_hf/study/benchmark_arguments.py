"""The arguments of one `gexbert benchmark` run, apart from the run itself so that its stages (pretraining,
tasks) can read them without importing the orchestration back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..nested_arguments import ArgumentsError, default_of
from ..training.options import FinetuningOptions, PretrainingOptions
from .imputation_benchmark import IMPUTATION_SCENARIOS

BENCHMARK_TASKS = ("classification", "survival", "imputation", "attention")
# the nested options the run itself decides, and what the user sets instead (a value given there would be overwritten)
SET_BY_THE_RUN = {
    "pretraining.max_steps": "from the time budget (set pretrain_minutes or ablation_seconds)",
    "pretraining.mask_fraction": "by the ablation (set mask_fraction to fix it)",
    "pretraining.seed": "from seed", "pretraining.progress": "from progress",
    "pretraining.logging_steps": "to a twentieth of each run's steps",
    "pretraining.eval_steps": "unused: scored on the validation part after each run",
    "pretraining.save_steps": "unused: no checkpoints, the model is kept with keep_model",
    "pretraining.save_total_limit": "unused: no checkpoints, the model is kept with keep_model",
    "finetuning.seed": "from each panel's seed", "finetuning.panel_seed": "from each panel's seed",
    "finetuning.query_unseen": "on: unseen genes are MASK queries",
    "finetuning.progress": "off (fine-tuning runs inside the benchmark's bars)",
}


def benchmark_pretraining() -> PretrainingOptions:
    """The benchmark's pretraining defaults (a small model, 128 genes a step; steps come from the time budget)."""
    return PretrainingOptions(batch_size=32, learning_rate=1e-3, max_genes=128)


def benchmark_finetuning() -> FinetuningOptions:
    """The benchmark's fine-tuning defaults: every unseen gene a MASK query (at most 64), a high peak rate as the
    model is small, early stopping after two flat epochs."""
    return FinetuningOptions(query_unseen=True, max_queries=64, epochs=4, batch_size=32, learning_rate=1e-3,
                             encoder_learning_rate_ratio=1.0, early_stopping_patience=2, progress=False)


@dataclass
class BenchmarkArguments:
    """One benchmark run on one data folder (expression.tsv.gz, clinical.tsv, split.tsv)."""

    data_dir: str = field(metadata={"help": "Data folder laid out like ../shared/data/<folder>."})
    output: str = field(metadata={"help": "Where report.md, results.json and the PNG plots go."})
    quick: bool = field(default=False, metadata={"help": "Tiny budgets everywhere (tests, smoke runs)."})
    time_budget_minutes: float = field(default=30.0, metadata={
        "help": "Target wall time of the whole run, shared out among its stages (pretraining, then each task); a "
                "stage starts no further seed once its share is spent (each setting keeps its first seed) and "
                "results.json records what was skipped."})
    tasks: str = field(default=",".join(BENCHMARK_TASKS), metadata={"help": "Comma-separated subset of "
                                                                           + ", ".join(BENCHMARK_TASKS)})
    classification: str = field(default="auto", metadata={
        "help": "auto: skip cancer-type classification when values are standardised within each type (such data "
                "leaks the type through its distribution shapes); on; off."})
    seeds: int = field(default=5, metadata={"help": "Random panels / masks / seeds per setting (>= 5 for reports)."})
    panel_sizes: str = field(default="8,16,32,64,128,256,all", metadata={"help": "Classification panel sizes."})
    survival_panel_sizes: str = field(default="32,64", metadata={"help": "Survival panel sizes K."})
    value_embedding: str = field(default="auto", metadata={"help": "auto (measured), level, continuous or both."})
    mask_fraction: float | None = field(default=None, metadata={"help": "Pretraining mask rate (None: measured by "
                                                                          "the ablation)."})
    pretrain_minutes: float | None = field(default=None, metadata={"help": "Main pretraining length (None: "
                                                                           "from the time budget)."})
    ablation_seconds: float | None = field(default=None, metadata={"help": "Length of each ablation pretraining."})
    hidden_size: int = field(default=64, metadata={"help": "Model width."})
    num_hidden_layers: int = field(default=3, metadata={"help": "Encoder depth."})
    num_attention_heads: int = field(default=4, metadata={"help": "Attention heads."})
    num_levels: int = field(default=32, metadata={"help": "Expression levels of the tokenizer."})
    max_queries: int = field(default=128, metadata={"help": "Unseen genes restored per sample for classification "
                                                                      "(also caps finetuning.max_queries)."})
    finetune: bool = field(default=True, metadata={"help": "Also fine-tune GexBERT end to end on some panels."})
    finetune_panels: str = field(default="16,64", metadata={"help": "Panel sizes that get end-to-end fine-tuning."})
    survival_finetune_types: int = field(default=4, metadata={
        "help": "Fine-tune GexBertForSurvival on the largest-K panels of this many types (most events first)."})
    max_survival_types: int | None = field(default=None, metadata={"help": "At most this many cancer types."})
    max_features: int | None = field(default=None, metadata={"help": "Use a random subset of this many features "
                                                                      "(quick mode: 64)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Subsample train (quick mode: 500)."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Subsample test (quick mode: 150)."})
    imputation_test_rows: int = field(default=400, metadata={"help": "Test samples used for imputation."})
    imputation_scenarios: str = field(default=",".join(IMPUTATION_SCENARIOS), metadata={
        "help": "Comma-separated missingness scenarios of the imputation task (a subset of the default)."})
    imputation_genes_per_pass: int = field(default=1024, metadata={
        "help": "Genes GexBERT reads per imputation pass (a profile with more is read in random groups). More is "
                "better: measured genes are the context, and at 90% missing a 256-gene group holds ~25 of them."})
    pretrained_model: str | None = field(default=None, metadata={
        "help": "Reuse a GexBERT kept by an earlier run (its output/model) instead of the ablation and pretraining; "
                "that run's pretraining record is carried over when its results.json sits beside the model."})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda."})
    seed: int = field(default=0, metadata={"help": "Seed of the validation carve-out and the pretraining."})
    keep_model: bool = field(default=False, metadata={"help": "Keep the pretrained model under output/model."})
    progress: bool = field(default=True, metadata={"help": "Progress bars."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an earlier benchmark report in --output (only "
                                                             "the files it wrote; never a folder holding "
                                                             "--pretrained_model or --data_dir)."})
    pretraining: PretrainingOptions = field(default_factory=benchmark_pretraining, metadata={
        "help": "How the ablation runs and the main pretraining train (their steps come from the time budget)."})
    finetuning: FinetuningOptions = field(default_factory=benchmark_finetuning, metadata={
        "help": "How end-to-end fine-tuning trains (quick mode: one epoch; survival: twice the batch size)."})

    set_by_the_run: ClassVar[dict[str, str]] = SET_BY_THE_RUN
    # old flat keys and where they went: refused with this pointer (by the parser), never silently mapped
    moved_fields: ClassVar[dict[str, str]] = {
        "batch_size": "pretraining.batch_size", "learning_rate": "pretraining.learning_rate",
        "max_genes": "pretraining.max_genes", "finetune_epochs": "finetuning.epochs",
        "finetune_learning_rate": "finetuning.learning_rate",
        "finetune_encoder_lr_ratio": "finetuning.encoder_learning_rate_ratio"}

    def __post_init__(self):
        for path, how in self.set_by_the_run.items():
            group, name = path.split(".")
            if getattr(getattr(self, group), name) != getattr(default_of(type(self), group), name):
                raise ArgumentsError(f"{path} is set by the benchmark ({how}); leave it out (in Python, start "
                                     f"from benchmark_{group}() and replace what you change)")
        if self.pretraining.max_genes is None:
            raise ArgumentsError("pretraining.max_genes: the benchmark's model needs a number of genes per step")


__all__ = ["BENCHMARK_TASKS", "SET_BY_THE_RUN", "BenchmarkArguments", "benchmark_finetuning", "benchmark_pretraining"]
