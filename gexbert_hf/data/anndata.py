"""AnnData in and out, the scverse way: obs x var = samples x genes, `X` or a layer, a var column for gene names.

The conversion itself lives in the tokenizer file (duck-typed, so it travels with the tokenizer as remote code);
this module adds what needs the `anndata` package (an optional extra, imported only when used): reading `.h5ad`,
obs as the clinical table, and writing imputed values back into layers of a copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ExpressionInputError
from ..expression_input_gexbert import anndata_gene_names, as_expression_frame
from ..outputs import file_beside
from .gene_ids import map_gene_names, map_genes

IMPUTED_LAYER = "gexbert_imputed"
UNCERTAINTY_LAYER = "gexbert_uncertainty"
RESTORED_COLUMN = "gexbert_restored"


def import_anndata():
    try:
        import anndata
    except ImportError as error:  # an optional extra
        raise ImportError("AnnData input and .h5ad files need anndata: pip install 'gexbert-hf[anndata]'") from error
    return anndata


def load_anndata(path: str | Path):
    """`.h5ad` -> AnnData; a file anndata cannot read is named in an `ExpressionInputError`."""
    anndata = import_anndata()
    try:
        return anndata.read_h5ad(path)
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise ExpressionInputError(f"{path}: not a readable AnnData .h5ad file ({type(error).__name__}: {error})") \
            from error


def anndata_to_frame(
    adata,
    layer: str | None = None,
    gene_column: str | None = None,
    aggregate: str | None = None,
    gene_map: Mapping[str, str] | None = None,
    source: str = "AnnData",
) -> pd.DataFrame:
    """AnnData (obs x var) -> validated samples x genes float64 DataFrame, genes named by `gene_column` / `gene_map`."""
    frame = as_expression_frame(adata, aggregate=aggregate, source=source, layer=layer, gene_column=gene_column)
    return frame if gene_map is None else map_genes(frame, gene_map, aggregate, source)


def obs_table(adata, source: str = "AnnData") -> pd.DataFrame:
    """`adata.obs` as a clinical table indexed by sample; categorical columns become plain values (NaN kept)."""
    obs = adata.obs.copy()
    for column in obs.columns:
        if isinstance(obs[column].dtype, pd.CategoricalDtype):
            obs[column] = obs[column].astype(object)
    obs.index = pd.Index(obs.index.astype(str), name="sample")
    if obs.index.duplicated().any():
        raise ExpressionInputError(f"{source}: duplicated obs names; make them unique (adata.obs_names_make_unique())")
    return obs


def var_gene_names(adata, gene_column: str | None = None, gene_map: Mapping[str, str] | None = None) -> list[str]:
    """The gene name each var position stands for, as the expression frame names it."""
    names = anndata_gene_names(adata, gene_column)
    return names if gene_map is None else map_gene_names(names, gene_map)


def anndata_from_frame(frame: pd.DataFrame):
    """A samples x genes DataFrame as an AnnData (obs = samples, var = genes, X = the values)."""
    anndata = import_anndata()
    return anndata.AnnData(frame.to_numpy(np.float64), obs=pd.DataFrame(index=frame.index.astype(str)),
                           var=pd.DataFrame(index=frame.columns.astype(str)))


def imputed_anndata(adata, filled: pd.DataFrame, uncertainty: pd.DataFrame, gene_names: list[str] | None = None):
    """A copy of `adata` restricted/extended to the genes of `filled`, imputed values and uncertainty as layers.

    `X` (and every other layer) keeps the input's values in the input's var order, NaN for the restored genes
    appended after them; layer `gexbert_imputed` holds `filled`, `gexbert_uncertainty` holds `uncertainty`; var
    column `gexbert_restored` marks the genes the model added. `gene_names` are the names each var of `adata` has
    in `filled` (default: `var_names`; else e.g. a var column's values).
    """
    anndata = import_anndata()
    names = list(adata.var_names.astype(str)) if gene_names is None else list(gene_names)
    position: dict[str, int] = {}
    for index, name in enumerate(names):
        position.setdefault(name, index)
    kept = sorted((gene for gene in filled.columns if gene in position), key=position.__getitem__)
    restored = [gene for gene in filled.columns if gene not in position]
    if list(adata.obs_names.astype(str)) != [str(sample) for sample in filled.index]:
        raise ValueError("imputed_anndata: `filled` must hold the samples of `adata`, in its order")
    result = adata[:, [position[gene] for gene in kept]].copy()
    if restored:
        added = anndata.AnnData(np.full((adata.n_obs, len(restored)), np.nan), obs=pd.DataFrame(index=adata.obs_names),
                                var=pd.DataFrame(index=pd.Index(restored).astype(str)))
        result = anndata.concat([result, added], axis=1, join="outer", merge="first", uns_merge="first",
                                fill_value=np.nan)
    result.var[RESTORED_COLUMN] = np.r_[np.zeros(len(kept), bool), np.ones(len(restored), bool)]
    order = kept + restored
    result.layers[IMPUTED_LAYER] = filled[order].to_numpy(np.float64)
    result.layers[UNCERTAINTY_LAYER] = uncertainty[order].to_numpy(np.float64)
    return result


def write_h5ad(adata, path: str | Path) -> Path:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file under its name."""
    path = Path(path)
    with file_beside(path, suffix=".h5ad") as temporary:
        adata.write_h5ad(temporary)
    return path


__all__ = [
    "IMPUTED_LAYER", "RESTORED_COLUMN", "UNCERTAINTY_LAYER", "anndata_from_frame", "anndata_to_frame", "imputed_anndata", "load_anndata",
    "obs_table", "var_gene_names", "write_h5ad",
]
