"""`gexbert benchmark`: the paper's three tasks and its attention analysis on one data folder, GexBERT against
tuned baselines on the same data in the same run, written as report.md, results.json and PNG plots.

Protocol: the folder's fixed split.tsv; the tokenizer, pretraining, panels, anchors and every hyperparameter see
only train samples (a validation part is carved out of train); test samples are predicted once per method, panel and
seed. One GexBERT is pretrained per folder on all train features and reused by every task. Its value embedding and
masking rate are chosen by short pretraining runs scored on the validation part.
"""

from __future__ import annotations

import json
import os
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.samples import EncodedSamples
from ..data.splits import split_validation
from ..inference import class_probabilities, predict
from ..modeling_gexbert import GexBertForMaskedExpression
from ..outputs import claim_output_dir
from ..tokenization_gexbert import GexBertTokenizer
from .anchor_survival import run_anchor_survival
from .attention_analysis import run_attention_analysis
from .benchmark_arguments import BENCHMARK_TASKS, BenchmarkArguments
from .benchmark_data import FolderData, classification_gate, load_folder
from .benchmark_pretraining import ablate_and_pretrain, load_pretrained, say
from .benchmark_report import write_report
from .imputation_benchmark import IMPUTATION_SCENARIOS, run_imputation
from .panel_classification import run_panel_classification
from .reports import write_json
from .stage_budget import RunClock, StageBudget
from .training_runs import finetune_in_memory


# ----------------------------------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------------------------------
def run_benchmark(args: BenchmarkArguments) -> int:
    """Run every requested task on one folder and write report.md, results.json and plots under `args.output`."""
    inputs = {"--data_dir": args.data_dir, "--pretrained_model": args.pretrained_model}
    folder = claim_output_dir(args.output, "benchmark", inputs, args.overwrite)
    with folder.writing() as output:
        return _run_benchmark(args, output)


def _run_benchmark(args: BenchmarkArguments, output: Path) -> int:
    started = time.perf_counter()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    tasks = _requested_tasks(args.tasks)
    if "imputation" in tasks:
        _imputation_scenarios(args.imputation_scenarios)  # a bad name is refused before anything runs
    results: dict = {"arguments": asdict(args), "errors": {}, "timings": {}, "machine": machine_record(device)}
    data, model, tokenizer, clock = _data_and_model(args, results, device, output, started, tasks)
    _save(results, clock, output)
    runners = _task_runners(model, tokenizer, data, args, device, results, clock, output)
    for task in _stages(args, tasks, data):
        if task == "pretraining":
            continue
        task_started = time.perf_counter()
        if task == "classification":
            _classification_task(model, tokenizer, data, args, results, device, clock, output)
        else:
            _guard(results, task, partial(runners[task], clock.stage(task)))
        results["timings"][task] = time.perf_counter() - task_started
        _save(results, clock, output)  # a later stage's crash, or a kill, keeps this stage's numbers
    results["timings"]["total"] = time.perf_counter() - started
    results["budget"] = clock.record()
    return _write_results(results, output)


def _task_runners(model, tokenizer, data: FolderData, args: BenchmarkArguments, device: str, results: dict,
                  clock: RunClock, output: Path) -> dict[str, Callable[[StageBudget], dict]]:
    """Survival, imputation and attention, each a function of its stage's budget."""
    return {
        "survival": lambda budget: _survival(model, tokenizer, data, args, device, budget),
        "imputation": lambda budget: _imputation(model, tokenizer, data, args, budget,
                                                 _checkpoint(results, "imputation", clock, output)),
        "attention": lambda budget: run_attention_analysis(
            model, tokenizer, data.raw_train, data.clinical_train[data.label_column],
            samples_per_type=4 if args.quick else 24, max_genes=512, progress=args.progress, budget=budget),
    }


def _stages(args: BenchmarkArguments, tasks: list[str], data: FolderData) -> list[str]:
    """The stages this run will time, in order: pretraining unless a kept model is reused, then the requested
    tasks the folder allows (the time budget is shared out among exactly these)."""
    runs = {"classification": True, "survival": bool(data.time_column), "imputation": True,
            "attention": bool(data.label_column)}
    return ([] if args.pretrained_model else ["pretraining"]) + [task for task in tasks if runs[task]]


def _save(results: dict, clock: RunClock, output: Path) -> None:
    """results.json as it stands (atomically), with the budget's record so far."""
    results["budget"] = clock.record()
    write_json(output / "results.json", results)


def _checkpoint(results: dict, task: str, clock: RunClock, output: Path) -> Callable[[dict], None]:
    """Saves a running stage's results so far, marked partial (the finished stage's results replace them)."""
    def save(so_far: dict) -> None:
        results[task] = {**so_far, "partial": "saved while the stage was running: the numbers of its finished items"}
        _save(results, clock, output)

    return save


def _requested_tasks(tasks: str) -> list[str]:
    """The comma-separated `--tasks`, in the order the benchmark runs them."""
    requested = [task.strip() for task in tasks.split(",") if task.strip()]
    unknown = [task for task in requested if task not in BENCHMARK_TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; choose from {BENCHMARK_TASKS}")
    return [task for task in BENCHMARK_TASKS if task in requested]


def machine_record(device: str) -> dict:
    """Where the numbers were measured (the report states it: CPU timings from different machines differ)."""
    return {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": device if device == "cpu" else torch.cuda.get_device_name(0)}


def _data_and_model(args: BenchmarkArguments, results: dict, device: str, output: Path, started: float,
                    tasks: list[str]) -> tuple[FolderData, GexBertForMaskedExpression, GexBertTokenizer, RunClock]:
    """The folder's data (subsampled in quick mode), the GexBERT every task uses (a kept one, or one measured and
    pretrained here within its share of the time budget) and the clock sharing out the rest of the budget."""
    if args.quick:
        args.max_features = args.max_features or 64
        args.max_train_samples = args.max_train_samples or 500
        args.max_test_samples = args.max_test_samples or 150
    data = load_folder(args.data_dir, seed=args.seed, max_features=args.max_features,
                       max_train=args.max_train_samples, max_test=args.max_test_samples)
    model = None
    if args.pretrained_model:  # the kept model's own tokenizer, not a refit
        model, tokenizer = load_pretrained(args.pretrained_model, data, results)
    else:
        tokenizer = GexBertTokenizer.fit(data.raw_train, normalization=data.normalization,
                                         num_levels=args.num_levels)
    results["data"] = {
        "folder": data.name, "n_train": len(data.raw_train), "n_validation": int(data.validation.sum()),
        "n_test": len(data.raw_test), "n_genes": data.raw_train.shape[1], "normalization": data.normalization,
        "types": data.clinical_train[data.label_column].value_counts().to_dict() if data.label_column else {},
    }
    results["timings"]["load"] = time.perf_counter() - started
    clock = RunClock(args.time_budget_minutes * 60, _stages(args, tasks, data), started)
    if model is None:
        samples = EncodedSamples.from_frame(tokenizer, data.raw_train)
        model = ablate_and_pretrain(tokenizer, samples, data, args, results, clock.stage("pretraining"), device,
                                    output)
    return data, model, tokenizer, clock


def _write_results(results: dict, output: Path) -> int:
    """results.json first (a report bug cannot lose the numbers), then report.md and the plots, which add the
    verdict tables to `results`, saved again."""
    write_json(output / "results.json", results)
    try:
        write_report(results, output)
    except Exception:  # noqa: BLE001 - the numbers are saved; `report_from_json` can retry
        traceback.print_exc()
        return 1
    write_json(output / "results.json", results)
    say(f"done in {results['timings']['total'] / 60:.1f} min: {output / 'report.md'}")
    return 0


def report_from_json(output: str | Path) -> Path:
    """Rewrite report.md and the plots from a finished run's results.json."""
    output = Path(output)
    results = json.loads((output / "results.json").read_text())
    path = write_report(results, output)
    write_json(output / "results.json", results)
    return path


def _guard(results: dict, task: str, run: Callable[[], dict]) -> None:
    """Run one task; a failure is recorded (and reported) instead of losing the other tasks' numbers, and the
    numbers its last checkpoint saved stay, marked partial."""
    say(f"{task} ...")
    try:
        results[task] = run()
        say(f"{task} done")
    except Exception as error:  # noqa: BLE001 - any failure must land in the report, not kill a 30-minute run
        results["errors"][task] = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        print(f"benchmark: task {task} failed: {error}")


# ----------------------------------------------------------------------------------------------------------------------
# the tasks
# ----------------------------------------------------------------------------------------------------------------------
def _classification_task(model, tokenizer, data: FolderData, args: BenchmarkArguments, results: dict,
                         device: str, clock: RunClock, output: Path) -> None:
    """Cancer-type classification, unless the values are standardised within each type (or there are no types)."""
    budget = clock.stage("classification")
    results["classification_check"], skipped = classification_gate(tokenizer, data, args.classification)
    if skipped:
        results["classification"] = {"skipped": skipped}
    else:
        _guard(results, "classification", lambda: _classification(
            model, tokenizer, data, args, device, budget, _checkpoint(results, "classification", clock, output)))


def _classification(model, tokenizer, data: FolderData, args: BenchmarkArguments, device: str, budget: StageBudget,
                    checkpoint: Callable[[dict], None]) -> dict:
    """Cancer type from random panels of every size: GexBERT's variants against the tuned baselines."""
    labels = data.clinical_train[data.label_column].astype(str)
    class_names = sorted(labels.unique())
    lookup = {name: i for i, name in enumerate(class_names)}
    y_train = labels.map(lookup).to_numpy()
    y_test = data.clinical_test[data.label_column].astype(str).map(lookup).to_numpy()
    keep = ~pd.isna(y_test)
    raw_test, y_test = data.raw_test[keep], y_test[keep].astype(int)
    sizes = [size if size == "all" else int(size) for size in args.panel_sizes.split(",")]
    finetune = _classification_finetuner(model, tokenizer, data, y_train, raw_test, class_names, args, device) \
        if args.finetune else None
    return run_panel_classification(
        model, tokenizer, data.raw_train, y_train, data.validation, raw_test, y_test, class_names, sizes,
        list(range(args.seeds)),
        heavy_baselines_max_panel=64 if len(y_train) * len(class_names) > 20000 else 10**9,
        gexbert_max_panel=4 * args.pretraining.max_genes, max_queries=args.max_queries, quick=args.quick, finetune=finetune,
        finetune_panels=[int(k) for k in args.finetune_panels.split(",") if k], progress=args.progress,
        budget=budget, checkpoint=checkpoint)


def _survival(model, tokenizer, data: FolderData, args: BenchmarkArguments, device: str, budget: StageBudget
              ) -> dict:
    """Cox models per cancer type on a panel, with anchors restored by GexBERT, by regression, or measured; and the
    same arms pooled over types, stratified by type."""
    return run_anchor_survival(
        model, tokenizer, data.raw_train, data.clinical_train, data.raw_test, data.clinical_test,
        data.label_column, data.time_column, data.event_column,
        panel_sizes=[int(k) for k in args.survival_panel_sizes.split(",")], seeds=list(range(args.seeds)),
        min_train_events=8 if args.quick else 20, min_test_events=3 if args.quick else 5,
        max_types=args.max_survival_types or (2 if args.quick else None), n_boot=30 if args.quick else 200,
        finetune=_survival_finetuner(model, tokenizer, data, args, device) if args.finetune else None,
        progress=args.progress, budget=budget)


def _imputation(model, tokenizer, data: FolderData, args: BenchmarkArguments, budget: StageBudget,
                checkpoint: Callable[[dict], None]) -> dict:
    """Every missingness scenario on (a subset of) the test samples, GexBERT against the tuned imputers."""
    return run_imputation(
        model, tokenizer, data.raw_train, data.validation, data.raw_test, seeds=list(range(args.seeds)),
        scenarios=_imputation_scenarios(args.imputation_scenarios), max_test_rows=60 if args.quick else args.imputation_test_rows,
        max_reference_rows=200 if args.quick else 1200, chunk=args.imputation_genes_per_pass,
        iterative_rounds=2 if args.quick else 3, progress=args.progress, budget=budget, checkpoint=checkpoint)


def _imputation_scenarios(text: str) -> list[str]:
    """The requested scenarios, in the default order; an unknown name is refused with the known ones."""
    asked = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in asked if name not in IMPUTATION_SCENARIOS]
    if unknown or not asked:
        raise ValueError(f"--imputation_scenarios: unknown {unknown or 'empty list'}; choose from "
                         f"{', '.join(IMPUTATION_SCENARIOS)}")
    return [name for name in IMPUTATION_SCENARIOS if name in asked]


# ----------------------------------------------------------------------------------------------------------------------
# end-to-end fine-tuning
# ----------------------------------------------------------------------------------------------------------------------
def _finetune(model, tokenizer, train: EncodedSamples, validation: EncodedSamples, panel: list[str], seed: int,
              args: BenchmarkArguments, class_names: list[str] | None = None):
    """`args.finetuning` on one panel and seed (a classifier when `class_names` is given, else a Cox risk model,
    whose partial likelihood wants twice the batch for enough events in each); quick mode trains one epoch, and
    no more queries than the classification task restores."""
    options = args.finetuning
    caps = [cap for cap in (args.max_queries, options.max_queries) if cap is not None]
    options = replace(options, seed=seed, panel_seed=seed, max_queries=min(caps) if caps else None,
                      epochs=1 if args.quick else options.epochs,
                      batch_size=options.batch_size if class_names is not None else 2 * options.batch_size)
    return finetune_in_memory(model, tokenizer, train, validation, panel, options, class_names=class_names)


def _classification_finetuner(model, tokenizer, data: FolderData, y_train, raw_test, class_names, args, device):
    """End-to-end fine-tuning of `GexBertForSequenceClassification` on the panel, unseen genes entered as MASK
    queries; the validation part of train picks the best epoch."""
    train = EncodedSamples.from_frame(tokenizer, data.raw_train[~data.validation],
                                      {"labels": y_train[~data.validation]})
    validation = EncodedSamples.from_frame(tokenizer, data.raw_train[data.validation],
                                           {"labels": y_train[data.validation]})
    test = EncodedSamples.from_frame(tokenizer, raw_test)

    def run(panel: list[str], seed: int) -> np.ndarray:
        result = _finetune(model.to(device), tokenizer, train, validation, panel, seed, args, class_names)
        probabilities = class_probabilities(predict(result.model.to(device), tokenizer, test))  # its config: panel
        model.cpu()
        return probabilities

    return run


def _survival_finetuner(model, tokenizer, data: FolderData, args, device):
    """`GexBertForSurvival` fine-tuned on one type's train samples with only the panel visible (largest K only)."""
    largest = max(int(k) for k in args.survival_panel_sizes.split(","))
    time_column, event_column = data.time_column, data.event_column
    known = data.clinical_train[time_column].notna() & data.clinical_train[event_column].notna()
    events = data.clinical_train[known].groupby(data.label_column)[event_column].sum().sort_values(ascending=False)
    chosen_types = set(events.index[:args.survival_finetune_types])

    def run(cancer: str, panel: list[str], seed: int):
        if len(panel) < largest or cancer not in chosen_types:
            return None
        rows = (data.clinical_train[data.label_column] == cancer).to_numpy() & known.to_numpy()
        test_rows = ((data.clinical_test[data.label_column] == cancer) & data.clinical_test[time_column].notna()
                     & data.clinical_test[event_column].notna()).to_numpy()
        clinical = data.clinical_train[rows]
        events = clinical[event_column].to_numpy(int)
        validation = split_validation(events, 0.25, seed)
        fields = {"survival_time": clinical[time_column].to_numpy(float), "event": events}
        train, val = (EncodedSamples.from_frame(tokenizer, data.raw_train[rows][part],
                                                {key: value[part] for key, value in fields.items()})
                      for part in (~validation, validation))
        result = _finetune(model.to(device), tokenizer, train, val, panel, seed, args)
        risk = predict(result.model.to(device), tokenizer, EncodedSamples.from_frame(tokenizer,
                       data.raw_test[test_rows]))["risk"].to_numpy()
        model.cpu()
        return risk

    return run
