"""`gexbert bench-levers --section S`: one section of the imputation-lever study of issue 22 (see `levers.py`).

The dispatcher sits apart from the sections so that `levers_onnx.py`, which reuses the sections' data loading and
JSON merging from `levers.py`, is imported by it alone and no module imports its importer back.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import GexBertError
from .levers import LeverArguments, accuracy_section, command_section, profile_section, speed_section
from .levers_onnx import onnx_section
from .levers_report import write_levers_report

SECTIONS = {"accuracy": accuracy_section, "speed": speed_section, "command": command_section,
            "profile": profile_section, "onnx": onnx_section}


class LeverSectionError(GexBertError, ValueError):
    """A section name the lever study does not have."""


def run_levers(args: LeverArguments) -> None:
    """Run the section `args.section` and merge its rows into its JSON file, or `render` report.md from them."""
    if args.section == "render":
        write_levers_report(Path(args.output_dir))
        return
    if args.section not in SECTIONS:
        raise LeverSectionError(f"--section must be one of {', '.join([*SECTIONS, 'render'])}, got {args.section!r}")
    SECTIONS[args.section](args)


__all__ = ["LeverArguments", "SECTIONS", "run_levers"]
