"""`gexbert embed`: one vector per sample from any GexBERT (its encoder's pooled output).

Writes a samples x dimensions table (`gexbert_0 ...`: CSV / TSV / Parquet), or an `.h5ad` copy of the input AnnData
(one built from a table input) with the vectors in `obsm["X_gexbert"]`, scanpy's place for a representation
(`sc.pp.neighbors(adata, use_rep="X_gexbert")`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..inference import OBSM_KEY, embed
from .common import InputArguments, check_outputs, is_h5ad, load_on_device, read_input, source_anndata, write_table


@dataclass
class EmbedArguments(InputArguments):
    """`gexbert embed`: sample embeddings of an expression file."""

    model: str = field(metadata={"help": "Any GexBERT (pretrained or fine-tuned): a shipped name (tcga31-mirna, "
                                         "tcga13-mrna) or a model folder."})
    input: str = field(metadata={"help": "Expression file: a table either way round (TSV/CSV/Parquet, see "
                                         "--orientation) or AnnData .h5ad."})
    output: str = field(metadata={"help": "Embeddings: a samples x dimensions table (.csv, .tsv, .parquet) or .h5ad "
                                          "(a copy of the input AnnData with obsm['X_gexbert'])."})
    pooling: str | None = field(default=None, metadata={"help": "cls | mean (default: the model's config.pooling, "
                                                                 "the one its heads were trained on)."})
    max_genes: int | None = field(default=None, metadata={"help": "Genes read per sample at most (a seeded "
                                                                   "subsample; default every measured gene)."})


def embed_file(args: EmbedArguments) -> Path:
    """Read, embed every sample with the model's encoder, write the vectors."""
    input_path, output = Path(args.input), Path(args.output)
    check_outputs({"input file": input_path, "gene map": args.gene_map}, [output], args.overwrite)
    model, tokenizer = load_on_device(args)
    frame = read_input(args, input_path, tokenizer)
    vectors = embed(model, tokenizer, frame, batch_size=args.batch_size, pooling=args.pooling,
                    max_genes=args.max_genes, progress=args.progress, scale_check=args.scale_check)
    if is_h5ad(output):
        from ..data.anndata import write_h5ad

        adata, _ = source_anndata(args, input_path, frame)
        adata = adata.copy()
        adata.obsm[OBSM_KEY] = vectors.reindex(adata.obs_names.astype(str)).to_numpy()
        write_h5ad(adata, output)
        where = f"obsm[{OBSM_KEY!r}]"
    else:
        write_table(vectors, output)
        where = "columns gexbert_0 ..."
    print(f"embedded {len(vectors)} samples in {vectors.shape[1]} dimensions ({args.pooling or model.config.pooling} "
          f"pooling) -> {output} ({where})")
    return output


__all__ = ["EmbedArguments", "embed_file"]
