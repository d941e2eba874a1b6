"""The `gexbert` command: argument parsing only, one library call per subcommand.

Each subcommand is an arguments dataclass parsed by `HfArgumentParser` (from flags, or from a single JSON file
argument) and handed to one library function, so the CLI, scripts and Python API cannot drift apart. A dataclass that
nests option dataclasses (`gexbert benchmark`'s `pretraining` and `finetuning`) is parsed by `NestedArgumentParser`:
dotted flags (`--pretraining.learning_rate 5e-4`) or nested JSON objects.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from transformers import HfArgumentParser

from .errors import GexBertError
from .nested_arguments import NestedArgumentParser, nested_fields
from .threads import configure_threads

# subcommand -> (module, arguments dataclass, function taking that dataclass; an int it returns is the exit code)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "benchmark": ("gexbert_hf.study.benchmark", "BenchmarkArguments", "run_benchmark"),
    "evaluate": ("gexbert_hf.study.evaluate", "EvaluateArguments", "run_evaluation"),
    "bench-speed": ("gexbert_hf.study.speed", "SpeedBenchmarkArguments", "run_speed_benchmark"),
    "bench-levers": ("gexbert_hf.study.speed.levers_run", "LeverArguments", "run_levers"),
    "build-dataset": ("gexbert_hf.data.build", "BuildDatasetArguments", "build_dataset_from_arguments"),
    "pretrain": ("gexbert_hf.training.pretrain", "PretrainArguments", "pretrain"),
    "finetune": ("gexbert_hf.training.finetune", "FinetuneArguments", "finetune"),
    "impute": ("gexbert_hf.commands.impute", "ImputeArguments", "impute_file"),
    "predict": ("gexbert_hf.commands.predict", "PredictArguments", "predict_file"),
    "embed": ("gexbert_hf.commands.embed", "EmbedArguments", "embed_file"),
    "export": ("gexbert_hf.commands.export", "ExportArguments", "export_model"),
    "demo": ("gexbert_hf.study.demo", "DemoArguments", "demo_from_arguments"),
    "adapt": ("gexbert_hf.commands.adapt", "AdaptArguments", "run_adapt"),
    "design-panel": ("gexbert_hf.study.panel_run", "DesignPanelArguments", "design_panel_from_arguments"),
}
# what `gexbert --help` says of each, in order of use; a subcommand missing here is described by its module docstring
SUMMARIES: dict[str, str] = {
    "impute": "fill missing values and restore absent genes of an expression file (table or .h5ad)",
    "embed": "one vector per sample from any GexBERT (table, or .h5ad obsm['X_gexbert'])",
    "predict": "classes or survival risk from a fine-tuned GexBERT (table, or .h5ad obs columns)",
    "build-dataset": "expression + clinical (+ split) files -> a tokenized dataset and its fitted tokenizer",
    "pretrain": "masked-expression pretraining on a build-dataset folder",
    "finetune": "fine-tune a pretrained GexBERT for classification or survival (Trainer)",
    "export": "a model folder ready for the Hugging Face Hub (safetensors, remote code, tokenizer, card)",
    "evaluate": "judge a pretrained GexBERT on a cohort against imputation baselines, without retraining",
    "benchmark": "the paper's tasks on one data folder, GexBERT against its baselines",
    "bench-speed": "training and inference speed of GexBERT against the baselines",
    "bench-levers": "one section of the imputation speed levers study (accuracy, speed, command, onnx, profile, render)",
    "demo": "the whole story on the embedded cohort in a few CPU minutes",
    "adapt": "adapt a checkpoint to your own cohort (level refit + continued masked pretraining, minutes on CPU)",
    "design-panel": "choose the K genes worth measuring, GexBERT-designed beside classical selections",
}
# subcommands whose first bare word is an argument: `gexbert finetune classify ...` == `--task classify`
POSITIONAL: dict[str, str] = {"finetune": "--task"}


def make_parser(arguments_class: type, name: str) -> HfArgumentParser:
    """The subcommand's parser, its help made safe to print and its `--no_X` switches described."""
    parser_class = NestedArgumentParser if nested_fields(arguments_class) else HfArgumentParser
    parser = parser_class(arguments_class, prog=f"gexbert {name}", description=SUMMARIES.get(name))
    for action in parser._actions:
        if action.help is argparse.SUPPRESS:
            continue
        if action.help:
            # help strings are plain text in the dataclasses ("90% missing"); argparse reads `%` as a format code
            action.help = action.help.replace("%", "%%")
        if isinstance(action, argparse._StoreFalseAction) and action.option_strings[0].startswith("--no_"):
            # HfArgumentParser gives `--no_X` the help (and an inverted default) of `--X`: say what it really does
            action.help = f"Turn off --{action.dest} ({action.help.rstrip('.')})."
            action.default = argparse.SUPPRESS  # the value comes from --{dest}'s default, not from this switch
    # the command's required arguments first (--model, --input, --output), then the options shared with other commands
    for actions in (parser._actions, *(group._group_actions for group in parser._action_groups)):
        actions.sort(key=lambda action: not action.required)
    return parser


def summary(name: str) -> str:
    """One line on what subcommand `name` does (`SUMMARIES`, else the first line of its module's docstring)."""
    if name in SUMMARIES:
        return SUMMARIES[name]
    doc = (importlib.import_module(SUBCOMMANDS[name][0]).__doc__ or "").strip().split("\n")[0]
    return doc.split(": ", 1)[-1].rstrip(".") if doc else ""


def usage() -> str:
    """`gexbert --help`: each subcommand with one line on what it does, then where to learn more."""
    names = [*[name for name in SUMMARIES if name in SUBCOMMANDS], *sorted(set(SUBCOMMANDS) - set(SUMMARIES))]
    width = max(map(len, names))
    lines = [f"  {name:<{width}}  {summary(name)}" for name in names]
    return ("usage: gexbert SUBCOMMAND [--help] [options]   (or: gexbert SUBCOMMAND options.json)\n\n"
            "subcommands:\n" + "\n".join(lines) + "\n\n`gexbert SUBCOMMAND --help` lists its options; "
            "`gexbert --version` prints the versions.")


def version() -> str:
    """`gexbert --version`: the package and the libraries whose versions decide its behaviour."""
    import torch
    import transformers

    from . import __version__

    return f"gexbert-hf {__version__} (transformers {transformers.__version__}, torch {torch.__version__})"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-V", "--version"):
        print(version())
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        asked = bool(argv) and argv[0] in ("-h", "--help")
        unknown = f"gexbert: unknown subcommand {argv[0]!r}\n\n" if argv and not asked else ""
        print(unknown + usage(), file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    module_name, arguments_name, function_name = SUBCOMMANDS[argv[0]]
    module = importlib.import_module(module_name)
    parser = make_parser(getattr(module, arguments_name), argv[0])
    rest = argv[1:]
    if argv[0] in POSITIONAL and rest and not rest[0].startswith("-") and not rest[0].endswith(".json"):
        rest = [POSITIONAL[argv[0]], *rest]
    try:
        if len(rest) == 1 and rest[0].endswith(".json"):
            (arguments,) = parser.parse_json_file(rest[0])
        else:
            (arguments,) = parser.parse_args_into_dataclasses(rest)
        configure_threads()  # a thread count and wait policy that degrade gracefully on a busy machine
        result = getattr(module, function_name)(arguments)
    except GexBertError as error:  # bad input or arguments: a clear message, not a traceback
        print(f"gexbert {argv[0]}: error: {error}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
