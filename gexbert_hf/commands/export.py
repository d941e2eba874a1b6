"""`gexbert export`: a folder ready for the hub (safetensors, remote code, tokenizer, model card).

An existing export is replaced only with `--overwrite`, and then only the files the earlier export wrote (see
`gexbert_hf.outputs`). The card (`gexbert_hf.hub.render_model_card`) of a model that descends from a shipped
checkpoint names it as `base_model` and carries its licence and data terms. `--format onnx` adds `model.onnx` (a
restoration model for ONNX Runtime, `gexbert_hf.onnx_export`), written only after its output matched the torch one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ExpressionInputError, preview
from ..hub import FINETUNE_METRICS_NAME, REMOTE_CODE_FILES, read_finetune_metrics, render_model_card
from ..loading import load_model_and_tokenizer, refuse_missing_model, require_head, resolve_model
from ..outputs import claim_output_dir
from ..tokenization_gexbert import FEATURE_EXTRACTOR_NAME, TOKENIZER_ARRAYS_NAME, TOKENIZER_CONFIG_NAME
from .common import OutputArguments


@dataclass
class ExportArguments(OutputArguments):
    """`gexbert export`: a folder ready for the hub (safetensors, remote code, tokenizer, model card)."""

    model: str = field(metadata={"help": "A GexBERT model folder (any head) or a shipped name."})
    output: str = field(metadata={"help": "Export folder."})
    format: str = field(default="hub", metadata={
        "help": "hub: the hub folder; onnx: the hub folder plus model.onnx (a restoration model for ONNX Runtime, "
                "checked against torch fp32 before it is written; needs the onnx extra)"})


EXPORT_FORMATS = ("hub", "onnx")
# the tokenizer's code travels too: `AutoFeatureExtractor.from_pretrained(export, trust_remote_code=True)` needs no package
EXPORTED_FILES = ("config.json", "model.safetensors", "README.md", *REMOTE_CODE_FILES, TOKENIZER_CONFIG_NAME,
                  TOKENIZER_ARRAYS_NAME, FEATURE_EXTRACTOR_NAME)


def export_model(args: ExportArguments) -> Path:
    """Write the export to a temporary folder beside `output`, check it holds every hub file, then move it in."""
    if args.format not in EXPORT_FORMATS:
        raise ExpressionInputError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {args.format!r}")
    refuse_missing_model(args.model)
    output, model_dir = Path(args.output), resolve_model(args.model)
    folder = claim_output_dir(output, "export", {"the model": model_dir}, args.overwrite)
    model, tokenizer = load_model_and_tokenizer(model_dir)
    if args.format == "onnx":
        require_head(model, "imputation")  # the graph is the restoration forward
    metrics = read_finetune_metrics(model_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.export-", dir=output.parent))
    try:
        model.save_pretrained(staging)  # safetensors: the only format transformers 5 writes
        tokenizer.save_pretrained(staging)
        if metrics is not None:  # the fine-tuning metrics travel with the model, in the card and as the file
            shutil.copyfile(Path(model_dir) / FINETUNE_METRICS_NAME, staging / FINETUNE_METRICS_NAME)
        # the package's card: a shipped checkpoint's descendant inherits its data terms and names it as base_model
        (staging / "README.md").write_text(render_model_card(model, metrics=metrics))
        if args.format == "onnx":
            from ..onnx_export import ONNX_NAME, export_onnx

            export_onnx(model, staging / ONNX_NAME)
        absent = [name for name in EXPORTED_FILES if not (staging / name).is_file()]
        if absent:
            raise RuntimeError(f"export of {args.model} is missing {preview(absent)}")
        folder.publish(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    config = json.loads((output / "config.json").read_text())
    print(f"exported {type(model).__name__} ({model.num_parameters():,} parameters) to {output}: "
          f"{', '.join(sorted(path.name for path in output.iterdir()))}\n"
          f"load with AutoModel.from_pretrained({str(output)!r}, trust_remote_code=True) and its tokenizer with "
          f"AutoFeatureExtractor.from_pretrained({str(output)!r}, trust_remote_code=True) "
          f"(auto_map: {', '.join(sorted(config.get('auto_map', {})))})")
    if args.format == "onnx":
        print(f"ONNX Runtime: model, tokenizer = gexbert_hf.onnx_export.load_onnx_model_and_tokenizer({str(output)!r}),"
              " then gexbert_hf.impute(model, tokenizer, frame)")
    return output


__all__ = ["EXPORTED_FILES", "EXPORT_FORMATS", "ExportArguments", "export_model"]
