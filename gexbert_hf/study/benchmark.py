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
import shutil
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from ..data.samples import EncodedSamples
from ..errors import ExpressionInputError
from ..modeling_gexbert import GexBertForMaskedExpression
from ..outputs import claim_output_dir
from ..reports import write_json
from ..tasks.anchor_survival import run_anchor_survival
from ..tasks.attention import run_attention_analysis
from ..tasks.baselines import mcar_mask
from ..tasks.panel_classification import restore_from_panel, run_panel_classification
from ..tokenization_gexbert import GexBertTokenizer
from ..training.presets import build_config
from ..training.pretrain import PretrainArguments, pretrain_model
from .report import write_report
from .tasks import chunked_distribution, run_imputation

TASKS = ("classification", "survival", "imputation", "attention")
SKIP_STANDARDISED = ("values are standardised within each cancer type: cancer-type accuracy here would measure the "
                     "normalisation, not biology")


@dataclass
class BenchmarkArguments:
    """One benchmark run on one data folder (expression.tsv.gz, clinical.tsv, split.tsv)."""

    data_dir: str = field(metadata={"help": "Data folder laid out like ../shared/data/<folder>."})
    output: str = field(metadata={"help": "Where report.md, results.json and the PNG plots go."})
    quick: bool = field(default=False, metadata={"help": "Tiny budgets everywhere (tests, smoke runs)."})
    time_budget_minutes: float = field(default=30.0, metadata={"help": "Target wall time of the whole run; "
                                                                       "pretraining length is derived from it."})
    tasks: str = field(default=",".join(TASKS), metadata={"help": "Comma-separated subset of " + ", ".join(TASKS)})
    classification: str = field(default="auto", metadata={
        "help": "auto: skip cancer-type classification when values are standardised within each type (such data "
                "leaks the type through its distribution shapes); on; off."})
    seeds: int = field(default=5, metadata={"help": "Random panels / masks / seeds per setting (>= 5 for reports)."})
    panel_sizes: str = field(default="8,16,32,64,128,256,all", metadata={"help": "Classification panel sizes."})
    survival_panel_sizes: str = field(default="32,64", metadata={"help": "Survival panel sizes K."})
    value_embedding: str = field(default="auto", metadata={"help": "auto (measured), level, continuous or both."})
    mask_fraction: float | None = field(default=None, metadata={"help": "Pretraining mask rate (None = measured)."})
    pretrain_minutes: float | None = field(default=None, metadata={"help": "Main pretraining length (None: "
                                                                           "from the time budget)."})
    ablation_seconds: float | None = field(default=None, metadata={"help": "Length of each ablation pretraining."})
    hidden_size: int = field(default=64, metadata={"help": "Model width."})
    num_hidden_layers: int = field(default=3, metadata={"help": "Encoder depth."})
    num_attention_heads: int = field(default=4, metadata={"help": "Attention heads."})
    max_genes: int = field(default=128, metadata={"help": "Genes per sample and pretraining step."})
    num_levels: int = field(default=32, metadata={"help": "Expression levels of the tokenizer."})
    batch_size: int = field(default=32, metadata={"help": "Pretraining batch size."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Pretraining peak learning rate."})
    max_queries: int = field(default=128, metadata={"help": "Unseen genes restored per sample for classification."})
    finetune: bool = field(default=True, metadata={"help": "Also fine-tune GexBERT end to end on some panels."})
    finetune_panels: str = field(default="16,64", metadata={"help": "Panel sizes that get end-to-end fine-tuning."})
    finetune_epochs: float = field(default=4, metadata={"help": "Fine-tuning epochs (early stopping may end sooner)."})
    finetune_learning_rate: float = field(default=1e-3, metadata={"help": "Fine-tuning peak learning rate."})
    finetune_encoder_lr_ratio: float = field(default=1.0, metadata={
        "help": "The pretrained encoder's fine-tuning rate relative to the new head's."})
    survival_finetune_types: int = field(default=4, metadata={
        "help": "Fine-tune GexBertForSurvival on the largest-K panels of this many types (most events first)."})
    max_survival_types: int | None = field(default=None, metadata={"help": "At most this many cancer types."})
    max_features: int | None = field(default=None, metadata={"help": "Use a random subset of this many features "
                                                                      "(quick mode: 64)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Subsample train (quick mode: 500)."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Subsample test (quick mode: 150)."})
    imputation_test_rows: int = field(default=400, metadata={"help": "Test samples used for imputation."})
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


# ----------------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class FolderData:
    name: str
    raw_train: pd.DataFrame
    raw_test: pd.DataFrame
    clinical_train: pd.DataFrame
    clinical_test: pd.DataFrame
    validation: np.ndarray  # boolean over train rows
    normalization: str
    label_column: str | None
    time_column: str | None
    event_column: str | None


def load_folder(data_dir: str | Path, seed: int = 0, validation_fraction: float = 0.2,
                max_features: int | None = None, max_train: int | None = None, max_test: int | None = None
                ) -> FolderData:
    """Read a data folder, apply its split.tsv and carve a stratified validation part out of train.

    `max_*` take seeded random subsets (quick mode); the split itself is never changed.
    """
    from ..data.build import auto_normalization
    from ..data.readers import load_cohort, load_split

    data_dir = Path(data_dir)
    cohort = load_cohort(data_dir)
    split = load_split(data_dir).reindex(cohort.expression.index)
    train_index = split.index[(split == "train").to_numpy()]
    test_index = split.index[(split == "test").to_numpy()]
    rng = np.random.default_rng([seed, 17])
    if max_train is not None and len(train_index) > max_train:
        train_index = train_index[np.sort(rng.choice(len(train_index), size=max_train, replace=False))]
    if max_test is not None and len(test_index) > max_test:
        test_index = test_index[np.sort(rng.choice(len(test_index), size=max_test, replace=False))]
    expression = cohort.expression
    if max_features is not None and expression.shape[1] > max_features:
        expression = expression.iloc[:, np.sort(rng.choice(expression.shape[1], size=max_features, replace=False))]
    clinical = cohort.clinical
    label = cohort.label_column if cohort.label_column in clinical.columns else None
    strata = clinical.loc[train_index, label].astype(str).to_numpy() if label else None
    if strata is not None and pd.Series(strata).value_counts().min() < 2:
        strata = None
    _, val_positions = train_test_split(np.arange(len(train_index)), test_size=validation_fraction,
                                        random_state=seed, stratify=strata)
    validation = np.zeros(len(train_index), dtype=bool)
    validation[val_positions] = True
    return FolderData(
        name=data_dir.name, raw_train=expression.loc[train_index], raw_test=expression.loc[test_index],
        clinical_train=clinical.loc[train_index], clinical_test=clinical.loc[test_index], validation=validation,
        normalization=auto_normalization(expression.loc[train_index]), label_column=label,
        time_column=cohort.time_column, event_column=cohort.event_column,
    )


def within_type_standardised(work_train: pd.DataFrame, types: pd.Series) -> dict:
    """Detect per-type standardisation (z-scores computed within each cancer type, as in cBioPortal): every gene's
    mean is ~0 and its SD ~1 inside every type. Such values leak the type through distribution shapes, so a
    cancer-type accuracy on them measures the normalisation, not biology."""
    means, sds = [], []
    for cancer in types.dropna().unique():
        inside = work_train[(types == cancer).to_numpy()]
        if len(inside) < 10:
            continue
        means.append(np.nanmedian(np.abs(inside.mean(axis=0).to_numpy())))
        sds.append(np.nanmedian(inside.std(axis=0).to_numpy()))
    mean_abs, median_sd = float(np.median(means)), float(np.median(sds))
    return {"median_abs_type_mean": mean_abs, "median_type_sd": median_sd,
            "within_type_standardised": bool(mean_abs < 0.15 and abs(median_sd - 1.0) < 0.25)}


# ----------------------------------------------------------------------------------------------------------------------
# pretraining and its ablation
# ----------------------------------------------------------------------------------------------------------------------
def pretrain(tokenizer: GexBertTokenizer, samples: EncodedSamples, args: BenchmarkArguments, value_embedding: str,
             mask_fraction: float, steps: int, workdir: Path, device: str) -> tuple[GexBertForMaskedExpression, dict]:
    """Pretrain one masked-expression GexBERT for `steps` steps; returns the model and its run record."""
    config = build_config(tokenizer, "small", hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers,
                          num_attention_heads=args.num_attention_heads, max_genes=args.max_genes,
                          value_embedding=value_embedding)
    torch.manual_seed(args.seed)
    model = GexBertForMaskedExpression(config).to(device)
    out = workdir / f"pretrain_{value_embedding}_{mask_fraction}_{steps}"
    shutil.rmtree(out, ignore_errors=True)
    pretrain_args = PretrainArguments(output_dir=str(out), max_steps=steps, batch_size=args.batch_size,
                                      learning_rate=args.learning_rate, mask_fraction=mask_fraction,
                                      max_genes=args.max_genes, seed=args.seed, save_steps=0,
                                      logging_steps=max(1, steps // 20), eval_steps=10**9,
                                      progress=args.progress)
    result = pretrain_model(model, tokenizer, samples, pretrain_args)
    shutil.rmtree(out, ignore_errors=True)
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
        raw = val.mask(mask)
        out = chunked_distribution(model, tokenizer, raw, [], chunk)
        error = (out["mean"] - truth) / scale[None, :]
        scores[f"mcar{int(rate * 100)}_std_rmse"] = float(np.sqrt(np.mean(error[mask] ** 2)))
    scores["combined"] = float(np.mean([value for value in scores.values()]))
    return scores


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
    workdir = output / "_work"
    tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    unknown = [task for task in tasks if task not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; choose from {TASKS}")
    seeds = list(range(args.seeds))
    budget = args.time_budget_minutes * 60
    results: dict = {"arguments": asdict(args), "errors": {}, "timings": {},
                     "machine": {"platform": platform.platform(), "processor": platform.processor(),
                                 "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                 "device": device if device == "cpu" else torch.cuda.get_device_name(0)}}

    if args.quick:
        args.max_features = args.max_features or 64
        args.max_train_samples = args.max_train_samples or 500
        args.max_test_samples = args.max_test_samples or 150
    data = load_folder(args.data_dir, seed=args.seed, max_features=args.max_features,
                       max_train=args.max_train_samples, max_test=args.max_test_samples)
    if args.pretrained_model:  # the kept model's own tokenizer, not a refit
        model, tokenizer = _load_pretrained(args.pretrained_model, data, results)
    else:
        model = None
        tokenizer = GexBertTokenizer.fit(data.raw_train, normalization=data.normalization,
                                         num_levels=args.num_levels)
    work_train = pd.DataFrame(tokenizer.normalize(data.raw_train.to_numpy(), list(data.raw_train.columns)),
                              index=data.raw_train.index, columns=data.raw_train.columns)
    results["data"] = {
        "folder": data.name, "n_train": len(data.raw_train), "n_validation": int(data.validation.sum()),
        "n_test": len(data.raw_test), "n_genes": data.raw_train.shape[1], "normalization": data.normalization,
        "types": data.clinical_train[data.label_column].value_counts().to_dict() if data.label_column else {},
    }
    results["timings"]["load"] = time.perf_counter() - started
    if model is None:
        samples = EncodedSamples.from_frame(tokenizer, data.raw_train)
        model = _ablate_and_pretrain(tokenizer, samples, data, args, results, budget, device, workdir, output)

    # ---- tasks ----------------------------------------------------------------------------------------------------
    types_train = data.clinical_train[data.label_column] if data.label_column else None
    if "classification" in tasks:
        t0 = time.perf_counter()
        check = within_type_standardised(work_train, types_train) if types_train is not None else {}
        results["classification_check"] = check
        enabled = (args.classification == "on" or (args.classification == "auto" and types_train is not None
                                                   and not check.get("within_type_standardised", False)))
        if not enabled:
            results["classification"] = {"skipped": SKIP_STANDARDISED if check else "no type labels"}
        else:
            _guard(results, "classification", lambda: _classification(model, tokenizer, data, args, seeds, device,
                                                                       workdir))
        results["timings"]["classification"] = time.perf_counter() - t0
    if "survival" in tasks and data.time_column:
        t0 = time.perf_counter()
        _guard(results, "survival", lambda: run_anchor_survival(
            model, tokenizer, data.raw_train, data.clinical_train, data.raw_test, data.clinical_test,
            data.label_column, data.time_column, data.event_column,
            panel_sizes=[int(k) for k in args.survival_panel_sizes.split(",")], seeds=seeds,
            min_train_events=8 if args.quick else 20, min_test_events=3 if args.quick else 5,
            max_types=args.max_survival_types or (2 if args.quick else None), n_boot=30 if args.quick else 200,
            finetune=_survival_finetuner(model, tokenizer, data, args, workdir, device) if args.finetune else None,
            progress=args.progress))
        results["timings"]["survival"] = time.perf_counter() - t0
    if "imputation" in tasks:
        t0 = time.perf_counter()
        _guard(results, "imputation", lambda: run_imputation(
            model, tokenizer, data.raw_train, data.validation, data.raw_test, seeds=seeds,
            max_test_rows=60 if args.quick else args.imputation_test_rows,
            max_reference_rows=200 if args.quick else 1200, chunk=args.imputation_genes_per_pass,
            iterative_rounds=2 if args.quick else 3, progress=args.progress))
        results["timings"]["imputation"] = time.perf_counter() - t0
    if "attention" in tasks and types_train is not None:
        t0 = time.perf_counter()
        _guard(results, "attention", lambda: run_attention_analysis(
            model, tokenizer, data.raw_train, types_train, samples_per_type=4 if args.quick else 24,
            max_genes=512, progress=args.progress))
        results["timings"]["attention"] = time.perf_counter() - t0
    results["timings"]["total"] = time.perf_counter() - started
    shutil.rmtree(workdir, ignore_errors=True)
    write_json(output / "results.json", results)  # first, so a report bug cannot lose the numbers
    try:
        write_report(results, output)  # adds the verdict tables to `results`
    except Exception:  # noqa: BLE001 - the numbers are saved; `report_from_json` can retry
        traceback.print_exc()
        return 1
    write_json(output / "results.json", results)
    _say(f"done in {results['timings']['total'] / 60:.1f} min: {output / 'report.md'}")
    return 0


def report_from_json(output: str | Path) -> Path:
    """Rewrite report.md and the plots from a finished run's results.json."""
    output = Path(output)
    results = json.loads((output / "results.json").read_text())
    path = write_report(results, output)
    write_json(output / "results.json", results)
    return path


def _ablate_and_pretrain(tokenizer, samples, data: FolderData, args: BenchmarkArguments, results: dict,
                         budget: float, device: str, workdir: Path, output: Path) -> GexBertForMaskedExpression:
    """The measured design choices (value embedding, then mask rate) by short runs scored on validation, then the
    main pretraining with the winner for the rest of the budget; records both in `results`."""
    # ---- ablation: value embedding, then masking rate, by short pretraining runs scored on validation --------------
    t0 = time.perf_counter()
    if args.quick:
        ablation_steps_hint, main_seconds = 15, None
    else:
        ablation_steps_hint, main_seconds = None, None
    ablation_seconds = args.ablation_seconds if args.ablation_seconds is not None else (
        5.0 if args.quick else min(75.0, 0.04 * budget))
    step_seconds = _time_steps(tokenizer, samples, args, device, workdir)
    ablation_steps = ablation_steps_hint or max(20, int(ablation_seconds / step_seconds))
    ablation: list[dict] = []
    embeddings = ["level", "continuous", "both"] if args.value_embedding == "auto" else [args.value_embedding]
    base_mask = 0.5 if args.mask_fraction is None else args.mask_fraction
    if len(embeddings) > 1:
        for embedding in embeddings:
            model, record = pretrain(tokenizer, samples, args, embedding, base_mask, ablation_steps, workdir, device)
            record["validation"] = validation_scores(model, tokenizer, data, chunk=2 * args.max_genes)
            ablation.append(record)
            _say(f"ablation {embedding} {base_mask}: {record['validation']}")
        chosen_embedding = min(ablation, key=lambda r: r["validation"]["combined"])["value_embedding"]
    else:
        chosen_embedding = embeddings[0]
    if args.mask_fraction is None:
        for mask_fraction in (0.3, 0.8):
            model, record = pretrain(tokenizer, samples, args, chosen_embedding, mask_fraction, ablation_steps,
                                     workdir, device)
            record["validation"] = validation_scores(model, tokenizer, data, chunk=2 * args.max_genes)
            ablation.append(record)
        same = [r for r in ablation if r["value_embedding"] == chosen_embedding]
        chosen_mask = min(same, key=lambda r: r["validation"]["combined"])["mask_fraction"]
    else:
        chosen_mask = args.mask_fraction
    results["ablation"] = {"runs": ablation, "steps_each": ablation_steps, "chosen_value_embedding": chosen_embedding,
                           "chosen_mask_fraction": chosen_mask}
    results["timings"]["ablation"] = time.perf_counter() - t0
    _say(f"ablation done: {chosen_embedding}, mask {chosen_mask}; main pretraining ...")

    # ---- main pretraining: the measured choice, as long as the budget allows --------------------------------------
    t0 = time.perf_counter()
    if args.pretrain_minutes is not None:
        main_seconds = args.pretrain_minutes * 60
    elif main_seconds is None:
        main_seconds = 0.3 * budget
    step_seconds = np.median([r["seconds"] / max(r["steps"], 1) for r in ablation]) if ablation else step_seconds
    main_steps = 30 if args.quick else max(100, int(main_seconds / step_seconds))
    model, record = pretrain(tokenizer, samples, args, chosen_embedding, chosen_mask, main_steps, workdir, device)
    record["validation"] = validation_scores(model, tokenizer, data, chunk=2 * args.max_genes)
    model = model.cpu().eval()
    results["pretraining"] = {**record, **_model_record(model)}
    results["timings"]["pretraining"] = time.perf_counter() - t0
    _say(f"pretrained {main_steps} steps: {record['validation']}")
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


def _load_pretrained(path: str, data: FolderData, results: dict) -> tuple[GexBertForMaskedExpression,
                                                                         GexBertTokenizer]:
    """A model and tokenizer kept by an earlier run; its pretraining record comes along when available."""
    folder = Path(path)
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
    _say(f"loaded the pretrained model of {folder} ({record.get('steps')} steps)")
    return model, tokenizer


def _say(message: str) -> None:
    """A timestamped progress line (long runs go to log files, where progress bars are off)."""
    print(f"[{time.strftime('%H:%M:%S')}] benchmark: {message}", flush=True)


def _guard(results: dict, task: str, run) -> None:
    """Run one task; a failure is recorded (and reported) instead of losing the other tasks' numbers."""
    _say(f"{task} ...")
    try:
        results[task] = run()
        _say(f"{task} done")
    except Exception as error:  # noqa: BLE001 - any failure must land in the report, not kill a 30-minute run
        results["errors"][task] = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        print(f"benchmark: task {task} failed: {error}")


def _time_steps(tokenizer, samples, args: BenchmarkArguments, device: str, workdir: Path) -> float:
    """Seconds per pretraining step on this machine right now (a few warm-up steps of the real model)."""
    _, record = pretrain(tokenizer, samples, args, "both", 0.5, 6, workdir, device)
    return max(record["seconds"] / 6, 1e-3)


def _classification(model, tokenizer, data: FolderData, args: BenchmarkArguments, seeds: list[int], device: str,
                    workdir: Path) -> dict:
    labels = data.clinical_train[data.label_column].astype(str)
    class_names = sorted(labels.unique())
    lookup = {name: i for i, name in enumerate(class_names)}
    y_train = labels.map(lookup).to_numpy()
    y_test = data.clinical_test[data.label_column].astype(str).map(lookup).to_numpy()
    keep = ~pd.isna(y_test)
    raw_test, y_test = data.raw_test[keep], y_test[keep].astype(int)
    sizes = [size if size == "all" else int(size) for size in args.panel_sizes.split(",")]
    finetune = None
    if args.finetune:
        finetune = _classification_finetuner(model, tokenizer, data, y_train, raw_test, class_names, args, workdir,
                                             device)
    return run_panel_classification(
        model, tokenizer, data.raw_train, y_train, data.validation, raw_test, y_test, class_names, sizes, seeds,
        heavy_baselines_max_panel=64 if len(y_train) * len(class_names) > 20000 else 10**9, gexbert_max_panel=4 * args.max_genes, max_queries=args.max_queries, quick=args.quick,
        finetune=finetune, finetune_panels=[int(k) for k in args.finetune_panels.split(",") if k],
        progress=args.progress)


def _finetune_arguments(args: BenchmarkArguments, task: str, workdir: Path, seed: int, panel_size: int):
    from ..training.finetune import FinetuneArguments

    return FinetuneArguments(task=task, model="(in memory)", output_dir=str(workdir / f"finetune_{task}_{seed}"),
                             panel_size=panel_size, panel_seed=seed, query_unseen=True,
                             max_queries=min(args.max_queries, 64), epochs=1 if args.quick else args.finetune_epochs,
                             batch_size=32 if task == "classify" else 64,
                             learning_rate=args.finetune_learning_rate,
                             encoder_learning_rate_ratio=args.finetune_encoder_lr_ratio, weight_decay=0.01,
                             warmup_ratio=0.1, early_stopping_patience=2, seed=seed, max_genes=None,
                             progress=False, overwrite=True)


def _classification_finetuner(model, tokenizer, data: FolderData, y_train, raw_test, class_names, args, workdir,
                              device):
    """End-to-end fine-tuning of `GexBertForSequenceClassification` on the panel, unseen genes entered as MASK
    queries; the validation part of train picks the best epoch."""
    try:
        from ..training.finetune import finetune_classifier, predict_classes
    except ImportError:
        return None
    train = EncodedSamples.from_frame(tokenizer, data.raw_train[~data.validation],
                                      {"labels": y_train[~data.validation]})
    validation = EncodedSamples.from_frame(tokenizer, data.raw_train[data.validation],
                                           {"labels": y_train[data.validation]})
    test = EncodedSamples.from_frame(tokenizer, raw_test)

    def run(panel: list[str], seed: int) -> np.ndarray:
        finetune_args = _finetune_arguments(args, "classify", workdir, seed, len(panel))
        result = finetune_classifier(model.to(device), tokenizer, train, validation, class_names, finetune_args,
                                     panel_genes=panel)
        probabilities = predict_classes(result.model.to(device), tokenizer, test, panel_genes=panel,
                                        query_unseen=True)
        model.cpu()
        shutil.rmtree(finetune_args.output_dir, ignore_errors=True)
        return probabilities

    return run


def _survival_finetuner(model, tokenizer, data: FolderData, args, workdir, device):
    """`GexBertForSurvival` fine-tuned on one type's train samples with only the panel visible (largest K only)."""
    try:
        from ..training.finetune import finetune_survival, predict_risk
    except ImportError:
        return None
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
        raw = data.raw_train[rows]
        events = clinical[event_column].to_numpy(int)
        rng = np.random.default_rng([seed, 13])
        validation = np.zeros(len(raw), dtype=bool)
        for value in (0, 1):
            members = np.flatnonzero(events == value)
            validation[rng.choice(members, size=int(round(0.25 * len(members))), replace=False)] = True
        fields = {"survival_time": clinical[time_column].to_numpy(float), "event": events}
        train = EncodedSamples.from_frame(tokenizer, raw[~validation],
                                          {key: value[~validation] for key, value in fields.items()})
        val = EncodedSamples.from_frame(tokenizer, raw[validation],
                                        {key: value[validation] for key, value in fields.items()})
        test = EncodedSamples.from_frame(tokenizer, data.raw_test[test_rows])
        finetune_args = _finetune_arguments(args, "survival", workdir, seed, len(panel))
        result = finetune_survival(model.to(device), tokenizer, train, val, finetune_args, panel_genes=panel)
        risk = predict_risk(result.model.to(device), tokenizer, test, panel_genes=panel, query_unseen=True)
        model.cpu()
        shutil.rmtree(finetune_args.output_dir, ignore_errors=True)
        return risk

    return run


def main_json(path: str) -> int:
    """Run from a JSON file of BenchmarkArguments (the recipes' entry point)."""
    return run_benchmark(BenchmarkArguments(**json.loads(Path(path).read_text())))
