"""The `gexbert` command: argument parsing only, one library call per subcommand.

Each subcommand is an arguments dataclass parsed by `HfArgumentParser` (from flags, or from a single JSON file
argument) and handed to one library function, so the CLI, scripts and Python API cannot drift apart.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from transformers import HfArgumentParser

from .errors import GexBertError
from .threads import configure_threads

# subcommand -> (module, arguments dataclass, function taking that dataclass; an int it returns is the exit code)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "benchmark": ("gexbert_hf.study.benchmark", "BenchmarkArguments", "run_benchmark"),
    "evaluate": ("gexbert_hf.study.evaluate", "EvaluateArguments", "run_evaluation"),
    "bench-speed": ("gexbert_hf.study.speed", "SpeedBenchmarkArguments", "run_speed_benchmark"),
    "build-dataset": ("gexbert_hf.data.build", "BuildDatasetArguments", "build_dataset_from_arguments"),
    "pretrain": ("gexbert_hf.training.pretrain", "PretrainArguments", "pretrain"),
    "finetune": ("gexbert_hf.training.finetune", "FinetuneArguments", "finetune"),
    "impute": ("gexbert_hf.files", "ImputeArguments", "impute_file"),
    "predict": ("gexbert_hf.files", "PredictArguments", "predict_file"),
    "export": ("gexbert_hf.files", "ExportArguments", "export_model"),
    "demo": ("gexbert_hf.study.demo", "DemoArguments", "demo_from_arguments"),
    "design-panel": ("gexbert_hf.study.panel_run", "DesignPanelArguments", "design_panel_from_arguments"),
}
# subcommands whose first bare word is an argument: `gexbert finetune classify ...` == `--task classify`
POSITIONAL: dict[str, str] = {"finetune": "--task"}


def make_parser(arguments_class: type, name: str) -> HfArgumentParser:
    """The subcommand's parser, its help made safe to print and its `--no_X` switches described."""
    parser = HfArgumentParser(arguments_class, prog=f"gexbert {name}")
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            # help strings are plain text in the dataclasses ("90% missing"); argparse reads `%` as a format code
            action.help = action.help.replace("%", "%%")
        if isinstance(action, argparse._StoreFalseAction) and action.option_strings[0].startswith("--no_"):
            # HfArgumentParser gives `--no_X` the help (and an inverted default) of `--X`: say what it really does
            action.help = f"Turn off --{action.dest} ({action.help.rstrip('.')})."
            action.default = argparse.SUPPRESS  # the value comes from --{dest}'s default, not from this switch
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        names = ", ".join(sorted(SUBCOMMANDS))
        print(f"usage: gexbert SUBCOMMAND [--help] [options]\nsubcommands: {names}", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module_name, arguments_name, function_name = SUBCOMMANDS[argv[0]]
    module = importlib.import_module(module_name)
    parser = make_parser(getattr(module, arguments_name), argv[0])
    rest = argv[1:]
    if argv[0] in POSITIONAL and rest and not rest[0].startswith("-") and not rest[0].endswith(".json"):
        rest = [POSITIONAL[argv[0]], *rest]
    if len(rest) == 1 and rest[0].endswith(".json"):
        (arguments,) = parser.parse_json_file(rest[0])
    else:
        (arguments,) = parser.parse_args_into_dataclasses(rest)
    configure_threads()  # a thread count and wait policy that degrade gracefully on a busy machine
    try:
        result = getattr(module, function_name)(arguments)
    except GexBertError as error:  # bad input: a clear message, not a traceback
        print(f"gexbert {argv[0]}: error: {error}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
