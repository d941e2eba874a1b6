"""Fine-tuning glue: Hugging Face `Trainer` on a pretrained GexBERT for classification and survival.

The pretrained encoder (`gexbert.*` weights) is carried into a fresh head; a gene panel restricts what the model sees
(the limited-panel experiments), optionally with the genes outside the panel appended as MASK queries. The panel is
stored in the fine-tuned model's config, so `predict_*` and `gexbert predict` see exactly what training saw.
`finetune_classifier` / `finetune_survival` take plain options (`FinetuningOptions`) and an optional output folder;
`FinetuneArguments` and `finetune` are the command around them. The Trainer itself is set up in `trainer.py`.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from transformers import set_seed

from ..data.encoding import with_model_column_names
from ..data.gene_ids import read_gene_list
from ..data.samples import EncodedSamples
from ..data.splits import split_validation
from ..errors import ClinicalInputError, ExpressionInputError, OutputExistsError, preview
from ..inference import class_probabilities, predict, softmax
from ..loading import check_tokenizer_matches, load_config, load_weights, resolve_model
from ..metrics import concordance_index
from ..modeling_gexbert import (
    GexBertForSequenceClassification,
    GexBertForSurvival,
    GexBertModel,
    GexBertPreTrainedModel,
)
from ..outputs import OutputFolder, claim_output_dir, refuse_overlap, take_deprecated_overwrite
from ..threads import configure_threads
from ..tokenization_gexbert import GexBertTokenizer
from .checkpoints import save_final_model
from .options import FinetuningOptions
from .pretrain import check_training_set
from .probe_head import fit_probe_head
from .trainer import RowDataset, build_trainer, train_best_epoch

FINETUNE_TASKS = ("classify", "survival")
TRAINER_DIR = "checkpoints"
HISTORY_FILE = "finetune_history.json"


@dataclass
class FinetuneArguments(FinetuningOptions):
    """`gexbert finetune`: the options above plus the task, the pretrained model, the dataset, the panel and the
    output folder; parsed from the CLI, a script or a JSON file alike."""

    task: str = field(metadata={"help": "classify (class labels) or survival (Cox risk)."})
    model: str = field(metadata={"help": "A pretrained GexBERT directory (e.g. the output of `gexbert pretrain`)."})
    output_dir: str = field(metadata={"help": "Where the best fine-tuned model and its tokenizer are saved."})
    dataset: str | None = field(default=None, metadata={"help": "A `gexbert build-dataset` output directory."})
    genes: str | None = field(default=None, metadata={"help": "Gene panel file, one gene per line."})
    panel_size: int | None = field(default=None, metadata={"help": "Random panel of this many vocabulary genes."})
    validation_fraction: float = field(default=0.15, metadata={"help": "Share of train held out for validation "
                                                                        "when the dataset has no validation split."})
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


def _classification_metrics(prediction) -> dict[str, float]:
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return ClassificationMetric().compute(predictions=softmax(np.asarray(logits)),
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
        path = Path(resolve_model(model))
        if not (path / "config.json").is_file():
            raise ExpressionInputError(f"{path}: not a GexBERT model directory (no config.json)")
        config = load_config(head_class.config_class, path)
        for key, value in config_overrides.items():  # declared GexBertConfig fields (the panel) and head options
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
    for part in ("decoder", "level_head"):  # the restoration decoder a value-reading classifier carries over
        if hasattr(head, part) and hasattr(model, part):
            getattr(head, part).load_state_dict(getattr(model, part).state_dict())
    return head.to(next(model.parameters()).device)


def has_restoration_decoder(model: str | Path | GexBertPreTrainedModel) -> bool:
    """Whether `model` carries a trained restoration decoder (a masked-expression checkpoint, or a classifier that
    reads restored values) for a value-reading classifier to start from."""
    if isinstance(model, (str, Path)):
        config = load_config(GexBertPreTrainedModel.config_class, Path(resolve_model(model)))
        return ("GexBertForMaskedExpression" in (config.architectures or [])
                or bool(getattr(config, "classifier_reads_values", False)))
    return hasattr(model, "decoder") and hasattr(model, "level_head")


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


@contextmanager
def _trainer_dir(output_dir: str | Path | None) -> Iterator[Path]:
    """Where the Trainer keeps its epoch checkpoints: inside the output folder, or a temporary folder without one;
    removed once training is done (the best model is returned, and saved by the caller)."""
    if output_dir is None:
        with tempfile.TemporaryDirectory(prefix="gexbert-finetune-") as folder:
            yield Path(folder)
        return
    yield Path(output_dir) / TRAINER_DIR
    shutil.rmtree(Path(output_dir) / TRAINER_DIR, ignore_errors=True)


# task -> (the targets a batch carries, the metric choosing the best epoch, its computation)
TASK_TARGETS = {"classify": (["labels"], "macro_f1", _classification_metrics),
                "survival": (["survival_time", "event"], "c_index", _survival_metrics)}


def _finetune(model, tokenizer: GexBertTokenizer, train, validation, options: FinetuningOptions,
              panel_genes: list[str] | None, task: str, config_overrides: dict, output_dir: str | Path | None,
              overwrite: bool) -> FinetuneResult:
    """Check, build the head, train with early stopping, and save the best model where `output_dir` says."""
    configure_threads()
    folder = None if output_dir is None else _claim_output(Path(output_dir), model, overwrite)
    if len(train) == 0 or len(validation) == 0:
        raise ClinicalInputError(f"fine-tuning needs training and validation samples, got {len(train)} and "
                                 f"{len(validation)}")
    head = _head(model, tokenizer, task, options, panel_genes, config_overrides)
    if folder is not None:
        folder.mark()  # only once the inputs are known to be usable: a refused run writes nothing
    with _trainer_dir(output_dir) as trainer_dir:
        label_names, metric, compute = TASK_TARGETS[task]
        trainer = build_trainer(head, tokenizer, train, validation, options, panel_genes, trainer_dir,
                                label_names, metric, compute)
        if task == "classify" and options.probe_init:
            metrics, history = _train_from_probe(trainer, train, validation, options, metric)
        else:
            metrics, history = train_best_epoch(trainer, options.progress)
        best = trainer.model
        if output_dir is not None and trainer.args.should_save:
            def write_final_model(folder: Path) -> None:
                best.save_pretrained(folder)
                tokenizer.save_pretrained(folder)
                (folder / HISTORY_FILE).write_text(json.dumps({"metrics": metrics, "history": history}, indent=1))

            save_final_model(Path(output_dir), write_final_model)  # staged, config.json moved in last
    return FinetuneResult(model=best, metrics=metrics, history=history)


def _train_from_probe(trainer, train, validation, options: FinetuningOptions, metric: str
                      ) -> tuple[dict[str, float], list[dict]]:
    """LP-FT: the head fitted as a linear probe on frozen features, then fine-tuned end to end; the probe itself
    stays the model where no epoch beats it on validation `metric`, so fine-tuning never ends below it there."""
    head = trainer.model
    probe = fit_probe_head(head, trainer.get_test_dataloader(RowDataset(train)),
                           trainer.get_test_dataloader(RowDataset(validation)), seed=options.seed)
    if options.epochs <= 0:  # the probe alone: its validation scores are known without another pass
        return dict(probe["validation"]), [{"probe": probe, "kept_probe": True}]
    started = {key.removeprefix("eval_"): float(value) for key, value in trainer.evaluate().items()
               if isinstance(value, (int, float))}
    probe_state = {key: value.detach().clone() for key, value in head.state_dict().items()}
    metrics, history = train_best_epoch(trainer, options.progress)
    if started[metric] >= metrics[metric]:
        trainer.model.load_state_dict(probe_state)
        metrics = started
    history.insert(0, {"probe": {**probe, **{f"eval_{key}": value for key, value in started.items()}},
                       "kept_probe": metrics is started})
    return metrics, history


def _claim_output(output_dir: Path, model, overwrite: bool) -> OutputFolder:
    """The output folder, checked (not yet marked): no model replaced without `overwrite`, never the source model."""
    if (output_dir / "config.json").exists() and not overwrite:
        raise OutputExistsError(f"{output_dir} already holds a model; pass --overwrite to replace it")
    inputs = {"--model": model if isinstance(model, (str, Path)) else None}
    return claim_output_dir(output_dir, "finetune", inputs, overwrite, argument="--output_dir")


def _head(model, tokenizer: GexBertTokenizer, task: str, options: FinetuningOptions, panel_genes: list[str] | None,
          config_overrides: dict) -> GexBertPreTrainedModel:
    """The task's head on the pretrained encoder, its config recording the panel, queries and tokenizer."""
    head_class = GexBertForSequenceClassification if task == "classify" else GexBertForSurvival
    if task == "classify":
        reads_values = bool(options.classifier_reads_values and has_restoration_decoder(model))
        config_overrides["classifier_reads_values"] = reads_values
        config_overrides["classifier_hidden_size"] = options.classifier_hidden_size if reads_values else 0
    config_overrides = {**config_overrides, "panel_genes": list(panel_genes) if panel_genes is not None else None,
                        "query_unseen": bool(options.query_unseen and panel_genes is not None),
                        "max_queries": options.max_queries, "panel_seed": options.panel_seed}
    head = load_head_model(model, head_class, seed=options.seed, **config_overrides)
    check_tokenizer_matches(tokenizer, head.config, source=str(model) if isinstance(model, (str, Path)) else "model")
    head.config.tokenizer_fingerprint = tokenizer.fingerprint  # an older checkpoint: record the pair it trains with
    return head


def finetune_classifier(
    model: str | Path | GexBertPreTrainedModel,
    tokenizer: GexBertTokenizer,
    train: EncodedSamples,
    validation: EncodedSamples,
    label_names: list[str],
    options: FinetuningOptions | None = None,
    panel_genes: list[str] | None = None,
    output_dir: str | Path | None = None,
    overwrite: bool = False,
) -> FinetuneResult:
    """Fine-tune a classifier (samples carry `labels`, int codes into `label_names`); best macro-F1 epoch kept.

    `output_dir` receives the best model, its tokenizer and the training history (replacing an earlier
    `gexbert finetune` model there only with `overwrite`); without one nothing is written.
    """
    if len(label_names) < 2:
        raise ClinicalInputError(f"classification needs at least two classes, got {label_names}")
    overrides = {"id2label": dict(enumerate(map(str, label_names))),
                 "label2id": {str(name): index for index, name in enumerate(label_names)},
                 "problem_type": "single_label_classification"}
    return _finetune(model, tokenizer, train, validation, options or FinetuningOptions(), panel_genes, "classify",
                     overrides, output_dir, overwrite)


def finetune_survival(
    model: str | Path | GexBertPreTrainedModel,
    tokenizer: GexBertTokenizer,
    train: EncodedSamples,
    validation: EncodedSamples,
    options: FinetuningOptions | None = None,
    panel_genes: list[str] | None = None,
    output_dir: str | Path | None = None,
    overwrite: bool = False,
) -> FinetuneResult:
    """Fine-tune a Cox risk model (samples carry `survival_time` and `event`); best C-index epoch kept; output as
    in `finetune_classifier`.

    Each batch is its own risk set, so larger batches give the Cox loss more pairs to rank.
    """
    return _finetune(model, tokenizer, train, validation, options or FinetuningOptions(), panel_genes, "survival",
                     {}, output_dir, overwrite)


# ----------------------------------------------------------------------------------------------------------------------
# the command: a build-dataset folder in, a fine-tuned model (and its test metrics) out
# ----------------------------------------------------------------------------------------------------------------------
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
        if not 0.0 < args.validation_fraction < 1.0:
            raise ClinicalInputError(f"--validation_fraction must be in (0, 1) to carve validation samples out of "
                                     f"the train split of {dataset_dir}, got {args.validation_fraction}")
        strata = np.asarray(train["labels"] if args.task == "classify" else train["event"])
        held = split_validation(strata, args.validation_fraction, args.seed)
        train, validation = train.select(np.flatnonzero(~held)), train.select(np.flatnonzero(held))
    test = usable(splits["test"]) if "test" in splits else None
    label_names = splits["train"].features["labels"].names if args.task == "classify" else None
    return train, validation, test, label_names


def finetune(args: FinetuneArguments) -> FinetuneResult:
    """`gexbert finetune` / `train/finetune.py`: fine-tune, save the best model, report test metrics if any."""
    if args.task not in FINETUNE_TASKS:
        raise ClinicalInputError(f"task must be one of {FINETUNE_TASKS}, got {args.task!r}")
    if args.dataset is None:
        raise ExpressionInputError("fine-tuning needs --dataset, a `gexbert build-dataset` output directory")
    model_dir = Path(resolve_model(args.model))
    tokenizer = GexBertTokenizer.from_pretrained(model_dir if (model_dir / "gexbert_tokenizer.json").is_file()
                                                 else args.dataset)
    train, validation, test, label_names = load_finetune_data(args, tokenizer)
    check_training_set(args.dataset, len(train), args.batch_size, what="its train split less validation")
    panel = choose_panel(tokenizer, args.genes, args.panel_size, args.panel_seed)
    print(f"fine-tuning {args.task} on {len(train)} samples (validation {len(validation)}"
          + (f", test {len(test)}" if test is not None else "") + ")"
          + (f" from a {len(panel)}-gene panel" if panel else ""))
    refuse_overlap(Path(args.output_dir), {"--dataset": args.dataset})  # the library call checks the rest
    output = {"output_dir": args.output_dir, "overwrite": args.overwrite}
    if args.task == "classify":
        result = finetune_classifier(str(model_dir), tokenizer, train, validation, label_names, args, panel, **output)
    else:
        result = finetune_survival(str(model_dir), tokenizer, train, validation, args, panel, **output)
    summary = {"validation": dict(result.metrics)}  # a copy: the test scores added to result.metrics stay out of it
    if test is not None and len(test):
        if args.task == "classify":
            probabilities = class_probabilities(predict(result.model, tokenizer, test))
            summary["test"] = ClassificationMetric().compute(predictions=probabilities,
                                                             references=np.asarray(test["labels"]))
        else:
            risk = predict(result.model, tokenizer, test)["risk"].to_numpy()
            summary["test"] = ConcordanceMetric().compute(predictions=risk, references=np.asarray(test["survival_time"]),
                                                          events=np.asarray(test["event"]))
        result.metrics.update({f"test_{key}": value for key, value in summary["test"].items()})
    (Path(args.output_dir) / "finetune_metrics.json").write_text(json.dumps(summary, indent=1))
    for name, metrics in summary.items():
        print(f"{name}: " + ", ".join(f"{key} {value:.4f}" for key, value in metrics.items()
                                      if key in ("accuracy", "macro_f1", "roc_auc", "c_index", "loss")))
    print(f"saved the best model to {args.output_dir}")
    return result

__all__ = [
    "FinetuneArguments", "FinetuneResult", "FinetuningOptions", "choose_panel", "finetune", "finetune_classifier",
    "finetune_survival", "has_restoration_decoder", "load_finetune_data", "load_head_model",
]
