"""Masked-expression pretraining driven by Accelerate: one loop for one CPU, one GPU or many processes.

The loop owns its data order (a seeded permutation per epoch, sharded by rank) instead of a DataLoader, so a
checkpoint records the exact data position and `resume` ends with the same weights as an uninterrupted run.
Checkpoints hold weights, optimizer, scheduler, RNG and collator states in safetensors + JSON (see `train_state`
and `state_files`): resuming never unpickles anything.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup
from transformers.utils import FEATURE_EXTRACTOR_NAME

from ..data.collator import DataCollatorForMaskedExpression
from ..data.samples import fetch_rows
from ..data.splits import held_out_mask
from ..errors import ExpressionInputError, OutputExistsError
from ..hub import REMOTE_CODE_FILES, refuse_offline_push
from ..inference import forward_batches
from ..modeling_gexbert import GexBertForMaskedExpression
from ..outputs import InputPaths, claim_output_dir, take_deprecated_overwrite
from ..threads import configure_threads
from ..tokenization_gexbert import TOKENIZER_ARRAYS_NAME, TOKENIZER_CONFIG_NAME, GexBertTokenizer
from .checkpoints import CONFIG_FILE, STAGING_PREFIX, latest_usable_checkpoint, list_checkpoints, save_final_model
from .options import PretrainingOptions, TrainingArgumentError
from .run_log import METRICS_FILE, TENSORBOARD_DIR, RunLog, truncate_metrics
from .sample_hashes import training_sample_hashes
from .train_state import (
    TrainingParts,
    checkpoint_files,
    read_checkpoint,
    restore,
    run_arguments,
    save_checkpoint,
)

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
FINAL_MODEL_FILES = (CONFIG_FILE, "model.safetensors", "model.safetensors.index.json", *REMOTE_CODE_FILES,
                     TOKENIZER_CONFIG_NAME, TOKENIZER_ARRAYS_NAME, FEATURE_EXTRACTOR_NAME)
MAX_VALIDATION_SAMPLES = 1000  # enough for a stable held-out loss; more only slows every evaluation
HELD_OUT_STREAM = 17  # the random stream of the seed that carves the held-out part


@dataclass
class PretrainArguments(PretrainingOptions):
    """`gexbert pretrain`: the options above plus the dataset, the output folder and the model to build; parsed from
    the CLI, a script or a JSON file alike."""

    output_dir: str = field(metadata={"help": "Where checkpoints, metrics and the final model go."})
    dataset: str | None = field(default=None, metadata={"help": "A `gexbert build-dataset` output directory."})
    preset: str = field(default="small", metadata={"help": "Model size preset: tiny, small or base."})
    config_file: str | None = field(default=None, metadata={"help": "JSON of GexBertConfig overrides."})
    value_embedding: str | None = field(default=None, metadata={"help": "level, continuous or both."})
    resume: bool = field(default=False, metadata={"help": "Continue from the newest complete checkpoint."})
    overwrite: bool = field(default=False, metadata={"help": "Allow replacing a finished run (only in a folder an "
                                                             "earlier gexbert pretrain wrote)."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Deprecated spelling of --overwrite."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Hub repo id to upload the final model to."})
    validation_fraction: float = field(default=0.1, metadata={
        "help": "Share of train held out (seeded, at most 1000 samples) for the held-out restoration loss when "
                "the dataset has no validation split; the test split is never read."})

    def __post_init__(self):
        take_deprecated_overwrite(self)


@dataclass
class PretrainResult:
    model: GexBertForMaskedExpression
    steps: int
    final_loss: float
    eval_loss: float | None
    seconds: float
    history: list[dict]


class EpochSampler:
    """Seeded permutation per epoch; each micro-batch takes one contiguous slice per rank (last partial dropped)."""

    def __init__(self, num_samples: int, batch_size: int, world_size: int, rank: int, seed: int):
        self.num_samples, self.batch_size, self.world_size, self.rank, self.seed = (
            num_samples, batch_size, world_size, rank, seed)
        self.batches_per_epoch = num_samples // (batch_size * world_size)
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"{num_samples} training samples cannot fill one batch of {batch_size} x {world_size} processes; "
                "lower batch_size"
            )

    def batch(self, position: int) -> np.ndarray:
        """Indices of the `position`-th micro-batch of the run, for this rank."""
        epoch, offset = divmod(position, self.batches_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        start = (offset * self.world_size + self.rank) * self.batch_size
        return order[start : start + self.batch_size]


def check_training_set(dataset, n_samples: int, batch_size: int, processes: int = 1, n_genes: int | None = None,
                       what: str = "its train split") -> None:
    """Refuse, before anything is written, a training set that cannot fill one batch or teach anything: a single
    sample, a batch larger than the set, or (for pretraining, `n_genes`) one gene, where masking one leaves no
    context to restore it from and nothing is ever masked (the loss reads 0.000)."""
    if n_samples < 2:
        raise TrainingArgumentError(f"--dataset {dataset}: {what} holds {n_samples} sample(s); training needs at "
                                    "least 2")
    if n_genes is not None and n_genes < 2:
        raise TrainingArgumentError(f"--dataset {dataset}: {n_genes} gene; masked-expression pretraining restores "
                                    "hidden genes from the others and needs at least 2")
    if not 1 <= batch_size * processes <= n_samples:
        per_process = f" x {processes} processes" if processes > 1 else ""
        raise TrainingArgumentError(f"--batch_size {batch_size}{per_process} does not fit {what} of {dataset} "
                                    f"({n_samples} samples); use 1 to {n_samples // processes}")


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "norm" in name.lower() else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_accelerator(mixed_precision: str, gradient_accumulation_steps: int = 1) -> Accelerator:
    """An Accelerator, refusing fp16 where it cannot run instead of silently training in fp32."""
    if mixed_precision not in ("no", "bf16", "fp16"):
        raise TrainingArgumentError(f"mixed_precision must be no, bf16 or fp16, got {mixed_precision!r}")
    if mixed_precision == "fp16" and not torch.cuda.is_available():
        raise TrainingArgumentError("mixed_precision='fp16' needs a CUDA GPU; on CPU use 'bf16' or 'no'")
    return Accelerator(mixed_precision=mixed_precision, gradient_accumulation_steps=gradient_accumulation_steps)


def evaluate_restoration(
    model: torch.nn.Module, tokenizer: GexBertTokenizer, samples, batch_size: int, max_genes: int | None,
    mask_fraction: float, seed: int = 12345,
) -> dict[str, float]:
    """Held-out restoration loss and level accuracy under a fixed masking, comparable across steps and runs."""
    collator = DataCollatorForMaskedExpression(tokenizer, max_genes=max_genes, mask_fraction=mask_fraction, seed=seed)

    def read(outputs, batch) -> tuple[float, int, int]:
        targets = batch["labels"] != -100
        count = int(targets.sum())
        return float(outputs.loss) * count, int((outputs.level_logits.argmax(-1) == batch["labels"])[targets].sum()), count

    parts = forward_batches(model, len(samples), batch_size, lambda rows: collator(fetch_rows(samples, rows)), read)
    total_loss, total_correct, total_targets = (sum(values) for values in zip(*parts)) if parts else (0.0, 0, 0)
    return {"eval_loss": total_loss / max(total_targets, 1), "eval_level_accuracy": total_correct / max(total_targets, 1)}


def pretrain_model(
    model: GexBertForMaskedExpression,
    tokenizer: GexBertTokenizer,
    train_samples,
    options: PretrainingOptions,
    eval_samples=None,
    accelerator: Accelerator | None = None,
    output_dir: str | Path | None = None,
    resume: bool = False,
) -> PretrainResult:
    """Train `model` in place on `train_samples` (an `EncodedSamples` or a tokenized `datasets.Dataset`).

    `output_dir` receives `metrics.jsonl`, TensorBoard logs and a checkpoint every `save_steps`; without one the run
    stays in memory (its history is in the result). `resume` continues from the folder's newest usable checkpoint.
    """
    if resume and output_dir is None:
        raise TrainingArgumentError("resume continues a run from its checkpoints: give the output_dir holding them")
    configure_threads()
    accelerator = accelerator or make_accelerator(options.mixed_precision, options.gradient_accumulation_steps)
    set_seed(options.seed)
    output_dir = None if output_dir is None else Path(output_dir)
    parts, sampler, max_genes = _training_parts(model, tokenizer, len(train_samples), options, accelerator)
    run = run_arguments(accelerator.unwrap_model(parts.model).config, tokenizer, train_samples, options, max_genes,
                        accelerator.num_processes)
    step, position, history = _start_or_resume(parts, output_dir, run, resume, options.save_steps)
    progress = tqdm(total=options.max_steps, initial=step, desc="pretraining", unit="step",
                    disable=not (options.progress and accelerator.is_main_process))
    parts.model.train()
    started, log = time.perf_counter(), RunLog(output_dir if accelerator.is_main_process else None, step)
    loss_value, eval_metrics = float("nan"), {}
    while step < options.max_steps:
        loss_value = _optimizer_step(parts, train_samples, sampler, position, options, log)
        position += options.gradient_accumulation_steps
        step += 1
        progress.update(1)
        final = step == options.max_steps or _out_of_time(started, options.max_seconds, step, accelerator)
        if step % options.logging_steps == 0 or final:
            record = log.record(step, loss_value, parts.scheduler.get_last_lr()[0])
            if eval_samples is not None and (step % options.eval_steps == 0 or final):
                eval_metrics = _evaluate_on_main(parts, tokenizer, eval_samples, options, max_genes)
                record.update(eval_metrics)
            history.append(record)
            progress.set_postfix(loss=f"{loss_value:.3f}", lr=f"{record['learning_rate']:.2e}",
                                 samples_s=f"{record['samples_per_second']:.0f}")
            log.write(record)
        if final:
            break
        if output_dir is not None and options.save_steps and step % options.save_steps == 0:
            save_checkpoint(parts, output_dir / CHECKPOINT_DIR, step,
                            {"position": position, "history": history, "run": run}, options.save_total_limit)
    progress.close()
    log.close()
    return PretrainResult(model=accelerator.unwrap_model(parts.model), steps=step, final_loss=loss_value,
                          eval_loss=eval_metrics.get("eval_loss"), seconds=time.perf_counter() - started,
                          history=history)


def _out_of_time(started: float, max_seconds: float | None, step: int, accelerator: Accelerator) -> bool:
    """True once `max_seconds` of training have passed; with several processes, once any has seen it, so all stop at
    the same step and none waits for another's next step."""
    if max_seconds is None:
        return False
    over = time.perf_counter() - started > max_seconds
    if accelerator.num_processes > 1:
        flag = torch.tensor([float(over)], device=accelerator.device)
        over = bool(accelerator.reduce(flag, reduction="max").item())
    if over:
        accelerator.print(f"stopping at step {step}: the {max_seconds:.0f} s time limit is spent")
    return over


def _training_parts(model: GexBertForMaskedExpression, tokenizer: GexBertTokenizer, n_samples: int,
                    options: PretrainingOptions, accelerator: Accelerator
                    ) -> tuple[TrainingParts, EpochSampler, int]:
    """Collator, data order, optimiser and schedule of a run, prepared by Accelerate; and the genes per sample."""
    max_genes = options.max_genes or model.config.max_genes
    if options.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    collator = DataCollatorForMaskedExpression(tokenizer, max_genes=max_genes, mask_fraction=options.mask_fraction,
                                               max_mask_fraction=options.max_mask_fraction, seed=options.seed,
                                               rank=accelerator.process_index)
    sampler = EpochSampler(n_samples, options.batch_size, accelerator.num_processes, accelerator.process_index,
                           options.seed)
    optimizer = torch.optim.AdamW(_parameter_groups(model, options.weight_decay), lr=options.learning_rate)
    scheduler = get_cosine_schedule_with_warmup(optimizer, math.ceil(options.warmup_ratio * options.max_steps),
                                                options.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    return TrainingParts(accelerator, model, optimizer, scheduler, collator), sampler, max_genes


def _optimizer_step(parts: TrainingParts, train_samples, sampler: EpochSampler, position: int,
                    options: PretrainingOptions, log: RunLog) -> float:
    """One optimiser step over `gradient_accumulation_steps` micro-batches from data position `position`; returns
    the step's mean loss."""
    accelerator, model = parts.accelerator, parts.model
    running = 0.0
    for offset in range(options.gradient_accumulation_steps):
        batch = parts.collator(fetch_rows(train_samples, sampler.batch(position + offset))).to(accelerator.device)
        with accelerator.accumulate(model):
            loss = model(**batch).loss
            accelerator.backward(loss)
            running += float(loss.detach()) / options.gradient_accumulation_steps
            if accelerator.sync_gradients and options.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), options.max_grad_norm)
            parts.optimizer.step()
            parts.optimizer.zero_grad(set_to_none=True)
        log.samples += len(batch["input_ids"]) * accelerator.num_processes
    parts.scheduler.step()
    return running


def evaluation_mask_fraction(options: PretrainingOptions) -> float:
    """The one rate held-out restoration is scored at: the training rate, or the middle of the training range."""
    if options.max_mask_fraction is None:
        return options.mask_fraction
    return round((options.mask_fraction + options.max_mask_fraction) / 2, 6)


def _evaluate_on_main(parts: TrainingParts, tokenizer: GexBertTokenizer, eval_samples, options: PretrainingOptions,
                      max_genes: int) -> dict[str, float]:
    """Held-out restoration on the main process (the others wait); empty on the others."""
    metrics = {}
    if parts.accelerator.is_main_process:
        metrics = evaluate_restoration(parts.accelerator.unwrap_model(parts.model), tokenizer, eval_samples,
                                       options.batch_size, max_genes, evaluation_mask_fraction(options))
    parts.accelerator.wait_for_everyone()
    return metrics


def _start_or_resume(parts: TrainingParts, output_dir: Path | None, run: dict, resume: bool, save_steps: int
                     ) -> tuple[int, int, list[dict]]:
    """(step, data position, history) to start from: the newest usable checkpoint of this run, or zero."""
    if output_dir is None:
        return 0, 0, []
    root = output_dir / CHECKPOINT_DIR
    if not resume:
        if save_steps and list_checkpoints(root):
            raise OutputExistsError(f"{root} holds checkpoints of an earlier run; resume it, or remove them "
                                    "(`gexbert pretrain --overwrite`) before starting a new one")
        return 0, 0, []
    found = latest_usable_checkpoint(root, checkpoint_files(parts.accelerator.num_processes),
                                     lambda path, state: read_checkpoint(parts, path, state, run))
    state = {"step": 0, "position": 0, "history": []}
    if found is None:
        if list_checkpoints(root):
            logger.warning("no usable checkpoint in %s: starting from step 0", root)
    else:
        path, state, loaded = found
        restore(parts, loaded)
        parts.accelerator.print(f"resumed from {path} at step {state['step']}")
    if parts.accelerator.is_main_process:
        truncate_metrics(output_dir, state["step"])
    return state["step"], state["position"], state.get("history", [])


def check_output_dir(output_dir: Path, resume: bool, overwrite: bool, inputs: InputPaths | None = None) -> None:
    """A finished run (config.json present) is never replaced unless asked; a resumable one needs `resume`; only a
    folder an earlier `gexbert pretrain` marked is overwritten, never one holding `inputs` (the dataset). Marks it."""
    if (output_dir / "config.json").exists() and not overwrite:
        raise OutputExistsError(f"{output_dir} already holds a trained model; pass --overwrite to replace it")
    if (output_dir / CHECKPOINT_DIR).exists() and not resume and not overwrite:
        raise OutputExistsError(
            f"{output_dir} holds checkpoints of an unfinished run; pass --resume to continue it or "
            "--overwrite to start again"
        )
    claim_output_dir(output_dir, "pretrain", inputs, overwrite, resume=resume, argument="--output_dir").mark()


def clear_previous_run(output_dir: Path) -> None:
    """What `--overwrite` removes, by name: the previous run's checkpoints, metrics, TensorBoard logs,
    staging folders and final model (its README.md model card only beside its config.json). Anything else in the
    folder is not this command's and stays."""
    names = [CHECKPOINT_DIR, METRICS_FILE, f"{METRICS_FILE}.tmp", TENSORBOARD_DIR, *FINAL_MODEL_FILES]
    if (output_dir / CONFIG_FILE).is_file():
        names.append("README.md")
    names += [path.name for path in output_dir.glob("model-*-of-*.safetensors")]
    names += [path.name for path in output_dir.glob(f"{STAGING_PREFIX}*")]
    for name in names:
        path = output_dir / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)


def split_held_out(splits, fraction: float, seed: int) -> tuple[object, object | None, str]:
    """(train, held-out, description): the dataset's `validation` split, else a seeded part carved from train.

    Never `test`: choosing checkpoints or settings by the test split's loss would leak it into every later result.
    """
    if "validation" in splits:
        return splits["train"], splits["validation"], "the validation split"
    if not 0.0 <= fraction < 1.0:
        raise TrainingArgumentError(f"validation_fraction must be in [0, 1), got {fraction}")
    train = splits["train"]
    # at most MAX_VALIDATION_SAMPLES, from pretraining's own random stream of the seed
    capped = min(fraction, MAX_VALIDATION_SAMPLES / max(len(train), 1))
    held = held_out_mask(len(train), capped, np.random.default_rng([seed, HELD_OUT_STREAM]), min_per_stratum=0)
    if not held.any():
        return train, None, "nothing (no validation split, validation_fraction 0)"
    return (train.select(np.flatnonzero(~held)), train.select(np.flatnonzero(held)),
            f"{int(held.sum())} samples carved from train (seed {seed})")


def pretrain(args: PretrainArguments) -> PretrainResult:
    """`gexbert pretrain` / `train/pretrain.py`: a build-dataset folder in, a `from_pretrained`-ready model out.

    Launch under `accelerate launch` for several processes; only the main process writes the final model.
    """
    import datasets

    from ..data.encoding import with_model_column_names  # imports `datasets`: only the dataset-folder path needs it
    from .presets import build_config

    if args.dataset is None:
        raise ExpressionInputError("pretraining needs --dataset, a `gexbert build-dataset` output directory")
    if args.push_to_hub:
        refuse_offline_push(args.push_to_hub)  # before the training, not after it
    dataset_dir = Path(args.dataset)
    if not (dataset_dir / "dataset_dict.json").is_file():
        raise ExpressionInputError(f"{dataset_dir}: not a `gexbert build-dataset` output (no dataset_dict.json)")
    output_dir = Path(args.output_dir)
    if args.resume and args.overwrite:
        raise TrainingArgumentError("--resume continues the run in the output folder and --overwrite "
                                    "discards it; pass one of them")
    accelerator = make_accelerator(args.mixed_precision, args.gradient_accumulation_steps)
    tokenizer = GexBertTokenizer.from_pretrained(dataset_dir)
    splits = with_model_column_names(datasets.load_from_disk(str(dataset_dir)))
    if "train" not in splits:
        raise ExpressionInputError(f"{dataset_dir}: no train split (splits: {', '.join(splits)})")
    train, held_out, held_out_name = split_held_out(splits, args.validation_fraction, args.seed)
    check_training_set(dataset_dir, len(train), args.batch_size, accelerator.num_processes,
                       n_genes=len(tokenizer.genes))
    try:
        config = build_config(tokenizer, args.preset, args.config_file, value_embedding=args.value_embedding)
    except (ValueError, FileNotFoundError) as error:
        raise TrainingArgumentError(str(error)) from error
    check_output_dir(output_dir, args.resume, args.overwrite, {"--dataset": dataset_dir})  # marks the folder: after every check of the inputs
    set_seed(args.seed)  # the initial weights
    model = GexBertForMaskedExpression(config)
    if args.overwrite and accelerator.is_main_process and output_dir.is_dir():
        clear_previous_run(output_dir)  # only once the data and model are known to be usable
    accelerator.wait_for_everyone()
    accelerator.print(f"pretraining {model.num_parameters():,} parameters on {len(train)} samples x "
                      f"{len(tokenizer.genes)} genes with {accelerator.num_processes} process(es) on {accelerator.device}; "
                      f"held-out restoration on {held_out_name}")
    result = pretrain_model(model, tokenizer, train, args, eval_samples=held_out, accelerator=accelerator,
                            output_dir=output_dir, resume=args.resume)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if "sample" in train.column_names:  # so `gexbert evaluate` can warn when judged on these samples
            result.model.config.training_samples_hash = training_sample_hashes(train["sample"])

        def write_final_model(folder: Path) -> None:
            result.model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)

        save_final_model(output_dir, write_final_model)
        accelerator.print(f"saved the pretrained model to {output_dir} ({result.steps} steps, "
                          f"{result.seconds:.0f} s, final loss {result.final_loss:.3f}"
                          + (f", held-out loss {result.eval_loss:.3f})" if result.eval_loss is not None else ")"))
        if args.push_to_hub:
            result.model.push_to_hub(args.push_to_hub, tokenizer=tokenizer)
            accelerator.print(f"pushed to https://huggingface.co/{args.push_to_hub}")
    accelerator.wait_for_everyone()
    return result
