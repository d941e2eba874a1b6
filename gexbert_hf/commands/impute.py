"""`gexbert impute`: fill every missing value (and absent model gene) of an expression file.

Reads any format the data layer reads, never modifies its input, refuses to replace an existing output unless
asked, and writes the filled table the same way round as its input (a genes x samples file gives a genes x samples
table), the uncertainty beside it; or an `.h5ad` copy of the input with both as layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.gene_ids import read_gene_list
from ..inference import impute
from ..loading import require_head
from .common import (
    InputArguments,
    check_outputs,
    input_orientation,
    is_h5ad,
    load_on_device,
    read_input,
    shipped_inputs_help,
    sidecar_path,
    source_anndata,
    write_table,
)


@dataclass
class ImputeArguments(InputArguments):
    """`gexbert impute`: fill every missing value (and absent model gene) of an expression file."""

    model: str = field(metadata={"help": "A pretrained GexBERT (masked-expression head): a shipped name or a model "
                                         "folder. " + shipped_inputs_help()})
    input: str = field(metadata={"help": "Expression file: a table either way round (TSV/CSV/Parquet, see "
                                         "--orientation) or AnnData .h5ad."})
    output: str = field(metadata={"help": "Filled table (.csv, .tsv, .parquet; the input's orientation); the "
                                          "uncertainty goes beside it as NAME.uncertainty.EXT. Or .h5ad: a copy of "
                                          "the input AnnData with the model's genes added, the filled values in layer "
                                          "`gexbert_imputed` and the uncertainty in layer `gexbert_uncertainty`."})
    genes: str | None = field(default=None, metadata={"help": "File of genes to restore (one a line); default: "
                                                               "every model gene absent from the input."})
    only_input_genes: bool = field(default=False, metadata={"help": "Fill NaNs only; restore no absent gene."})


def impute_file(args: ImputeArguments) -> tuple[Path, Path | None]:
    """Read, impute with the model's predictive distribution, write filled values and their uncertainty."""
    input_path, output = Path(args.input), Path(args.output)
    uncertainty_path = None if is_h5ad(output) else sidecar_path(output, "uncertainty")
    check_outputs({"input file": input_path, "gene list": args.genes, "gene map": args.gene_map},
                  [output] + ([uncertainty_path] if uncertainty_path else []), args.overwrite)
    model, tokenizer = load_on_device(args)
    require_head(model, "imputation")
    orientation = input_orientation(args, input_path, tokenizer)
    frame = read_input(args, input_path, tokenizer, orientation)
    known, unknown = tokenizer.match_genes(frame, source=str(input_path))  # raises when no gene is known
    requested = read_gene_list(args.genes) if args.genes else None
    if requested is None and not args.only_input_genes:
        requested = [gene for gene in tokenizer.genes if gene not in set(known.columns)]
    filled, uncertainty = impute(model, tokenizer, frame.drop(columns=unknown), genes=requested,
                                 batch_size=args.batch_size, progress=args.progress, scale_check=args.scale_check,
                                 source=str(input_path))
    if unknown:  # genes the model does not know are passed through untouched (NaN stays NaN)
        filled = filled.join(frame[unknown])
        uncertainty = uncertainty.join(pd.DataFrame(np.nan, index=frame.index, columns=unknown))
    if uncertainty_path is None:
        source, gene_names = source_anndata(args, input_path, frame)
        from ..data.anndata import imputed_anndata, write_h5ad

        write_h5ad(imputed_anndata(source, filled, uncertainty, gene_names), output)
    else:
        write_table(filled, output, orientation)
        write_table(uncertainty, uncertainty_path, orientation)
    missing = int(np.isnan(frame.drop(columns=unknown).to_numpy()).sum())
    print(f"imputed {missing} missing values and restored {len(requested or [])} absent genes for {len(filled)} "
          f"samples -> {output} (uncertainty: {uncertainty_path or 'layer gexbert_uncertainty'}"
          + (f"; {len(unknown)} genes unknown to the model passed through)" if unknown else ")"))
    return output, uncertainty_path


__all__ = ["ImputeArguments", "impute_file"]
