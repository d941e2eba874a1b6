"""What the file commands (`impute`, `predict`, `embed`, `export`) share: the common flags, loading the model onto a
device, reading the input, and naming and writing outputs.

Every command that runs the model takes the same `RunArguments` (`--batch_size`, `--device`, `--progress` /
`--no_progress`, `--threads`, `--overwrite`), so a flag learnt on one works on the others; `export` runs nothing and takes
`--overwrite` only. Outputs are written to a temporary file beside the target, given the user's umask, then renamed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..data.readers import read_expression, read_gene_map, table_orientation
from ..errors import DeviceError, OutputFormatError
from ..input_scale import scale_check_field
from ..loading import PRETRAINED_MODELS, load_model_and_tokenizer, pretrained_path
from ..modeling_gexbert import GexBertPreTrainedModel
from ..outputs import check_output_file, file_beside
from ..threads import configure_threads
from ..tokenization_gexbert import GexBertTokenizer

TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz", ".parquet", ".pq")
H5AD_SUFFIX = ".h5ad"
OUTPUT_FORMATS = (*TABLE_SUFFIXES, H5AD_SUFFIX)
DEVICES = ("auto", "cpu", "cuda")
SAMPLES_X_GENES, GENES_X_SAMPLES = "samples_x_genes", "genes_x_samples"


# ----------------------------------------------------------------------------------------------------------------------
# the common flags
# ----------------------------------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class OutputArguments:
    """The flag of every command that writes a file or folder (keyword-only: listed after a command's own)."""

    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output (only what a gexbert "
                                                             "command wrote; never an input)."})


@dataclass(kw_only=True)
class RunArguments(OutputArguments):
    """The flags of every command that runs the model on samples: `impute`, `predict`, `embed`."""

    batch_size: int = field(default=64, metadata={"help": "Samples per forward pass."})
    device: str = field(default="auto", metadata={"help": "Where the model runs: auto (cuda when available, else "
                                                          "cpu) | cpu | cuda | cuda:N."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})
    threads: int | None = field(default=None, metadata={"help": "CPU threads for torch (default: as many as there "
                                                                 "are cores other processes leave free)."})


@dataclass(kw_only=True)
class InputArguments(RunArguments):
    """How to read an expression file (`impute`, `predict`, `embed`)."""

    orientation: str = field(default="auto", metadata={"help": "Orientation of a table input: auto (the axis whose "
                                                                "names are model genes holds the genes) | "
                                                                "samples_x_genes | genes_x_samples. A filled table "
                                                                "is written the same way round."})
    layer: str | None = field(default=None, metadata={"help": "AnnData input: the layer to read instead of X."})
    gene_column: str | None = field(default=None, metadata={"help": "AnnData input: the var column naming the "
                                                                     "genes (e.g. gene_symbols) instead of var_names."})
    gene_map: str | None = field(default=None, metadata={"help": "Gene-id mapping: a two-column table with a header "
                                                                  "line, the input's ids then the model's (e.g. "
                                                                  "Ensembl -> symbol)."})
    scale_check: str = scale_check_field()


def shipped_inputs_help() -> str:
    """What each shipped checkpoint expects (scale, id type, value range), for a command's --help."""
    from ..input_scale import expected_input
    from ..tokenization_gexbert import GexBertTokenizer

    return " ".join(f"{name} expects {expected_input(GexBertTokenizer.from_pretrained(pretrained_path(name)))}."
                    for name in sorted(PRETRAINED_MODELS))


# ----------------------------------------------------------------------------------------------------------------------
# model and input
# ----------------------------------------------------------------------------------------------------------------------
def resolve_device(device: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; `cuda` on a machine without one is refused in one line."""
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in DEVICES[1:] or (":" in name and not name.split(":")[1].isdigit()):
        raise DeviceError(f"--device {device!r}: expected one of {', '.join(DEVICES)} (or cuda:N)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"--device {device}: no CUDA device is available here; use --device cpu (or auto)")
    if name.startswith("cuda:") and int(name.split(":")[1]) >= torch.cuda.device_count():
        raise DeviceError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(name)


def load_on_device(args: RunArguments) -> tuple[GexBertPreTrainedModel, GexBertTokenizer]:
    """`load_model_and_tokenizer` of `args.model` on `args.device` with `args.threads`, both checked first (a bad
    flag fails before any loading)."""
    target = resolve_device(args.device)
    if args.threads is not None:
        configure_threads(args.threads)
    loaded, tokenizer = load_model_and_tokenizer(args.model)
    return loaded.to(target), tokenizer


def is_h5ad(path: str | Path) -> bool:
    return Path(path).name.lower().endswith(H5AD_SUFFIX)


def input_orientation(args: InputArguments, path: Path, tokenizer: GexBertTokenizer) -> str:
    """Which way round the input table is (an AnnData is always samples x genes), `auto` decided against the
    model's vocabulary exactly as the reader decides it."""
    if is_h5ad(path):
        return SAMPLES_X_GENES
    gene_map = read_gene_map(args.gene_map) if args.gene_map else None
    return table_orientation(path, args.orientation, vocabulary=tokenizer.genes, gene_map=gene_map)


def read_input(args: InputArguments, path: Path, tokenizer: GexBertTokenizer, orientation: str | None = None
               ) -> pd.DataFrame:
    """The expression file as samples x genes, oriented against the model's vocabulary unless told otherwise;
    `orientation`, when the caller decided it already (`input_orientation`), spares a table a second reading."""
    if orientation is None or is_h5ad(path):
        orientation = args.orientation
    return read_expression(path, orientation=orientation, vocabulary=tokenizer.genes, layer=args.layer,
                           gene_column=args.gene_column, gene_map=args.gene_map)


def source_anndata(args: InputArguments, path: Path, frame: pd.DataFrame):
    """The AnnData an `.h5ad` output is a copy of: the input's own (with the gene names the frame uses for its var),
    or one built from the input table."""
    from ..data.anndata import anndata_from_frame, load_anndata, var_gene_names

    if is_h5ad(path):
        source = load_anndata(path)
        return source, var_gene_names(source, args.gene_column, read_gene_map(args.gene_map) if args.gene_map else None)
    return anndata_from_frame(frame), None


# ----------------------------------------------------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------------------------------------------------
def table_suffix(path: Path) -> str:
    """The table format a file name asks for; anything else is refused naming the formats a command writes."""
    name = path.name.lower()
    for suffix in sorted(TABLE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise OutputFormatError(f"{path}: output format unknown; name the file with one of {', '.join(OUTPUT_FORMATS)}")


def sidecar_path(output: str | Path, tag: str) -> Path:
    """`filled.csv` -> `filled.uncertainty.csv`: a file beside the output, same format."""
    output = Path(output)
    suffix = table_suffix(output)
    return output.with_name(output.name[: -len(suffix)] + f".{tag}" + output.name[-len(suffix):])


def check_outputs(inputs: dict[str, str | Path | None], outputs: list[Path], overwrite: bool) -> None:
    """Every output file named in a known format (a table or `.h5ad`), none a folder or an input, none replaced
    without consent."""
    for output in outputs:
        if not is_h5ad(output):
            table_suffix(output)
        check_output_file(output, inputs, overwrite)


def write_table(frame: pd.DataFrame, path: str | Path, orientation: str = SAMPLES_X_GENES) -> Path:
    """A samples x columns table by suffix (CSV, TSV, Parquet), transposed for `genes_x_samples`, written to a
    temporary file then renamed with the user's umask."""
    path = Path(path)
    suffix = table_suffix(path)
    frame = frame.rename_axis("sample")
    if orientation == GENES_X_SAMPLES:
        frame = frame.T.rename_axis("gene")
    with file_beside(path, suffix=suffix) as temporary:
        if suffix in (".parquet", ".pq"):
            frame.to_parquet(temporary)
        else:
            frame.to_csv(temporary, sep="," if suffix.startswith(".csv") else "\t",
                         compression="gzip" if suffix.endswith(".gz") else None)
    return path


__all__ = [
    "DEVICES", "GENES_X_SAMPLES", "H5AD_SUFFIX", "OUTPUT_FORMATS", "SAMPLES_X_GENES", "TABLE_SUFFIXES",
    "InputArguments", "OutputArguments", "RunArguments", "check_outputs", "input_orientation", "is_h5ad",
    "load_on_device", "read_input", "resolve_device", "sidecar_path", "source_anndata", "table_suffix",
    "write_table",
]
