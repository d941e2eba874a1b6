"""Using a trained model from files: `gexbert impute`, `gexbert predict` and `gexbert export`.

Each reads with the data layer's readers (Xena TSV, samples x genes CSV/TSV/Parquet, h5ad), never modifies its
input, and refuses to replace an existing output unless asked; `export --overwrite` replaces only an earlier
export (see `gexbert_hf.outputs`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .data.gene_ids import read_gene_list
from .data.readers import read_expression, read_gene_map
from .errors import ExpressionInputError, preview
from .hub import FINETUNE_METRICS_NAME, REMOTE_CODE_FILES, read_finetune_metrics, render_model_card
from .inference import describe_needed_genes, impute_frame, predict
from .loading import load_model_and_tokenizer
from .modeling_gexbert import (
    GexBertForMaskedExpression,
    GexBertForSequenceClassification,
    GexBertForSurvival,
)
from .outputs import check_output_file, claim_output_dir
from .pretrained import resolve_model
from .tokenization_gexbert import (
    FEATURE_EXTRACTOR_NAME,
    TOKENIZER_ARRAYS_NAME,
    TOKENIZER_CONFIG_NAME,
    GexBertTokenizer,
)

TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz", ".parquet", ".pq")


# ----------------------------------------------------------------------------------------------------------------------
# shared helpers
# ----------------------------------------------------------------------------------------------------------------------
def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(TABLE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise ExpressionInputError(f"{path}: output format unknown; name it {', '.join(TABLE_SUFFIXES)}")


def sidecar_path(output: str | Path, tag: str) -> Path:
    """`filled.csv` -> `filled.uncertainty.csv`: a file beside the output, same format."""
    output = Path(output)
    suffix = _suffix(output)
    return output.with_name(output.name[: -len(suffix)] + f".{tag}" + output.name[-len(suffix):])


def _check_outputs(inputs: dict[str, str | Path | None], outputs: list[Path], overwrite: bool,
                   h5ad: bool = False) -> None:
    """Every output file named in a known format (or .h5ad where allowed), none a folder or an input, none replaced
    without consent."""
    for output in outputs:
        if not (h5ad and _is_h5ad(output)):
            _suffix(output)
        check_output_file(output, inputs, overwrite)


def _is_h5ad(path: Path) -> bool:
    return path.name.lower().endswith(".h5ad")


@dataclass(kw_only=True)
class InputArguments:
    """How to read an expression file: the options `impute` and `predict` share (keyword-only: listed last)."""

    orientation: str = field(default="auto", metadata={"help": "Orientation of a table input: auto (the axis whose "
                                                                "names are model genes holds the genes) | "
                                                                "samples_x_genes | genes_x_samples."})
    layer: str | None = field(default=None, metadata={"help": "AnnData input: the layer to read instead of X."})
    gene_column: str | None = field(default=None, metadata={"help": "AnnData input: the var column naming the "
                                                                     "genes (e.g. gene_symbols) instead of var_names."})
    gene_map: str | None = field(default=None, metadata={"help": "Gene-id mapping: a two-column table with a header "
                                                                  "line, the input's ids then the model's (e.g. "
                                                                  "Ensembl -> symbol)."})


def read_input(args: InputArguments, path: Path, tokenizer: GexBertTokenizer) -> pd.DataFrame:
    """The expression file as samples x genes, oriented against the model's vocabulary unless told otherwise."""
    return read_expression(path, orientation=args.orientation, vocabulary=tokenizer.genes, layer=args.layer,
                           gene_column=args.gene_column, gene_map=args.gene_map)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Samples x columns table by suffix (CSV, TSV, Parquet), written to a temporary file then renamed."""
    path = Path(path)
    suffix = _suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = frame.rename_axis("sample")
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=suffix, delete=False) as handle:
        temporary = Path(handle.name)
    try:
        if suffix in (".parquet", ".pq"):
            frame.to_parquet(temporary)
        else:
            frame.to_csv(temporary, sep="," if suffix.startswith(".csv") else "\t",
                         compression="gzip" if suffix.endswith(".gz") else None)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


# ----------------------------------------------------------------------------------------------------------------------
# impute
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class ImputeArguments(InputArguments):
    """`gexbert impute`: fill every missing value (and absent model gene) of an expression file."""

    model: str = field(metadata={"help": "A pretrained GexBERT directory (masked-expression head)."})
    input: str = field(metadata={"help": "Expression file: a table either way round (TSV/CSV/Parquet, see "
                                         "--orientation) or AnnData .h5ad."})
    output: str = field(metadata={"help": "Filled samples x genes table (.csv, .tsv, .parquet); the uncertainty goes "
                                          "beside it as NAME.uncertainty.EXT. Or .h5ad: a copy of the input AnnData "
                                          "with the model's genes added, the filled values in layer "
                                          "`gexbert_imputed` and the uncertainty in layer `gexbert_uncertainty`."})
    genes: str | None = field(default=None, metadata={"help": "File of genes to restore (one a line); default: "
                                                               "every model gene absent from the input."})
    only_input_genes: bool = field(default=False, metadata={"help": "Fill NaNs only; restore no absent gene."})
    batch_size: int = field(default=64, metadata={"help": "Samples per forward pass."})
    overwrite: bool = field(default=False, metadata={"help": "Replace existing output files."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})


def impute_file(args: ImputeArguments) -> tuple[Path, Path | None]:
    """Read, impute with the model's predictive distribution, write filled values and their uncertainty."""
    input_path, output = Path(args.input), Path(args.output)
    uncertainty_path = None if _is_h5ad(output) else sidecar_path(output, "uncertainty")
    _check_outputs({"input file": input_path, "gene list": args.genes, "gene map": args.gene_map},
                   [output] + ([uncertainty_path] if uncertainty_path else []), args.overwrite, h5ad=True)
    model, tokenizer = load_model_and_tokenizer(args.model)
    if not isinstance(model, GexBertForMaskedExpression):
        raise ExpressionInputError(f"{args.model}: imputation needs a pretrained masked-expression model, this "
                                   f"directory holds a {type(model).__name__}")
    frame = read_input(args, input_path, tokenizer)
    names = {gene: tokenizer.vocabulary_name(gene) for gene in frame.columns}
    unknown = [gene for gene, name in names.items() if name is None]
    requested = read_gene_list(args.genes) if args.genes else None
    if requested is None and not args.only_input_genes:
        measured = set(names.values())
        requested = [gene for gene in tokenizer.genes if gene not in measured]
    if len(unknown) == frame.shape[1]:
        tokenizer.select_known(frame, source=str(input_path))  # raises, naming the ids the model expects
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unknown to the tokenizer vocabulary.*")
        filled, uncertainty = impute_frame(model, tokenizer, frame, genes=requested, batch_size=args.batch_size,
                                           progress=args.progress)
    if unknown:  # genes the model does not know are passed through untouched (NaN stays NaN)
        filled = filled.join(frame[unknown])
        uncertainty = uncertainty.join(pd.DataFrame(np.nan, index=frame.index, columns=unknown))
    if uncertainty_path is None:
        _write_imputed_h5ad(args, input_path, frame, filled, uncertainty, output)
    else:
        write_table(filled, output)
        write_table(uncertainty, uncertainty_path)
    missing = int(np.isnan(frame.drop(columns=unknown).to_numpy()).sum())
    print(f"imputed {missing} missing values and restored {len(requested or [])} absent genes for {len(filled)} "
          f"samples -> {output} (uncertainty: {uncertainty_path or 'layer gexbert_uncertainty'}"
          + (f"; {len(unknown)} genes unknown to the model passed through)" if unknown else ")"))
    return output, uncertainty_path


def _write_imputed_h5ad(args: ImputeArguments, input_path: Path, frame: pd.DataFrame, filled: pd.DataFrame,
                        uncertainty: pd.DataFrame, output: Path) -> None:
    """A copy of the input AnnData (or one built from the input table) with the imputation in two layers."""
    from .data.anndata import anndata_from_frame, imputed_anndata, load_anndata, var_gene_names, write_h5ad

    if _is_h5ad(input_path):
        source = load_anndata(input_path)
        gene_names = var_gene_names(source, args.gene_column, read_gene_map(args.gene_map) if args.gene_map else None)
    else:
        source, gene_names = anndata_from_frame(frame), None
    write_h5ad(imputed_anndata(source, filled, uncertainty, gene_names), output)

# ----------------------------------------------------------------------------------------------------------------------
# predict
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class PredictArguments(InputArguments):
    """`gexbert predict`: classes with probabilities, or Cox risk scores, for every sample of a file."""

    model: str = field(metadata={"help": "A fine-tuned GexBERT directory (classification or survival)."})
    input: str = field(metadata={"help": "Expression file: a table either way round (TSV/CSV/Parquet, see "
                                         "--orientation) or AnnData .h5ad."})
    output: str = field(metadata={"help": "Predictions table (.csv, .tsv, .parquet)."})
    batch_size: int = field(default=64, metadata={"help": "Samples per forward pass."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output file."})


def predict_file(args: PredictArguments) -> Path:
    input_path, output = Path(args.input), Path(args.output)
    _check_outputs({"input file": input_path, "gene map": args.gene_map}, [output], args.overwrite)
    model, tokenizer = load_model_and_tokenizer(args.model)
    if not isinstance(model, (GexBertForSequenceClassification, GexBertForSurvival)):
        raise ExpressionInputError(f"{args.model}: prediction needs a fine-tuned classification or survival model, "
                                   f"this directory holds a {type(model).__name__}")
    frame = read_input(args, input_path, tokenizer)
    print(describe_needed_genes(model, tokenizer, frame, str(input_path)))
    table = predict(model, tokenizer, frame, args.batch_size, source=str(input_path))
    write_table(table, output)
    print(f"predicted {len(table)} samples -> {output}")
    return output

# ----------------------------------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class ExportArguments:
    """`gexbert export`: a folder ready for the hub (safetensors, remote code, tokenizer, model card)."""

    model: str = field(metadata={"help": "A GexBERT model directory (any head)."})
    output: str = field(metadata={"help": "Export folder."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an earlier export in that folder (only the "
                                                             "files it wrote; never a folder holding the model)."})


# the tokenizer's code travels too: `AutoFeatureExtractor.from_pretrained(export, trust_remote_code=True)` needs no package
EXPORTED_FILES = ("config.json", "model.safetensors", "README.md", *REMOTE_CODE_FILES, TOKENIZER_CONFIG_NAME,
                  TOKENIZER_ARRAYS_NAME, FEATURE_EXTRACTOR_NAME)


def export_model(args: ExportArguments) -> Path:
    """Write the export to a temporary folder beside `output`, check it holds every hub file, then move it in."""
    output, model_dir = Path(args.output), resolve_model(args.model)
    folder = claim_output_dir(output, "export", {"the model": model_dir}, args.overwrite)
    model, tokenizer = load_model_and_tokenizer(model_dir)
    metrics = read_finetune_metrics(model_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.export-", dir=output.parent))
    try:
        model.save_pretrained(staging)  # safetensors: the only format transformers 5 writes
        tokenizer.save_pretrained(staging)
        if metrics is not None:  # the fine-tuning metrics travel with the model, in the card and as the file
            shutil.copyfile(Path(model_dir) / FINETUNE_METRICS_NAME, staging / FINETUNE_METRICS_NAME)
            (staging / "README.md").write_text(render_model_card(model, metrics=metrics))
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
    return output

__all__ = [
    "ExportArguments", "ImputeArguments", "PredictArguments", "export_model", "impute_file", "load_model_and_tokenizer",
    "predict_file", "sidecar_path", "write_table",
]
