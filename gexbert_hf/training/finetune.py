"""Fine-tuning glue: Hugging Face `Trainer` on a pretrained GexBERT for classification and survival.

The pretrained encoder (`gexbert.*` weights) is carried into a fresh head; a gene panel restricts what the model sees
(the limited-panel experiments), optionally with the genes outside the panel appended as MASK queries. The panel is
stored in the fine-tuned model's config, so `predict_*` and `gexbert predict` see exactly what training saw.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import evaluate
import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from transformers import EarlyStoppingCallback, PrinterCallback, Trainer, TrainingArguments, set_seed
from transformers.utils import logging as hf_logging

from ..checks import check_tokenizer_matches
from ..data.collator import DataCollatorForExpressionFinetuning
from ..data.encoding import with_model_column_names
from ..data.samples import EncodedSamples, fetch_rows
from ..errors import ClinicalInputError, ExpressionInputError, OutputExistsError, preview
from ..modeling_gexbert import (
    GexBertForSequenceClassification,
    GexBertForSurvival,
    GexBertModel,
    GexBertPreTrainedModel,
    concordance_index,
)
from ..outputs import claim_output_dir, take_deprecated_overwrite
from ..threads import configure_threads
from ..tokenization_gexbert import GexBertTokenizer
from .checkpoints import save_final_model
from .model_files import load_config, load_weights
from .pretrain import check_training_set

FINETUNE_TASKS = ("classify", "survival")
TRAINER_DIR = "checkpoints"
HISTORY_FILE = "finetune_history.json"


@dataclass
class FinetuneArguments:
    """Everything a fine-tuning run needs; parsed from the CLI, a script or a JSON file alike."""

    task: str = field(metadata={"help": "classify (class labels) or survival (Cox risk)."})
    model: str = field(metadata={"help": "A pretrained GexBERT directory (e.g. the output of `gexbert pretrain`)."})
    output_dir: str = field(metadata={"help": "Where the best fine-tuned model and its tokenizer are saved."})
    dataset: str | None = field(default=None, metadata={"help": "A `gexbert build-dataset` output directory."})
    genes: str | None = field(default=None, metadata={"help": "Gene panel file, one gene per line."})
    panel_size: int | None = field(default=None, metadata={"help": "Random panel of this many vocabulary genes."})
    panel_seed: int = field(default=0, metadata={"help": "Seed of the random panel."})
    query_unseen: bool = field(default=False, metadata={"help": "Append genes outside the panel as MASK queries."})
    max_queries: int | None = field(default=None, metadata={"help": "At most this many query genes (seeded)."})
    epochs: float = field(default=10, metadata={"help": "Maximum training epochs (early stopping may end sooner)."})
    batch_size: int = field(default=32, metadata={"help": "Samples per batch."})
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak AdamW learning rate (of the new head)."})
    encoder_learning_rate_ratio: float = field(default=1.0, metadata={
        "help": "The pretrained encoder trains at learning_rate x this; below 1 keeps the fresh head's early, "
                "noisy gradients from overwriting what pretraining learned."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Share of steps warming up."})
    early_stopping_patience: int = field(default=3, metadata={"help": "Epochs without improvement before stopping."})
    validation_fraction: float = field(default=0.15, metadata={"help": "Share of train held out for validation "
                                                                        "when the dataset has no validation split."})
    seed: int = field(default=0, metadata={"help": "Seed of the head, data order and gene subsampling."})
    max_genes: int | None = field(default=None, metadata={"help": "Genes sampled per training sample and step "
                                                                   "(default: the model's max_genes); evaluation "
                                                                   "uses this cap too, or every gene when unset."})
    bf16: bool = field(default=False, metadata={"help": "bf16 mixed precision."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing fine-tuned model (only in a "
                                                             "folder an earlier gexbert finetune wrote)."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Deprecated spelling of --overwrite."})

    def __post_init__(self):
        take_deprecated_overwrite(self)


@dataclass
class FinetuneResult:
    model: GexBertPreTrainedModel
    metrics: dict[str, float]
    history: list[dict]


# ----------------------------------------------------------------------------------------------------------------------
# metrics through `evaluate` (defined locally: `evaluate.load` needs the hub, which a laptop or cluster may lack)
# ----------------------------------------------------------------------------------------------------------------------
class ClassificationMetric(evaluate.Metric):
    """Accuracy, macro-F1 and, for two classes given as scores, ROC AUC of the positive class.

    `predictions` are class scores `(samples, classes)` or predicted classes `(samples,)`; with the latter it takes
    the inputs of `evaluate.load("accuracy")`, which needs the Hub, and so stands in for it offline.
    """

    def _info(self) -> evaluate.MetricInfo:
        references = datasets.Value("int64")
        return evaluate.MetricInfo(
            description="accuracy, macro-F1 and binary ROC AUC", citation="",
            inputs_description="class scores or predicted classes",
            features=[datasets.Features({"predictions": datasets.Sequence(datasets.Value("float64")),
                                         "references": references}),
                      datasets.Features({"predictions": datasets.Value("int64"), "references": references})],
        )

    def _compute(self, predictions, references) -> dict[str, float]:
        scores = np.asarray(predictions, dtype=np.float64)
        references = np.asarray(references)
        predicted = scores.argmax(-1) if scores.ndim == 2 else scores.astype(np.int64)
        result = {"accuracy": float(accuracy_score(references, predicted)),
                  "macro_f1": float(f1_score(references, predicted, average="macro"))}
        if scores.ndim == 2 and scores.shape[1] == 2 and len(np.unique(references)) == 2:
            result["roc_auc"] = float(roc_auc_score(references, scores[:, 1]))
        return result


class ConcordanceMetric(evaluate.Metric):
    """Harrell's C-index of risk scores (higher risk = earlier event)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Harrell's concordance index", citation="", inputs_description="risk, time, event",
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("float64"),
                                        "events": datasets.Value("float64")}),
        )

    def _compute(self, predictions, references, events) -> dict[str, float]:
        try:
            return {"c_index": concordance_index(np.asarray(predictions), np.asarray(references), np.asarray(events))}
        except ValueError:  # no comparable pair (no event): uninformative, not an error mid-training
            return {"c_index": 0.5}


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(-1, keepdims=True)


def _classification_metrics(prediction) -> dict[str, float]:
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return ClassificationMetric().compute(predictions=_softmax(np.asarray(logits)),
                                          references=np.asarray(prediction.label_ids).reshape(-1))


def _survival_metrics(prediction) -> dict[str, float]:
    risk = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    time, event = prediction.label_ids
    return ConcordanceMetric().compute(predictions=np.asarray(risk).reshape(-1), references=np.asarray(time),
                                       events=np.asarray(event))


# ----------------------------------------------------------------------------------------------------------------------
# model, panel, data
# ----------------------------------------------------------------------------------------------------------------------
def load_head_model(model: str | Path | GexBertPreTrainedModel, head_class: type, seed: int = 0,
                    **config_overrides) -> GexBertPreTrainedModel:
    """`head_class` with the encoder of `model` (a directory or a loaded GexBERT of any head) and a fresh head."""
    set_seed(seed)  # the new head's initialisation
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not (path / "config.json").is_file():
            raise ExpressionInputError(f"{path}: not a GexBERT model directory (no config.json)")
        config = load_config(head_class.config_class, path)
        for key, value in config_overrides.items():  # new attributes too (the panel), which kwargs would refuse
            setattr(config, key, value)
        return load_weights(head_class, path, config=config)
    if not isinstance(model, GexBertPreTrainedModel):
        raise TypeError(f"model must be a directory or a GexBertPreTrainedModel, got {type(model).__name__}")
    config = copy.deepcopy(model.config)
    for key, value in config_overrides.items():
        setattr(config, key, value)
    config.architectures = [head_class.__name__]
    head = head_class(config)
    encoder = model if isinstance(model, GexBertModel) else model.gexbert
    head.gexbert.load_state_dict(encoder.state_dict())
    return head.to(next(model.parameters()).device)


def panel_ids_and_queries(
    tokenizer: GexBertTokenizer, panel_genes: list[str] | None, query_unseen: bool = False,
    max_queries: int | None = None, seed: int = 0,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Vocabulary ids of the panel, and of the query genes (vocabulary genes outside it, at most `max_queries`)."""
    if panel_genes is None:
        return None, None
    panel_ids = tokenizer.convert_genes_to_ids(list(dict.fromkeys(panel_genes)))
    if not query_unseen:
        return panel_ids, None
    outside = [gene for gene in tokenizer.genes if gene not in set(panel_genes)]
    if max_queries is not None and len(outside) > max_queries:
        chosen = np.random.default_rng([seed, 7919]).choice(len(outside), size=max_queries, replace=False)
        outside = [outside[index] for index in np.sort(chosen)]
    return panel_ids, tokenizer.convert_genes_to_ids(outside)


def read_gene_list(path: str | Path) -> list[str]:
    """Genes of a text file, one a line, `#` starting a comment, duplicates dropped in order."""
    path = Path(path)
    if not path.is_file():
        raise ExpressionInputError(f"{path}: gene list file does not exist")
    genes = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return list(dict.fromkeys(gene for gene in genes if gene))


def choose_panel(tokenizer: GexBertTokenizer, genes_file: str | None = None, panel_size: int | None = None,
                 panel_seed: int = 0) -> list[str] | None:
    """A panel from a file (one gene per line; # comments) or `panel_size` vocabulary genes drawn with `panel_seed`."""
    if genes_file is not None and panel_size is not None:
        raise ValueError("give either a genes file or a panel size, not both")
    if genes_file is not None:
        path = Path(genes_file)
        genes = read_gene_list(path)
        if not genes:
            raise ExpressionInputError(f"{path}: gene panel file names no gene")
        unknown = [gene for gene in genes if gene not in tokenizer.gene_to_index]
        if unknown:
            raise ExpressionInputError(f"{path}: panel genes unknown to the model's vocabulary: {preview(unknown)}")
        return genes
    if panel_size is not None:
        if not 0 < panel_size <= len(tokenizer.genes):
            raise ValueError(f"panel_size must be in 1..{len(tokenizer.genes)}, got {panel_size}")
        chosen = np.random.default_rng(panel_seed).choice(len(tokenizer.genes), size=panel_size, replace=False)
        return [tokenizer.genes[index] for index in np.sort(chosen)]
    return None


class RowDataset(torch.utils.data.Dataset):
    """Index access to an `EncodedSamples` or a tokenized `datasets.Dataset`, one dict per sample, for `Trainer`."""

    def __init__(self, samples):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        return fetch_rows(self.samples, [int(index)])[0]


class _PanelTrainer(Trainer):
    """`Trainer` whose evaluation and prediction batches come from their own deterministic collator."""

    def __init__(self, *args, eval_collator: DataCollatorForExpressionFinetuning, encoder_learning_rate_ratio: float = 1.0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_collator = eval_collator
        self.encoder_learning_rate_ratio = encoder_learning_rate_ratio

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        """Trainer's optimizer, with the pretrained encoder (`gexbert.*`) in its own groups at a scaled rate."""
        if self.optimizer is not None or self.encoder_learning_rate_ratio == 1.0:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        optimizer_class, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        decay = set(self.get_decay_parameter_names(model))
        groups = []
        for encoder in (True, False):
            for decayed in (True, False):
                parameters = [parameter for name, parameter in model.named_parameters()
                              if parameter.requires_grad and name.startswith("gexbert.") == encoder
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


def _collators(tokenizer, model, args: FinetuneArguments, panel_genes):
    panel_ids, query_ids = panel_ids_and_queries(tokenizer, panel_genes, args.query_unseen, args.max_queries,
                                                 args.panel_seed)
    # the collators pass the targets (labels, survival_time, event) through under the heads' argument names
    common = {"panel_ids": panel_ids, "query_ids": query_ids}
    training = DataCollatorForExpressionFinetuning(tokenizer, max_genes=args.max_genes or model.config.max_genes,
                                                   seed=args.seed, **common)
    evaluation = DataCollatorForExpressionFinetuning(tokenizer, max_genes=args.max_genes, seed=args.seed + 1, **common)
    return training, evaluation


def _training_arguments(args: FinetuneArguments, metric: str) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(Path(args.output_dir) / TRAINER_DIR),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=max(args.batch_size, 64),
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_ratio,  # below 1: a share of the steps (transformers 5)
        lr_scheduler_type="linear",
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        save_total_limit=1,
        save_only_model=True,
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=True,
        remove_unused_columns=False,
        report_to=[],
        seed=args.seed,
        data_seed=args.seed,
        bf16=args.bf16,
        disable_tqdm=not args.progress,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def _finetune(model, tokenizer, train, validation, args, panel_genes, task: str, config_overrides: dict
              ) -> FinetuneResult:
    configure_threads()
    output_dir = Path(args.output_dir)
    if (output_dir / "config.json").exists() and not args.overwrite:
        raise OutputExistsError(f"{output_dir} already holds a model; pass --overwrite to replace it")
    inputs = {"--model": model if isinstance(model, (str, Path)) else None, "--dataset": args.dataset}
    folder = claim_output_dir(output_dir, "finetune", inputs, args.overwrite, argument="--output_dir")
    if len(train) == 0 or len(validation) == 0:
        raise ClinicalInputError(f"fine-tuning needs training and validation samples, got {len(train)} and "
                                 f"{len(validation)}")
    head_class = GexBertForSequenceClassification if task == "classify" else GexBertForSurvival
    config_overrides = {**config_overrides, "panel_genes": list(panel_genes) if panel_genes is not None else None,
                        "query_unseen": bool(args.query_unseen and panel_genes is not None),
                        "max_queries": args.max_queries, "panel_seed": args.panel_seed}
    head = load_head_model(model, head_class, seed=args.seed, **config_overrides)
    check_tokenizer_matches(tokenizer, head.config, source=str(model) if isinstance(model, (str, Path)) else "model")
    head.config.tokenizer_fingerprint = tokenizer.fingerprint  # an older checkpoint: record the pair it trains with
    folder.mark()  # only once the inputs are known to be usable: a refused run writes nothing
    if task == "classify":
        label_names, metric, compute = ["labels"], "macro_f1", _classification_metrics
    else:
        label_names, metric, compute = ["survival_time", "event"], "c_index", _survival_metrics
    training_collator, eval_collator = _collators(tokenizer, head, args, panel_genes)
    training_arguments = _training_arguments(args, metric)
    training_arguments.label_names = label_names
    trainer = _PanelTrainer(
        model=head, args=training_arguments, data_collator=training_collator, eval_collator=eval_collator,
        train_dataset=RowDataset(train), eval_dataset=RowDataset(validation), compute_metrics=compute,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience)],
        encoder_learning_rate_ratio=args.encoder_learning_rate_ratio,
    )
    if not args.progress:  # quiet: no per-epoch log lines and no shard-writing bars
        trainer.remove_callback(PrinterCallback)
        hf_logging.disable_progress_bar()
    try:
        trainer.train()
        final = trainer.evaluate()
    finally:
        if not args.progress:
            hf_logging.enable_progress_bar()
    metrics = {key.removeprefix("eval_"): float(value) for key, value in final.items()
               if isinstance(value, (int, float))}
    history = list(trainer.state.log_history)
    best = trainer.model
    if trainer.args.should_save:
        def write_final_model(folder: Path) -> None:
            best.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            (folder / HISTORY_FILE).write_text(json.dumps({"metrics": metrics, "history": history}, indent=1))

        save_final_model(output_dir, write_final_model)  # staged, config.json moved in last
        shutil.rmtree(output_dir / TRAINER_DIR, ignore_errors=True)  # the best model is saved above
    return FinetuneResult(model=best, metrics=metrics, history=history)


def finetune_classifier(
    model: str | Path | GexBertPreTrainedModel,
    tokenizer: GexBertTokenizer,
    train: EncodedSamples,
    validation: EncodedSamples,
    label_names: list[str],
    args: FinetuneArguments,
    panel_genes: list[str] | None = None,
) -> FinetuneResult:
    """Fine-tune a classifier (samples carry `labels`, int codes into `label_names`); best macro-F1 epoch kept."""
    if len(label_names) < 2:
        raise ClinicalInputError(f"classification needs at least two classes, got {label_names}")
    overrides = {"id2label": dict(enumerate(map(str, label_names))),
                 "label2id": {str(name): index for index, name in enumerate(label_names)},
                 "problem_type": "single_label_classification"}
    return _finetune(model, tokenizer, train, validation, args, panel_genes, "classify", overrides)


def finetune_survival(
    model: str | Path | GexBertPreTrainedModel,
    tokenizer: GexBertTokenizer,
    train: EncodedSamples,
    validation: EncodedSamples,
    args: FinetuneArguments,
    panel_genes: list[str] | None = None,
) -> FinetuneResult:
    """Fine-tune a Cox risk model (samples carry `survival_time` and `event`); best C-index epoch kept.

    Each batch is its own risk set, so larger batches give the Cox loss more pairs to rank.
    """
    return _finetune(model, tokenizer, train, validation, args, panel_genes, "survival", {})


# ----------------------------------------------------------------------------------------------------------------------
# prediction
# ----------------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def _forward_all(model, tokenizer, samples, panel_genes, query_unseen, batch_size, max_queries=None,
                 max_genes=None, output: str = "logits") -> np.ndarray:
    configure_threads()
    if panel_genes is None:
        panel_genes = getattr(model.config, "panel_genes", None)
    if max_queries is None:  # the query cap (and its seed, below) the model was fine-tuned with
        max_queries = getattr(model.config, "max_queries", None)
    panel_ids, query_ids = panel_ids_and_queries(tokenizer, panel_genes, query_unseen, max_queries,
                                                 getattr(model.config, "panel_seed", 0))
    collator = DataCollatorForExpressionFinetuning(tokenizer, max_genes=max_genes, panel_ids=panel_ids,
                                                   query_ids=query_ids, seed=1)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    results = []
    for start in range(0, len(samples), batch_size):
        batch = collator(fetch_rows(samples, range(start, min(start + batch_size, len(samples))))).to(device)
        results.append(getattr(model(**batch), output).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(results)


def predict_classes(model, tokenizer: GexBertTokenizer, samples, panel_genes: list[str] | None = None,
                    query_unseen: bool = False, batch_size: int = 64) -> np.ndarray:
    """Class probabilities `(samples, classes)`; `panel_genes=None` uses the panel the model was fine-tuned on."""
    return _softmax(_forward_all(model, tokenizer, samples, panel_genes, query_unseen, batch_size))


def predict_risk(model, tokenizer: GexBertTokenizer, samples, panel_genes: list[str] | None = None,
                 query_unseen: bool = False, batch_size: int = 64) -> np.ndarray:
    """Cox risk scores (log hazard ratios, higher = earlier event); panel as in `predict_classes`."""
    return _forward_all(model, tokenizer, samples, panel_genes, query_unseen, batch_size, output="risk")


# ----------------------------------------------------------------------------------------------------------------------
# the command: a build-dataset folder in, a fine-tuned model (and its test metrics) out
# ----------------------------------------------------------------------------------------------------------------------
def _split_validation(strata: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation positions, stratified by `strata` (class labels or events)."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(strata))
    counts = np.unique(strata, return_counts=True)[1]
    stratify = strata if counts.min() >= 2 else None
    train, validation = train_test_split(positions, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(validation)


def load_finetune_data(args: FinetuneArguments, tokenizer: GexBertTokenizer):
    """(train, validation, test or None, label names) from a build-dataset folder, samples lacking the target out."""
    dataset_dir = Path(args.dataset)
    if not (dataset_dir / "dataset_dict.json").is_file():
        raise ExpressionInputError(f"{dataset_dir}: not a `gexbert build-dataset` output (no dataset_dict.json)")
    dataset_tokenizer = GexBertTokenizer.from_pretrained(dataset_dir)
    if dataset_tokenizer.genes != tokenizer.genes:
        raise ExpressionInputError(
            f"{dataset_dir}: its tokenizer's genes differ from the model's ({len(dataset_tokenizer.genes)} vs "
            f"{len(tokenizer.genes)}); build the dataset with the model's tokenizer or pretrain on this dataset"
        )
    splits = with_model_column_names(datasets.load_from_disk(str(dataset_dir)))
    if "train" not in splits:
        raise ExpressionInputError(f"{dataset_dir}: no train split (splits: {', '.join(splits)})")
    needed = ["labels"] if args.task == "classify" else ["survival_time", "event"]
    missing = [column for column in needed if column not in splits["train"].column_names]
    if missing:
        option = "--label_column" if args.task == "classify" else "--time_column and --event_column"
        raise ClinicalInputError(f"{dataset_dir}: no {preview(missing)} column; build the dataset with {option}")

    def usable(split):
        if args.task == "classify":
            keep = np.asarray(split["labels"]) >= 0
        else:
            keep = np.isfinite(np.asarray(split["survival_time"], dtype=float))
            keep &= np.isfinite(np.asarray(split["event"], dtype=float))
        return split.select(np.flatnonzero(keep))

    train = usable(splits["train"])
    check_training_set(dataset_dir, len(train), batch_size=1, what="its train split (samples with a target)")
    if "validation" in splits:
        validation = usable(splits["validation"])
    else:
        strata = np.asarray(train["labels"] if args.task == "classify" else train["event"])
        fit_rows, validation_rows = _split_validation(strata, args.validation_fraction, args.seed)
        train, validation = train.select(fit_rows), train.select(validation_rows)
    test = usable(splits["test"]) if "test" in splits else None
    label_names = splits["train"].features["labels"].names if args.task == "classify" else None
    return train, validation, test, label_names


def finetune(args: FinetuneArguments) -> FinetuneResult:
    """`gexbert finetune` / `train/finetune.py`: fine-tune, save the best model, report test metrics if any."""
    if args.task not in FINETUNE_TASKS:
        raise ClinicalInputError(f"task must be one of {FINETUNE_TASKS}, got {args.task!r}")
    if args.dataset is None:
        raise ExpressionInputError("fine-tuning needs --dataset, a `gexbert build-dataset` output directory")
    model_dir = Path(args.model)
    tokenizer = GexBertTokenizer.from_pretrained(model_dir if (model_dir / "gexbert_tokenizer.json").is_file()
                                                 else args.dataset)
    train, validation, test, label_names = load_finetune_data(args, tokenizer)
    check_training_set(args.dataset, len(train), args.batch_size, what="its train split less validation")
    panel = choose_panel(tokenizer, args.genes, args.panel_size, args.panel_seed)
    print(f"fine-tuning {args.task} on {len(train)} samples (validation {len(validation)}"
          + (f", test {len(test)}" if test is not None else "") + ")"
          + (f" from a {len(panel)}-gene panel" if panel else ""))
    if args.task == "classify":
        result = finetune_classifier(str(model_dir), tokenizer, train, validation, label_names, args, panel)
    else:
        result = finetune_survival(str(model_dir), tokenizer, train, validation, args, panel)
    summary = {"validation": result.metrics}
    if test is not None and len(test):
        query = bool(getattr(result.model.config, "query_unseen", False))
        if args.task == "classify":
            probabilities = predict_classes(result.model, tokenizer, test, query_unseen=query)
            summary["test"] = ClassificationMetric().compute(predictions=probabilities,
                                                             references=np.asarray(test["labels"]))
        else:
            risk = predict_risk(result.model, tokenizer, test, query_unseen=query)
            summary["test"] = ConcordanceMetric().compute(predictions=risk, references=np.asarray(test["survival_time"]),
                                                          events=np.asarray(test["event"]))
        result.metrics.update({f"test_{key}": value for key, value in summary["test"].items()})
    (Path(args.output_dir) / "finetune_metrics.json").write_text(json.dumps(summary, indent=1))
    for name, metrics in summary.items():
        print(f"{name}: " + ", ".join(f"{key} {value:.4f}" for key, value in metrics.items()
                                      if key in ("accuracy", "macro_f1", "roc_auc", "c_index", "loss")))
    print(f"saved the best model to {args.output_dir}")
    return result


def finetune_from_arguments(args: FinetuneArguments) -> int:
    """The `gexbert finetune` entry point."""
    finetune(args)
    return 0


__all__ = [
    "finetune", "finetune_from_arguments", "load_finetune_data",
    "FinetuneArguments", "FinetuneResult", "finetune_classifier", "finetune_survival", "predict_classes",
    "predict_risk", "load_head_model", "choose_panel", "panel_ids_and_queries", "RowDataset",
]
