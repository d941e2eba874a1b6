"""The `gexbert design-panel` run: the GexBERT design on the train split, the classical designs from the same train
rows and candidates, and every panel judged on the test split (and on `--eval_data_dir`) while the budget lasts.
The command's arguments and file writing live in `gexbert_hf.commands.design_panel`."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..commands.design_panel import (
    DesignPanelArguments,
    design_settings,
    machine_line,
    parse_sizes,
    say,
    write_design,
)
from ..data.gene_ids import read_gene_list
from ..errors import ExpressionInputError
from ..loading import load_model_and_tokenizer, refuse_training_overlap, resolve_model
from ..modeling_gexbert import GexBertForMaskedExpression
from ..outputs import claim_output_dir
from ..panel_design import PanelDesign, PanelInputError, design_panel, resolve_request
from .benchmark_data import FolderData, classification_gate
from .evaluate import load_evaluation_data
from .panel_benchmark import PanelBench, judge_panels
from .panel_report import DESIGN, write_panel_report
from .panel_selection import RANDOM_SEEDS, classical_rankings, random_panel
from .reports import write_json

DESIGN_SHARE, CLASSICAL_SHARE = 0.35, 0.15  # of --minutes; judging the panels on test gets the rest
SIZE_PRIORITY = (16, 8, 32, 64)  # judged first: the target size, then the moonshot pairs
# within a size: the design, then the rivals the issue names first (column subset for restoration, greedy LR the
# strongest classical design measured before), so a budget that runs out drops the weakest comparisons
JUDGING_ORDER = (DESIGN, "pivoted QR", "greedy LR", "mRMR", "L1 LR", "variance")

__all__ = ["DesignPanelArguments", "design_panel_from_arguments"]


def design_panel_from_arguments(args: DesignPanelArguments) -> int:
    """The command: check everything, design, compare, write."""
    started = time.perf_counter()
    sizes = parse_sizes(args.size)
    refuse_training_overlap(args.model, args.data_dir)
    model_path = Path(resolve_model(args.model))
    inputs = {"--model": model_path, "--data_dir": args.data_dir, "--candidates": args.candidates,
              "--must_include": args.must_include, "--eval_data_dir": args.eval_data_dir}
    folder = claim_output_dir(args.output, "design-panel", inputs, args.overwrite)
    model, tokenizer = load_model_and_tokenizer(model_path)
    if not isinstance(model, GexBertForMaskedExpression):
        raise ExpressionInputError(f"{args.model}: panel design needs a pretrained masked-expression model, this "
                                   f"folder holds a {type(model).__name__}")
    data, record = load_evaluation_data(args, tokenizer)
    labels = _labels(tokenizer, data, args)
    candidates = read_gene_list(args.candidates) if args.candidates else None
    must_include = read_gene_list(args.must_include) if args.must_include else None
    genes = list(data.raw_train.columns)
    pool, kept, sizes, objective = resolve_request(
        genes, sizes, args.objective, labels is not None, candidates, must_include,
        candidates_source=f"--candidates {args.candidates}", must_include_source=f"--must_include {args.must_include}")
    results = {"arguments": asdict(args), "model": {"name": args.model, "path": str(model_path)}, "data": record,
               "sizes": sizes, "minutes": args.minutes, "machine": machine_line(), "timings": {}}
    with folder.writing() as output:
        budget = args.minutes * 60
        share = DESIGN_SHARE if args.compare else 0.95
        say(f"designing {objective} panels of {', '.join(map(str, sizes))} genes from {len(pool)} candidates "
            f"({share * args.minutes:.1f} min) ...")
        design = design_panel(model, tokenizer, data.raw_train, labels if objective != "restore" else None,
                              data.validation, sizes, objective, pool, kept, minutes=share * args.minutes,
                              seed=args.seed, progress=args.progress, **design_settings(args.quick))
        write_design(output, design, sizes)
        results["design"] = asdict(design) | {"pool_size": len(pool)}
        results["rankings"] = {DESIGN: design.genes}
        results["timings"]["design"] = design.seconds
        write_json(output / "results.json", results)
        if args.compare:
            _compare(model, tokenizer, data, labels, objective, pool, kept, sizes, design, args, results, output,
                     deadline=started + budget)
        results["timings"]["total"] = time.perf_counter() - started
        write_json(output / "results.json", results)
        write_panel_report(results, output)
    say(f"done in {results['timings']['total'] / 60:.1f} min: {Path(args.output) / 'panel.tsv'}, report.md")
    return 0


def _labels(tokenizer, data: FolderData, args: DesignPanelArguments) -> np.ndarray | None:
    """Class labels of the train rows where the data has usable ones (the study's gate: not standardised within
    type), else None."""
    if data.label_column is None or args.objective == "restore":
        return None
    _, skipped = classification_gate(tokenizer, data, "on" if args.objective in ("classify", "both") else "auto")
    if skipped is not None:
        return None
    labels = data.clinical_train[data.label_column].astype(str).to_numpy()
    if len(set(labels)) < 2:
        raise PanelInputError(f"{args.data_dir}: column {data.label_column!r} has fewer than two classes in train")
    return labels


def _compare(model, tokenizer, data: FolderData, labels, objective: str, pool: list[str], kept: list[str],
             sizes: list[int], design: PanelDesign, args: DesignPanelArguments, results: dict, output: Path,
             deadline: float) -> None:
    """Classical designs on the same train rows, then every panel judged on the test split while time lasts."""
    genes = list(data.raw_train.columns)
    index = {gene: i for i, gene in enumerate(genes)}
    work = tokenizer.normalize(data.raw_train.to_numpy(), genes)
    classical_deadline = time.perf_counter() + CLASSICAL_SHARE * args.minutes * 60
    rankings, seconds = classical_rankings(work, labels if objective != "restore" else None, ~data.validation,
                                           [index[g] for g in kept], [index[g] for g in pool], sizes[-1], objective,
                                           max_rows=600 if args.quick else 2500, seed=args.seed,
                                           deadline=classical_deadline, say=say, notes=results["design"]["notes"])
    results["rankings"].update({name: [genes[i] for i in order] for name, order in rankings.items()})
    results["classical_seconds"] = seconds
    results["random_seeds"] = RANDOM_SEEDS
    order = sorted(sizes, key=lambda size: (SIZE_PRIORITY.index(size) if size in SIZE_PRIORITY else 99, size))
    methods = sorted(results["rankings"], key=lambda name: JUDGING_ORDER.index(name) if name in JUDGING_ORDER else 99)
    panels = [(name, size, results["rankings"][name][:size]) for size in order for name in methods]
    panels += [(f"random {seed}", size, [genes[i] for i in random_panel([index[g] for g in kept],
                                                                        [index[g] for g in pool], size, seed)])
               for seed in range(RANDOM_SEEDS) for size in order]
    classify, restore = labels is not None and objective != "restore", True
    results.update(classify_on_test=classify, restore_on_test=restore)
    bench = _bench(model, tokenizer, data, labels, args)
    results["evaluation_settings"] = {"train_rows": len(bench.train_rows), "restore_rows": len(bench.restore_rows)}
    say(f"judging {len(panels)} panels on the test split ...")
    results["evaluation"] = judge_panels(bench, panels, classify, restore, deadline - _transfer_reserve(args), say,
                                         on_result=lambda partial: write_json(output / "results.json",
                                                                              results | {"evaluation": partial}))
    if args.eval_data_dir:
        _transfer(model, tokenizer, panels, classify, args, results, deadline)


def _bench(model, tokenizer, data: FolderData, labels, args: DesignPanelArguments) -> PanelBench:
    rng = np.random.default_rng([args.seed, 41])
    train_rows = np.sort(rng.choice(len(data.raw_train), min(args.train_rows, len(data.raw_train)), replace=False))
    restore_rows = np.sort(rng.choice(len(data.raw_test), min(args.restore_rows, len(data.raw_test)), replace=False))
    labels_test = (data.clinical_test[data.label_column].astype(str).to_numpy() if labels is not None else None)
    return PanelBench(model, tokenizer, data, train_rows, restore_rows,
                      None if labels is None else labels[train_rows], labels_test,
                      max_queries=16 if args.quick else 64, quick=args.quick)


def _transfer_reserve(args: DesignPanelArguments) -> float:
    return 0.2 * args.minutes * 60 if args.eval_data_dir else 0.0


def _transfer(model, tokenizer, panels: list, classify: bool, args: DesignPanelArguments, results: dict,
              deadline: float) -> None:
    """The same panels judged on another cohort's own split (readers refitted there, panels not re-chosen)."""
    other = DesignPanelArguments(**(asdict(args) | {"data_dir": args.eval_data_dir}))
    data, record = load_evaluation_data(other, tokenizer)
    present = set(data.raw_train.columns)
    usable = [(m, k, p) for m, k, p in panels if set(p) <= present]
    labels = _labels(tokenizer, data, other) if classify else None
    bench = _bench(model, tokenizer, data, labels, other)
    results["transfer"] = judge_panels(bench, usable, labels is not None, True, deadline, say)
    results["transfer"].update(source=args.eval_data_dir, data=record,
                               missing_genes=len(panels) - len(usable))
    results["transfer_flags"] = {"classify_on_test": labels is not None, "restore_on_test": True}


