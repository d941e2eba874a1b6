"""`gexbert predict`: classes with probabilities, or Cox risk scores, for every sample of an expression file.

First prints which genes the model reads and how many of them the input measures; writes a samples x columns table,
or an `.h5ad` copy of the input AnnData with the predictions as obs columns (`gexbert_predicted`,
`gexbert_probability_<label>`, `gexbert_risk`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..inference import describe_needed_genes, predict
from ..loading import require_head
from .common import InputArguments, check_outputs, is_h5ad, load_on_device, read_input, source_anndata, write_table

OBS_PREFIX = "gexbert_"


@dataclass
class PredictArguments(InputArguments):
    """`gexbert predict`: classes with probabilities, or Cox risk scores, for every sample of a file."""

    model: str = field(metadata={"help": "A fine-tuned GexBERT folder (classification or survival head)."})
    input: str = field(metadata={"help": "Expression file: a table either way round (TSV/CSV/Parquet, see "
                                         "--orientation) or AnnData .h5ad."})
    output: str = field(metadata={"help": "Predictions: a samples x columns table (.csv, .tsv, .parquet) or .h5ad "
                                          "(a copy of the input AnnData with the predictions as obs columns "
                                          "gexbert_predicted, gexbert_probability_<label> or gexbert_risk)."})


def predict_file(args: PredictArguments) -> Path:
    input_path, output = Path(args.input), Path(args.output)
    check_outputs({"input file": input_path, "gene map": args.gene_map}, [output], args.overwrite)
    model, tokenizer = load_on_device(args)
    require_head(model, "prediction")
    frame = read_input(args, input_path, tokenizer)
    print(describe_needed_genes(model, tokenizer, frame, str(input_path)))
    table = predict(model, tokenizer, frame, args.batch_size, source=str(input_path), scale_check=args.scale_check)
    if is_h5ad(output):
        from ..data.anndata import write_h5ad

        adata, _ = source_anndata(args, input_path, frame)
        adata = adata.copy()
        for column in table.columns:
            adata.obs[OBS_PREFIX + column] = table[column].reindex(adata.obs_names.astype(str)).to_numpy()
        write_h5ad(adata, output)
    else:
        write_table(table, output)
    print(f"predicted {len(table)} samples -> {output}")
    return output


__all__ = ["PredictArguments", "predict_file"]
