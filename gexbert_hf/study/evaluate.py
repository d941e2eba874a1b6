"""`gexbert evaluate`: judge a pretrained GexBERT, without retraining, on a cohort it was not trained on.

The cohort is a data folder in the shared layout (expression.tsv.gz, clinical.tsv, split.tsv) or an `.h5ad` file
(obs holds the labels and, optionally, a `split` column). Two stages, each held to its share of the time budget:
imputation at several MCAR rates on the test split against KNN, SoftImpute and the iterative imputer (fitted and
tuned on the cohort's train split only), and, where the cohort has type labels that are not standardised within
type, classification from random gene panels by logistic regression on GexBERT's embedding of the panel, on the
panel plus GexBERT-restored genes, and on the raw panel. Classification runs first (it is usually cheap, and
imputation then gets all the time it left); the budget is the benchmark's (`stage_budget`: a unit, one seed of one
setting, starts only while the stage's longest unit so far still fits in what is left), except that no first seed
is run past it. Only genes the model's vocabulary knows are scored; the others are listed in the report.
results.json is written after each stage, so a crash keeps the finished ones.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.cohorts import Cohort
from ..data.gene_ids import read_gene_list
from ..data.readers import apply_split, join_cohort, load_split, read_clinical, read_expression
from ..data.splits import stratified_split
from ..errors import ExpressionInputError, preview
from ..inference import embed, restore_from_panel
from ..input_scale import check_frame_scale, scale_check_field
from ..loading import load_model_and_tokenizer, refuse_training_overlap, resolve_model, shipped_checkpoint
from ..modeling_gexbert import GexBertForMaskedExpression
from ..outputs import claim_output_dir
from ..tokenization_gexbert import GexBertTokenizer
from ..training.adapt import AdaptationRecipe, adapt_model
from ..training.sample_hashes import shared_samples
from .benchmark import machine_record
from .benchmark_data import CLASSIFICATION_MODES, FolderData, classification_gate, split_cohort
from .evaluate_plan import plan_for
from .evaluate_report import write_report
from .imputation_benchmark import IMPUTERS, prepare_imputers, run_scenario
from .panel_classification import PanelTask, informative_queries, record_scores
from .reports import atomic_write, write_json
from .stage_budget import EVALUATE_RESERVE, EVALUATE_SHARES, RunClock, StageBudget, budgeted_rounds
from .working_scale import working_frame

ADAPTED_METHOD = "GexBERT adapted"
MIN_MEASURED_SHARE = 0.5  # a gene measured in fewer of the cohort's samples than this is left out of the scores
EMBEDDING_METHOD = "GexBERT embedding→LR"
RESTORED_METHOD = "GexBERT panel+restored→LR"


@dataclass
class EvaluateArguments:
    """Judge one pretrained checkpoint on one cohort (a data folder or an .h5ad file), without retraining it."""

    model: str = field(metadata={"help": "A shipped checkpoint (tcga31-mirna, tcga13-mrna) or a model folder with "
                                         "a masked-expression head."})
    data_dir: str = field(metadata={"help": "Data folder laid out like ../shared/data/<folder> (expression.tsv.gz, "
                                            "clinical.tsv, split.tsv), or an .h5ad file (obs: labels, optional "
                                            "`split` column; without it a seeded 80/20 split is drawn)."})
    output: str = field(metadata={"help": "Where report.md, results.json and the PNG plots go."})
    quick: bool = field(default=False, metadata={"help": "Tiny settings everywhere (tests, smoke runs)."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an earlier evaluation in --output (only the "
                                                             "files it wrote)."})
    seeds: int = field(default=5, metadata={"help": "Random masks / panels per setting (the budget may stop some)."})
    time_budget_minutes: float = field(default=30.0, metadata={
        "help": "Wall time of the whole run: each stage stops its remaining seeds when its share is spent."})
    missing_rates: str = field(default="30,50,70,90", metadata={"help": "MCAR missing rates (%) of the test split."})
    panel_sizes: str = field(default="16,32,64", metadata={"help": "Classification panel sizes (random genes)."})
    panel: str | None = field(default=None, metadata={
        "help": "A designed panel to score beside the random ones (gexbert design-panel's panel.tsv, first column "
                "`gene`, or a panel_K.txt, one gene a line), read by the same classifiers."})
    classification: str = field(default="auto", metadata={
        "help": "auto: only with type labels that are not standardised within each type (such values leak the "
                "type through their distribution shapes); on; off."})
    label_column: str = field(default="cancer_type", metadata={"help": "Clinical (or obs) column of the class."})
    mlp_baseline: bool = field(default=True, metadata={"help": "Also the study's MLP on the raw panel (its "
                                                                "strongest panel baseline on tcga31)."})
    imputation_test_rows: int = field(default=200, metadata={"help": "At most this many test samples are imputed "
                                                                     "(fewer for wide profiles)."})
    genes_per_pass: int = field(default=1024, metadata={"help": "Genes GexBERT reads per imputation pass."})
    layer: str | None = field(default=None, metadata={"help": ".h5ad input: the layer to read instead of X."})
    gene_column: str | None = field(default=None, metadata={"help": ".h5ad input: the var column naming genes."})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda."})
    seed: int = field(default=0, metadata={"help": "Seed of the validation carve-out (and of an .h5ad's split)."})
    progress: bool = field(default=True, metadata={"help": "Progress lines."})
    scale_check: str = scale_check_field()
    adapt_minutes: float = field(default=0.0, metadata={
        "help": "When > 0: also adapt the checkpoint on this cohort's train split (`gexbert adapt`, this many "
                "minutes) and show it beside the checkpoint as given, on the same masks and baselines. The "
                "adaptation's minutes come on top of --time_budget_minutes."})


def say(message: str) -> None:
    """A timestamped progress line."""
    print(f"[{time.strftime('%H:%M:%S')}] evaluate: {message}", flush=True)


# ----------------------------------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------------------------------
def run_evaluation(args: EvaluateArguments) -> int:
    """Judge `args.model` on `args.data_dir`; write report.md, results.json and plots under `args.output`."""
    started = time.perf_counter()
    if args.classification not in CLASSIFICATION_MODES:
        raise ExpressionInputError(f"--classification must be one of {CLASSIFICATION_MODES}, got "
                                   f"{args.classification!r}")
    refuse_training_overlap(args.model, args.data_dir)  # before anything is read or written
    model_path = Path(resolve_model(args.model))
    folder = claim_output_dir(args.output, "evaluate", {"--model": model_path, "--data_dir": args.data_dir},
                              args.overwrite)
    model, tokenizer = load_model_and_tokenizer(model_path)
    if not isinstance(model, GexBertForMaskedExpression):
        raise ExpressionInputError(f"{args.model}: evaluation needs a pretrained masked-expression model, this "
                                   f"folder holds a {type(model).__name__}")
    data, data_record = load_evaluation_data(args, tokenizer)
    if args.panel:
        read_panel_file(args.panel, list(data.raw_train.columns))  # refused before anything runs
    data_record["training_overlap"] = training_overlap(model, data)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    results: dict = {"arguments": asdict(args), "model": _model_record(args.model, model_path, model, tokenizer),
                     "data": data_record, "machine": machine_record(device), "errors": {},
                     "timings": {"load": time.perf_counter() - started}}
    adapted = None
    if args.adapt_minutes > 0:
        begun = time.perf_counter()
        adapted, results["adaptation"] = adapt_on_train(model, tokenizer, data, args)
        adapted = (adapted[0].to(device), adapted[1])
        results["timings"]["adaptation"] = time.perf_counter() - begun
        started += results["timings"]["adaptation"]  # the adaptation's minutes come on top of the budget
    with folder.writing() as output:
        if data_record["unknown_genes"]:
            atomic_write(output / "unknown_genes.txt", "\n".join(data_record["unknown_genes"]) + "\n")
        return _run_stages(model.to(device), tokenizer, data, args, results, output, started, adapted)


def training_overlap(model, data: FolderData) -> dict:
    """Cohort samples whose salted hash is in the checkpoint's record of its training samples
    (`config.training_samples_hash`), with a warning when there are any: their scores would flatter the model."""
    record = getattr(model.config, "training_samples_hash", None)
    found = {"recorded": bool(record), "test": shared_samples(record, data.raw_test.index),
             "train": shared_samples(record, data.raw_train.index)}
    if found["test"]:
        warnings.warn(f"{len(found['test'])} of the cohort's {len(data.raw_test)} test samples were in the "
                      f"checkpoint's training set (e.g. {found['test'][0]}): its scores on them flatter it",
                      stacklevel=2)
        say(f"WARNING: {len(found['test'])} test samples are in the checkpoint's training set")
    return found


def adapt_on_train(model, tokenizer: GexBertTokenizer, data: FolderData, args: EvaluateArguments
                   ) -> tuple[tuple, dict]:
    """The checkpoint adapted on the cohort's train split (`gexbert adapt`'s default recipe), and its record."""
    say(f"adapting on {len(data.raw_train)} train samples for {args.adapt_minutes:g} min ...")
    recipe = AdaptationRecipe(seed=args.seed)
    minutes = 0.05 if args.quick else args.adapt_minutes
    result = adapt_model(model, tokenizer, data.raw_train, recipe, minutes=minutes, progress=args.progress,
                         parent=args.model, source=f"{args.data_dir} (train split)")
    say(f"adapted: {result.record['steps']} steps in {result.record['train_seconds']:.0f} s")
    return (result.model, result.tokenizer), result.record


def _run_stages(model, tokenizer: GexBertTokenizer, data: FolderData, args: EvaluateArguments, results: dict,
                output: Path, started: float, adapted: tuple | None = None) -> int:
    """Classification when it applies (in its share of the budget), then imputation in all the time left;
    results.json after each."""
    results["plan"] = asdict(plan_for(data.raw_train.shape[1], args.quick, args.imputation_test_rows))
    results["classification_check"], skipped = classification_gate(tokenizer, data, args.classification)
    if skipped is None and data.label_column is None:  # `--classification on` cannot conjure labels
        skipped = f"no type labels (no column {args.label_column!r})"
    elif skipped is None and data.clinical_train[data.label_column].nunique() < 2:
        skipped = "fewer than two classes in the train split"
    stages = ["imputation"] if skipped is not None else ["classification", "imputation"]
    clock = RunClock(args.time_budget_minutes * 60, stages, started, shares=EVALUATE_SHARES, reserve=EVALUATE_RESERVE)
    if skipped is not None:
        results["classification"] = {"skipped": skipped}
    else:
        _stage(results, clock, "classification", output,
               lambda budget: classification_stage(model, tokenizer, data, args, budget))
    _stage(results, clock, "imputation", output,
           lambda budget: imputation_stage(model, tokenizer, data, args, budget, adapted))
    results["timings"]["total"] = _since(started)
    write_json(output / "results.json", results)
    try:
        write_report(results, output)
    except Exception:  # noqa: BLE001 - the numbers are saved in results.json
        traceback.print_exc()
        return 1
    write_json(output / "results.json", results)  # with the verdicts the report added
    say(f"done in {results['timings']['total'] / 60:.1f} min: {output / 'report.md'}")
    return 0


def _since(started: float) -> float:
    return time.perf_counter() - started


def _stage(results: dict, clock: RunClock, name: str, output: Path, run: Callable[[StageBudget], dict]) -> None:
    """One stage in its share of the budget; a failure is recorded instead of losing the other stage, and
    results.json is written as soon as the stage ends."""
    budget = clock.stage(name)
    say(f"{name} ({budget.seconds / 60:.1f} min of the budget) ...")
    begun = time.perf_counter()
    try:
        results[name] = run(budget)
    except Exception as error:  # noqa: BLE001 - any failure must land in the report, not kill the run
        results["errors"][name] = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        say(f"{name} failed: {error}")
    results["budget"] = clock.record()
    results["timings"][name] = time.perf_counter() - begun
    write_json(output / "results.json", results)
    say(f"{name}: {len(budget.done)} units done, {len(budget.skipped)} skipped for time")


def _model_record(name: str, path: Path, model, tokenizer: GexBertTokenizer) -> dict:
    """What the report says about the judged checkpoint."""
    return {"name": name, "path": str(path), "shipped": shipped_checkpoint(path),
            "vocabulary_size": len(tokenizer.genes), "normalization": tokenizer.normalization,
            "n_parameters": sum(parameter.numel() for parameter in model.parameters()),
            "max_genes": model.config.max_genes, "pooling": model.config.pooling}


# ----------------------------------------------------------------------------------------------------------------------
# the cohort
# ----------------------------------------------------------------------------------------------------------------------
def read_cohort_input(args: EvaluateArguments) -> tuple[Cohort, pd.Series, str]:
    """Expression, clinical table and split of a data folder or an `.h5ad` file, and where the split came from."""
    source = Path(args.data_dir)
    if source.name.lower().endswith(".h5ad"):
        expression = read_expression(source, layer=args.layer, gene_column=args.gene_column)
        clinical = read_clinical(source)  # the obs table
        label = clinical[args.label_column] if args.label_column in clinical.columns else None
        if "split" in clinical.columns:
            split, origin = clinical["split"].astype(str).str.strip().str.lower(), "obs column `split`"
        else:
            split = stratified_split(label, expression.index, 0.2, args.seed)
            origin = f"no split given: a seeded (seed {args.seed}) 80/20 split stratified by the label, drawn here"
    elif source.is_dir():
        expression = read_expression(source / "expression.tsv.gz", orientation="genes_x_samples")
        clinical_path = source / "clinical.tsv"
        clinical = read_clinical(clinical_path) if clinical_path.is_file() else pd.DataFrame(index=expression.index)
        split, origin = load_split(source), "split.tsv"
    else:
        raise ExpressionInputError(f"{source}: neither a data folder (expression.tsv.gz, clinical.tsv, split.tsv) "
                                   "nor an .h5ad file")
    label_column = args.label_column if args.label_column in clinical.columns else None
    cohort = join_cohort(expression, clinical, label_column=label_column, missing_clinical="keep",
                         expression_source=str(source), clinical_source=f"{source} (clinical)", name=source.name)
    return cohort, apply_split(cohort, split, source=f"{source} ({origin})"), origin


def load_evaluation_data(args: EvaluateArguments, tokenizer: GexBertTokenizer) -> tuple[FolderData, dict]:
    """The cohort restricted to the genes the model knows and that are measured in every sample (scores need the
    true value of each hidden entry), split into train (validation carved out) and test; and its record."""
    cohort, split, origin = read_cohort_input(args)
    expression = cohort.expression
    known, unknown = tokenizer.match_genes(expression, source=str(args.data_dir))  # unknown: listed in the report
    check_frame_scale(tokenizer, known, str(args.data_dir), args.scale_check,
                      for_adaptation=getattr(args, "adapt_minutes", 0) > 0)
    used = split.index[split.isin(["train", "test"]).to_numpy()]
    measured_share = known.loc[used].notna().mean(axis=0)
    incomplete = list(known.columns[(measured_share < MIN_MEASURED_SHARE).to_numpy()])
    if len(incomplete) == known.shape[1]:
        raise ExpressionInputError(f"{args.data_dir}: every gene the model knows is missing in more than half of the "
                                   "samples; the scores need measured genes")
    cohort.expression = known.drop(columns=incomplete)
    scattered = int(cohort.expression.loc[used].isna().to_numpy().sum())
    data = split_cohort(Path(args.data_dir).name.removesuffix(".h5ad"), cohort, split.reindex(known.index),
                        seed=args.seed)
    if len(data.raw_test) < 2 or len(data.raw_train) < 10:
        raise ExpressionInputError(f"{args.data_dir}: {len(data.raw_train)} train and {len(data.raw_test)} test "
                                   "samples; evaluation needs at least 10 and 2")
    types = data.clinical_train[data.label_column].value_counts().to_dict() if data.label_column else {}
    record = {"folder": data.name, "source": str(args.data_dir), "split": origin, "n_train": len(data.raw_train),
              "n_validation": int(data.validation.sum()), "n_test": len(data.raw_test),
              "n_genes_in_file": expression.shape[1], "n_genes": data.raw_train.shape[1],
              "unknown_genes": unknown, "genes_with_missing_values": incomplete,
              "scattered_missing_cells": scattered,
              "normalization": data.normalization, "label_column": data.label_column, "types": types}
    return data, record


# ----------------------------------------------------------------------------------------------------------------------
# imputation
# ----------------------------------------------------------------------------------------------------------------------
def imputation_stage(model, tokenizer: GexBertTokenizer, data: FolderData, args: EvaluateArguments,
                     budget: StageBudget, adapted: tuple | None = None) -> dict:
    """MCAR at each rate on the test split, GexBERT against the study's imputers tuned on the train split; seeds
    run in order (every rate gets seed 0 first), each (rate, seed) unit only while `budget` expects it to fit."""
    plan = plan_for(data.raw_train.shape[1], args.quick, args.imputation_test_rows)
    imputers, center, scale, header = prepare_imputers(
        model, tokenizer, data.raw_train, data.validation, data.raw_test, max_test_rows=plan.test_rows,
        max_reference_rows=plan.reference_rows, chunk=args.genes_per_pass, knn_grid=plan.knn_grid,
        soft_grid=plan.soft_grid, iterative_rounds=plan.iterative_rounds, tuning_rows=plan.tuning_rows,
        tuning_genes=plan.tuning_genes, soft_max_iter=plan.soft_max_iter)
    scenarios = [f"MCAR {int(rate)}%" for rate in _numbers(args.missing_rates)]
    results: dict = {"scenarios": scenarios, "seeds": [], **header, "per_scenario": {}}
    rounds = {scenario: list(range(args.seeds)) for scenario in scenarios}
    for scenario, seed in budgeted_rounds(budget, rounds, first_round=False):
        found = run_scenario(imputers, scenario, [seed], IMPUTERS, center, scale)
        if adapted is not None:  # the same masks (drawn from the seed), the same test rows and working scale
            variant = dataclasses.replace(imputers, model=adapted[0], tokenizer=adapted[1])
            extra = run_scenario(variant, scenario, [seed], ("GexBERT",), center, scale)
            found["methods"][ADAPTED_METHOD] = extra["methods"]["GexBERT"]
            found["seconds"][ADAPTED_METHOD] = extra["seconds"]["GexBERT"]
            found["calibration_80_adapted"] = extra["calibration_80"]
        _merge(results["per_scenario"].setdefault(scenario, {}), found)
        if seed not in results["seeds"]:
            results["seeds"].append(seed)
    results["per_scenario"] = {s: results["per_scenario"][s] for s in scenarios if s in results["per_scenario"]}
    return results


def _merge(into: dict, found: dict) -> None:
    """Append one seed's lists (`run_scenario`'s nested dicts of lists) to those gathered so far."""
    for key, value in found.items():
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        else:
            into.setdefault(key, []).extend(value)


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


# ----------------------------------------------------------------------------------------------------------------------
# classification
# ----------------------------------------------------------------------------------------------------------------------
def classification_stage(model, tokenizer: GexBertTokenizer, data: FolderData, args: EvaluateArguments,
                         budget: StageBudget) -> dict:
    """Type from random panels: logistic regression on GexBERT's embedding of the panel, on the panel plus the genes
    GexBERT restores from it, and on the raw panel (and the study's MLP); hyperparameters chosen on the validation
    part at each size's first panel. Seeds in order, each (size, seed) unit only while `budget` expects it to fit."""
    task, class_names = _panel_task(model, tokenizer, data, args)
    genes = list(task.raw_train.columns)
    sizes = [k for k in _numbers(args.panel_sizes) if k < len(genes)]
    results: dict = {"panel_sizes": [str(k) for k in sizes], "seeds": [], "classes": class_names, "per_panel": {},
                     "sizes_left_out": [k for k in _numbers(args.panel_sizes) if k >= len(genes)]}
    entries = {k: {"n_features": k, "methods": {}, "chosen": {}, "seconds": {}} for k in sizes}
    tuned: dict[int, dict] = {k: {} for k in sizes}
    rounds = {f"panel {k}": list(range(args.seeds)) for k in sizes}
    for item, seed in budgeted_rounds(budget, rounds, first_round=False):
        k = int(item.removeprefix("panel "))
        panel = sorted(np.random.default_rng([seed, k]).choice(genes, size=k, replace=False).tolist())
        _run_panel(task, panel, seed, tuned[k], entries[k], args.mlp_baseline)
        if seed not in results["seeds"]:
            results["seeds"].append(seed)
    results["per_panel"] = {str(k): entries[k] for k in sizes if entries[k]["methods"]}
    if args.panel:  # one unit, scored whatever the budget: the user asked for this panel by name
        designed = read_panel_file(args.panel, genes)
        entry = {"n_features": len(designed), "genes": designed, "methods": {}, "chosen": {}, "seconds": {}}
        _run_panel(task, designed, 0, {}, entry, args.mlp_baseline)
        results["per_panel"][f"{len(designed)} designed"] = entry
    results["panel_sizes"] = list(results["per_panel"])
    return results


def read_panel_file(path: str | Path, genes: list[str]) -> list[str]:
    """The genes of a designed panel, in its order: `panel.tsv` (first column `gene`) or one gene a line; refused
    naming the genes the cohort does not measure (or the model does not know)."""
    path = Path(path)
    if not path.is_file():
        raise ExpressionInputError(f"{path}: panel file does not exist")
    lines = path.read_text().splitlines()
    if lines and lines[0].split("\t")[0].strip() == "gene":
        panel = list(dict.fromkeys(line.split("\t")[0].strip() for line in lines[1:] if line.strip()))
    else:
        panel = read_gene_list(path)
    absent = [gene for gene in panel if gene not in set(genes)]
    if absent or not panel:
        raise ExpressionInputError(f"{path}: {len(absent)} of its {len(panel)} genes are not among the cohort's "
                                   f"measured model genes: {preview(absent)}" if panel else f"{path}: no gene in it")
    return panel


def _panel_task(model, tokenizer: GexBertTokenizer, data: FolderData, args: EvaluateArguments
                ) -> tuple[PanelTask, list[str]]:
    """The study's panel task over the labelled train rows and the test rows whose class train has."""
    labels = data.clinical_train[data.label_column]
    labelled = labels.notna().to_numpy()
    class_names = sorted(labels[labelled].astype(str).unique())
    lookup = {name: i for i, name in enumerate(class_names)}
    y_test = data.clinical_test[data.label_column].astype(str).map(lookup)
    keep = y_test.notna().to_numpy()
    raw_train, raw_test = data.raw_train[labelled], data.raw_test[keep]
    plan = plan_for(raw_train.shape[1], args.quick, args.imputation_test_rows)
    task = PanelTask(model, tokenizer, raw_train, raw_test, working_frame(tokenizer, raw_train),
                     working_frame(tokenizer, raw_test), labels[labelled].astype(str).map(lookup).to_numpy(),
                     y_test[keep].to_numpy(int), data.validation[labelled], len(class_names), ("LR", "MLP"),
                     heavy_baselines_max_panel=0, gexbert_max_panel=10**9, max_queries=plan.max_queries,
                     quick=args.quick)
    return task, class_names


def _run_panel(task: PanelTask, panel: list[str], seed: int, tuned: dict, entry: dict, mlp: bool) -> None:
    """Every method on one panel: raw-panel LR (and MLP), GexBERT's panel embedding, panel + restored genes."""
    x_train, x_test = task.work_train[panel].to_numpy(), task.work_test[panel].to_numpy()
    if np.isnan(x_train).any() or np.isnan(x_test).any():  # scattered missing cells: train means for the baselines
        means = np.nan_to_num(np.nanmean(x_train, axis=0))
        x_train, x_test = (np.where(np.isnan(x), means, x) for x in (x_train, x_test))
    inputs = {"LR": (x_train, x_test, "LR")}
    if mlp:
        inputs["MLP"] = (x_train, x_test, "MLP")
    begun = time.perf_counter()
    inputs[EMBEDDING_METHOD] = (embed(task.model, task.tokenizer, task.raw_train[panel]).to_numpy(),
                                embed(task.model, task.tokenizer, task.raw_test[panel]).to_numpy(), "LR")
    entry["seconds"].setdefault("GexBERT embed", []).append(time.perf_counter() - begun)
    begun = time.perf_counter()
    fit = ~task.validation
    with warnings.catch_warnings():  # a gene constant on train scores NaN and is simply not chosen
        warnings.filterwarnings("ignore", message=".*are constant.*")
        warnings.filterwarnings("ignore", message=".*invalid value encountered.*")
        queries = informative_queries(task.work_train.loc[fit], task.y_train[fit], panel, task.max_queries)
    restored_train, _ = restore_from_panel(task.model, task.tokenizer, task.raw_train[panel], queries)
    restored_test, _ = restore_from_panel(task.model, task.tokenizer, task.raw_test[panel], queries)
    inputs[RESTORED_METHOD] = (np.hstack([x_train, restored_train]), np.hstack([x_test, restored_test]), "LR")
    entry["seconds"].setdefault("GexBERT restore", []).append(time.perf_counter() - begun)
    for method, method_inputs in inputs.items():
        begun = time.perf_counter()
        with warnings.catch_warnings():  # the MLP's batch of 128 is clipped on small cohorts: expected, not news
            warnings.filterwarnings("ignore", message=".*batch_size.*")
            probabilities = task.predict(method, method_inputs, seed, tuned, entry)
        record_scores(entry, method, task.y_test, probabilities)
        entry["seconds"].setdefault(method, []).append(time.perf_counter() - begun)


__all__ = ["EvaluateArguments", "classification_stage", "imputation_stage", "load_evaluation_data",
           "read_cohort_input", "run_evaluation"]
