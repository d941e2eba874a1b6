"""The benchmark's one GexBERT per folder: design choices measured by short pretraining runs scored on the
validation part (value embedding, then mask rate), the main pretraining with the winner, or a model kept by an
earlier run."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data.samples import EncodedSamples
from ..errors import ExpressionInputError
from ..inference import restore_from_panel
from ..loading import resolve_model
from ..modeling_gexbert import GexBertForMaskedExpression
from ..tokenization_gexbert import GexBertTokenizer
from ..training.presets import build_config
from .baselines import mcar_mask
from .benchmark_data import FolderData
from .imputation_benchmark import chunked_distribution
from .stage_budget import StageBudget
from .training_runs import pretrain_in_memory

if TYPE_CHECKING:
    from .benchmark_arguments import BenchmarkArguments


def say(message: str) -> None:
    """A timestamped progress line (long runs go to log files, where progress bars are off)."""
    print(f"[{time.strftime('%H:%M:%S')}] benchmark: {message}", flush=True)


def pretrain(tokenizer: GexBertTokenizer, samples: EncodedSamples, args: BenchmarkArguments, value_embedding: str,
             mask_fraction: float, steps: int, device: str) -> tuple[GexBertForMaskedExpression, dict]:
    """Pretrain one masked-expression GexBERT for `steps` steps; returns the model and its run record."""
    config = build_config(tokenizer, "small", hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers,
                          num_attention_heads=args.num_attention_heads, max_genes=args.pretraining.max_genes,
                          value_embedding=value_embedding)
    torch.manual_seed(args.seed)
    model = GexBertForMaskedExpression(config).to(device)
    options = replace(args.pretraining, max_steps=steps, mask_fraction=mask_fraction, seed=args.seed,
                      logging_steps=max(1, steps // 20), progress=args.progress)
    result = pretrain_in_memory(model, tokenizer, samples, options)
    record = {"value_embedding": value_embedding, "mask_fraction": mask_fraction, "steps": result.steps,
              "seconds": result.seconds, "final_loss": result.final_loss,
              "loss_curve": [(h["step"], h["loss"]) for h in result.history]}
    return result.model.cpu() if device != "cpu" else result.model, record


def validation_scores(model, tokenizer: GexBertTokenizer, data: FolderData, panel: int = 16, rows: int = 200,
                      chunk: int = 256) -> dict[str, float]:
    """What the downstream tasks need, measured on the train-carved validation part: per-gene standardised RMSE of
    (i) genes restored from a random `panel`-gene panel and (ii) values removed at 50% and 80% (MCAR), on a fixed
    random subset of at most `chunk` genes (the cost of attention grows with the square of the genes)."""
    val = data.raw_train[data.validation]
    val = val.iloc[np.random.default_rng(0).choice(len(val), size=min(rows, len(val)), replace=False)]
    if val.shape[1] > chunk:
        val = val.iloc[:, np.sort(np.random.default_rng(3).choice(val.shape[1], size=chunk, replace=False))]
    genes = list(val.columns)
    truth = tokenizer.normalize(val.to_numpy(), genes)
    scale = np.nanstd(tokenizer.normalize(data.raw_train[genes].to_numpy(), genes), axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    scores = {}
    chosen = sorted(np.random.default_rng(1).choice(genes, size=min(panel, len(genes) - 1), replace=False).tolist())
    queries = [gene for gene in genes if gene not in set(chosen)]
    restored, _ = restore_from_panel(model, tokenizer, val[chosen], queries)
    columns = [genes.index(gene) for gene in queries]
    scores[f"panel{panel}_restore_std_rmse"] = float(np.sqrt(np.mean(((restored - truth[:, columns])
                                                                       / scale[columns]) ** 2)))
    for rate in (0.5, 0.8):
        mask = mcar_mask(truth.shape, rate, np.random.default_rng([2, int(rate * 100)]))
        out = chunked_distribution(model, tokenizer, val.mask(mask), [], chunk)
        error = (out["mean"] - truth) / scale[None, :]
        scores[f"mcar{int(rate * 100)}_std_rmse"] = float(np.sqrt(np.mean(error[mask] ** 2)))
    scores["combined"] = float(np.mean([value for value in scores.values()]))
    return scores


def _time_steps(tokenizer, samples, args: BenchmarkArguments, device: str) -> float:
    """Seconds per pretraining step on this machine right now (a few warm-up steps of the real model)."""
    _, record = pretrain(tokenizer, samples, args, "both", 0.5, 6, device)
    return max(record["seconds"] / 6, 1e-3)


def _scored_run(tokenizer, samples, data: FolderData, args: BenchmarkArguments, embedding: str, mask_fraction: float,
                steps: int, device: str) -> tuple[GexBertForMaskedExpression, dict]:
    """One pretraining run and its record, scored on the validation part."""
    model, record = pretrain(tokenizer, samples, args, embedding, mask_fraction, steps, device)
    record["validation"] = validation_scores(model, tokenizer, data, chunk=2 * args.pretraining.max_genes)
    return model, record


def _ablation(tokenizer, samples, data: FolderData, args: BenchmarkArguments, budget: StageBudget, device: str
              ) -> dict:
    """Value embedding, then mask rate, each chosen by short pretraining runs scored on validation (a choice the
    arguments fix is not measured). The first run always happens; a later one starts only while the longest run
    so far fits in what is left of the pretraining share (the skipped ones are recorded; an unmeasured mask rate
    stays 0.5)."""
    ablation_seconds = args.ablation_seconds if args.ablation_seconds is not None else (
        5.0 if args.quick else min(75.0, 0.09 * budget.seconds))
    step_seconds = _time_steps(tokenizer, samples, args, device)
    steps = 15 if args.quick else max(20, int(ablation_seconds / step_seconds))
    runs: list[dict] = []
    embeddings = ["level", "continuous", "both"] if args.value_embedding == "auto" else [args.value_embedding]
    base_mask = 0.5 if args.mask_fraction is None else args.mask_fraction
    planned = [(embedding, base_mask) for embedding in embeddings] if len(embeddings) > 1 else []
    planned += [(None, 0.3), (None, 0.8)] if args.mask_fraction is None else []  # None: the best embedding so far

    def labelled() -> Iterator[tuple[str, tuple[str, float]]]:  # lazily: None takes the best embedding so far
        for embedding, mask_fraction in planned:
            embedding = embedding or _best(runs, "value_embedding", embeddings[0])
            yield f"ablation run {embedding}, mask rate {mask_fraction}", (embedding, mask_fraction)

    for embedding, mask_fraction in budget.units(labelled(), always=1):
        runs.append(_scored_run(tokenizer, samples, data, args, embedding, mask_fraction, steps, device)[1])
        say(f"ablation {embedding} {mask_fraction}: {runs[-1]['validation']}")
    chosen_embedding = _best(runs, "value_embedding", embeddings[0]) if len(embeddings) > 1 else embeddings[0]
    same = [run for run in runs if run["value_embedding"] == chosen_embedding]
    chosen_mask = args.mask_fraction if args.mask_fraction is not None else _best(same, "mask_fraction", base_mask)
    return {"runs": runs, "steps_each": steps, "chosen_value_embedding": chosen_embedding,
            "chosen_mask_fraction": chosen_mask, "step_seconds": step_seconds}


def _best(runs: list[dict], key: str, default):
    """`key` of the run with the lowest combined validation score (`default` when there is none)."""
    return min(runs, key=lambda run: run["validation"]["combined"])[key] if runs else default


def ablate_and_pretrain(tokenizer, samples, data: FolderData, args: BenchmarkArguments, results: dict,
                        budget: StageBudget, device: str, output: Path) -> GexBertForMaskedExpression:
    """The measured design choices, then the main pretraining with the winner for the rest of the stage's share of
    the time budget; records both in `results` and keeps the model under `output/model` when asked."""
    started = time.perf_counter()
    ablation = _ablation(tokenizer, samples, data, args, budget, device)
    step_seconds = ablation.pop("step_seconds")
    results["ablation"] = ablation
    results["timings"]["ablation"] = time.perf_counter() - started
    embedding, mask = ablation["chosen_value_embedding"], ablation["chosen_mask_fraction"]
    say(f"ablation done: {embedding}, mask {mask}; main pretraining ...")

    started = time.perf_counter()
    # what is left of the share, less a tenth for scoring the model on validation afterwards
    main_seconds = args.pretrain_minutes * 60 if args.pretrain_minutes is not None else 0.9 * budget.left()
    if ablation["runs"]:
        step_seconds = np.median([r["seconds"] / max(r["steps"], 1) for r in ablation["runs"]])
    main_steps = 30 if args.quick else max(100, int(main_seconds / step_seconds))
    model, record = _scored_run(tokenizer, samples, data, args, embedding, mask, main_steps, device)
    model = model.cpu().eval()
    results["pretraining"] = {**record, **_model_record(model)}
    results["timings"]["pretraining"] = time.perf_counter() - started
    results["ablation"]["skipped_by_budget"] = list(budget.skipped)
    say(f"pretrained {main_steps} steps: {record['validation']}")
    if args.keep_model:
        model.save_pretrained(output / "model")
        tokenizer.save_pretrained(output / "model")
    return model


def _model_record(model: GexBertForMaskedExpression) -> dict:
    """The architecture the report states, and the parameter count."""
    config = model.config.to_dict()
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "decoder_num_layers",
            "max_genes", "value_embedding", "num_levels", "pooling")
    return {"config": {key: config[key] for key in keys},
            "n_parameters": sum(parameter.numel() for parameter in model.parameters())}


def load_pretrained(path: str, data: FolderData, results: dict) -> tuple[GexBertForMaskedExpression,
                                                                        GexBertTokenizer]:
    """A model and tokenizer kept by an earlier run; its pretraining record comes along when available."""
    folder = Path(resolve_model(path))
    if not (folder / "config.json").is_file():
        raise ExpressionInputError(f"{folder}: not a saved GexBERT (no config.json); pass a run's output/model")
    model = GexBertForMaskedExpression.from_pretrained(folder).eval()
    tokenizer = GexBertTokenizer.from_pretrained(folder)
    try:
        tokenizer.convert_genes_to_ids(list(data.raw_train.columns))
    except ExpressionInputError as error:
        raise ExpressionInputError(f"{folder}: pretrained on other data than {data.name}; {error}") from None
    source = folder.parent / "results.json"
    earlier = json.loads(source.read_text()) if source.is_file() else {}
    record = earlier.get("pretraining") or {
        "value_embedding": model.config.value_embedding, "mask_fraction": None, "steps": None, "seconds": 0.0,
        "final_loss": None, "loss_curve": [], "validation": validation_scores(model, tokenizer, data)}
    results["pretraining"] = {**record, **_model_record(model), "loaded_from": str(folder)}
    results["ablation"] = {**earlier.get("ablation", {"runs": [], "steps_each": 0}), "loaded_from": str(folder)}
    results["ablation"].setdefault("chosen_value_embedding", model.config.value_embedding)
    results["ablation"].setdefault("chosen_mask_fraction", record.get("mask_fraction"))
    say(f"loaded the pretrained model of {folder} ({record.get('steps')} steps)")
    return model, tokenizer
