"""What a pretraining checkpoint holds and how it is written and read back, without pickle.

Main process: `model.safetensors`, `optimizer.safetensors` (AdamW and, under fp16, the grad scaler) and
`scheduler.safetensors`; every process: `process_<rank>.safetensors` (its python/numpy/torch/CUDA RNG states and
its collator's position). The completion marker adds the step, data position, history and the run's arguments.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from safetensors.torch import save_file

from ..data.collator import DataCollatorForMaskedExpression
from ..tokenization_gexbert import GexBertTokenizer
from .checkpoints import check_same_run, publish_checkpoint, temporary_checkpoint_dir
from .options import PretrainingOptions
from .state_files import (
    capture_rng_states,
    read_state_file,
    read_tensors,
    restore_rng_states,
    write_state_file,
)

MODEL_STATE, OPTIMIZER_STATE, SCHEDULER_STATE = "model.safetensors", "optimizer.safetensors", "scheduler.safetensors"
# run arguments that change the weights a step produces; logging, saving and progress options may change freely
RUN_ARGUMENTS = ("seed", "max_steps", "batch_size", "gradient_accumulation_steps", "learning_rate", "weight_decay",
                 "warmup_ratio", "max_grad_norm", "mask_fraction", "mixed_precision")


@dataclass
class TrainingParts:
    """Everything a checkpoint saves and a resume restores, besides the step, data position and history."""

    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    collator: DataCollatorForMaskedExpression


def process_state_file(rank: int) -> str:
    """Per process: its RNG states and its collator's position."""
    return f"process_{rank}.safetensors"


def checkpoint_files(num_processes: int) -> list[str]:
    """The files a checkpoint of a run on `num_processes` processes must hold to be resumed exactly."""
    return [MODEL_STATE, OPTIMIZER_STATE, SCHEDULER_STATE, *map(process_state_file, range(num_processes))]


def run_arguments(config, tokenizer: GexBertTokenizer, train_samples, args: PretrainingOptions, max_genes: int,
                  num_processes: int) -> dict:
    """What makes a checkpoint's weights this run's: data, tokenizer, model config and training arguments.

    Stored in every checkpoint; `--resume` refuses a checkpoint whose values differ (JSON-normalised, flat keys so
    the refusal can name each difference).
    """
    volatile = ("transformers_version", "_name_or_path")
    run = {"train_samples.rows": len(train_samples), "train_samples.fingerprint": _samples_fingerprint(train_samples),
           "tokenizer.sha256": _tokenizer_fingerprint(tokenizer), "max_genes": max_genes,
           "num_processes": num_processes, **{name: getattr(args, name) for name in RUN_ARGUMENTS},
           # only when used, so checkpoints written before the option existed still resume
           **({"max_mask_fraction": args.max_mask_fraction} if getattr(args, "max_mask_fraction", None) else {}),
           **{f"model_config.{key}": value for key, value in config.to_dict().items() if key not in volatile}}
    return json.loads(json.dumps(run))


def _samples_fingerprint(samples) -> str:
    """`datasets`' own fingerprint of a saved split, or a sha256 of in-memory encoded arrays."""
    fingerprint = getattr(samples, "_fingerprint", None)
    if fingerprint is not None:
        return f"datasets:{fingerprint}"
    if not hasattr(samples, "gene_ids"):  # another indexable container: only its length is compared
        return "unknown"
    digest = hashlib.sha256()
    for name in ("gene_ids", "level_ids", "values"):
        digest.update(np.ascontiguousarray(getattr(samples, name)).tobytes())
    digest.update("\n".join(map(str, samples.samples)).encode())
    return f"sha256:{digest.hexdigest()}"


def _tokenizer_fingerprint(tokenizer: GexBertTokenizer) -> str:
    """sha256 of the tokenizer as it saves itself (genes, normalisation, level edges, scales)."""
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory() as folder:
        for written in sorted(tokenizer.save_pretrained(folder)):
            digest.update(Path(written).read_bytes())
    return digest.hexdigest()


def read_checkpoint(parts: TrainingParts, path: Path, state: dict, run: dict) -> dict:
    """Every state file of `path` this process needs, parsed (safetensors + JSON only) and checked against the
    model; a `ResumeMismatchError` when the checkpoint is another run's."""
    check_same_run(state.get("run"), run, path)
    weights, _ = read_tensors(path / MODEL_STATE)
    expected = parts.accelerator.unwrap_model(parts.model).state_dict()
    wrong = [name for name in expected.keys() | weights.keys()
             if name not in weights or name not in expected or weights[name].shape != expected[name].shape]
    if wrong:
        raise ValueError(f"{MODEL_STATE} does not fit the model: {', '.join(sorted(wrong)[:5])}")
    return {"weights": weights, "optimizer": read_state_file(path / OPTIMIZER_STATE),
            "scheduler": read_state_file(path / SCHEDULER_STATE),
            "process": read_state_file(path / process_state_file(parts.accelerator.process_index))}


def restore(parts: TrainingParts, loaded: dict) -> None:
    """Put what `read_checkpoint` parsed into the model, optimizer (and grad scaler), scheduler, collator, RNGs."""
    parts.accelerator.unwrap_model(parts.model).load_state_dict(loaded["weights"])
    parts.optimizer.load_state_dict(loaded["optimizer"]["optimizer"])
    if parts.accelerator.scaler is not None and loaded["optimizer"].get("scaler") is not None:
        parts.accelerator.scaler.load_state_dict(loaded["optimizer"]["scaler"])
    parts.scheduler.load_state_dict(loaded["scheduler"])
    parts.collator.load_state_dict(loaded["process"]["collator"])
    restore_rng_states(loaded["process"]["rng"])


def save_checkpoint(parts: TrainingParts, root: Path, step: int, state: dict, keep_last: int) -> None:
    """Each process writes its RNG and collator states, the main one the weights, optimizer and scheduler."""
    accelerator = parts.accelerator
    temporary = temporary_checkpoint_dir(root, step)
    if accelerator.is_main_process:
        if temporary.exists():
            shutil.rmtree(temporary)
        temporary.mkdir(parents=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        weights = accelerator.unwrap_model(parts.model).state_dict()
        save_file({name: tensor.detach().cpu().contiguous() for name, tensor in weights.items()},
                  str(temporary / MODEL_STATE))
        scaler = accelerator.scaler.state_dict() if accelerator.scaler is not None else None
        write_state_file(temporary / OPTIMIZER_STATE, {"optimizer": parts.optimizer.state_dict(), "scaler": scaler})
        write_state_file(temporary / SCHEDULER_STATE, parts.scheduler.state_dict())
    write_state_file(temporary / process_state_file(accelerator.process_index),
                     {"rng": capture_rng_states(), "collator": parts.collator.state_dict()})
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        publish_checkpoint(root, step, state, keep_last)
    accelerator.wait_for_everyone()
