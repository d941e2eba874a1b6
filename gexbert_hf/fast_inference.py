"""Faster CPU imputation with an unchanged checkpoint (issue 22): levers that wrap the public `impute`.

Each lever is a plain function the `impute` path can call, measured for speed and accuracy in
`gexbert_hf.study.speed.levers` (report: reports/speed_release/levers/):

- `quantize_linear_int8(model)`: a copy whose transformer Linear layers run as dynamic int8 (weights int8, activations
  quantized per batch); the embeddings, LayerNorms and the small level/value heads stay fp32.
- `cpu_has_native_bf16()`: bf16 autocast pays only where the CPU has bf16 units (avx512_bf16 / AMX); elsewhere it
  converts every operand and is slower than fp32 (about 3x slower on the AVX2 dev machine).
- `impute_in_passes(...)`: bounded context. A profile is read in seeded random groups of genes, each group holding
  about `measured_per_pass` measured genes and its share of the missing ones (MASK queries), so attention cost
  grows linearly with the gene count instead of with its square. One group = exactly `impute`.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .errors import ExpressionInputError
from .expression_input_gexbert import as_expression_frame
from .inference import IMPUTATION_INPUT, impute

CPUINFO = Path("/proc/cpuinfo")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
GROUPINGS = ("embedding", "random")
PASS_SEED = 5  # the gene grouping stream: the same call, the same groups, the same imputation
# the transformer blocks' projections; the value embedding's Linear(1, hidden) and the 32-level head stay fp32
TRANSFORMER_BLOCK = re.compile(r"(^|\.)layer\.\d+\.")


def cpu_has_native_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether this CPU computes in bf16 natively (avx512_bf16 or AMX): only then can bf16 autocast beat fp32."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def cpu_autocast(dtype: str):
    """A context for `impute` in `dtype` ("fp32": nothing changes; "bf16": CPU autocast)."""
    if dtype not in ("fp32", "bf16"):
        raise ValueError(f"dtype must be 'fp32' or 'bf16', got {dtype!r}")
    return torch.autocast("cpu", torch.bfloat16) if dtype == "bf16" else nullcontext()


def default_cpu_dtype() -> str:
    """The dtype the measurements recommend here: bf16 only with native bf16 units, else fp32."""
    return "bf16" if cpu_has_native_bf16() else "fp32"


def quantized_linear_names(model: torch.nn.Module) -> set[str]:
    """Names of the Linear layers inside the transformer blocks (`...layer.N...`: encoder and decoder), where nearly
    all the matmul FLOPs are."""
    return {name for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and TRANSFORMER_BLOCK.search(name)}


def quantize_linear_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A CPU copy of `model` whose transformer Linear layers are dynamically quantized to int8 (the input model is
    left untouched). Outputs match fp32 within the tolerance tested in tests/test_fast_inference.py; accuracy on
    tcga13 is in reports/speed_release/levers/. Inference only: the copy cannot be trained or saved as safetensors."""
    names = quantized_linear_names(model)
    if not names:
        raise ValueError(f"{type(model).__name__} has no transformer Linear layers to quantize")
    copied = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():  # torch.ao's eager quantization announces its move to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copied, {name: torch.ao.quantization.default_dynamic_qconfig
                                                               for name in names}, dtype=torch.qint8)


def gene_groups(n_genes: int, measured_fraction: float, measured_per_pass: int, seed: int = PASS_SEED,
                vectors: np.ndarray | None = None) -> list[np.ndarray]:
    """Balanced groups of column positions, each with about `measured_per_pass` measured genes (at the given
    measured fraction) and its share of the missing ones; one group when the whole profile fits. With `vectors`
    (one row per gene, e.g. the model's gene embeddings) similar genes share a group (recursive bisection along the
    first principal component); without, the groups are seeded random."""
    if measured_per_pass < 1:
        raise ExpressionInputError(f"measured_per_pass must be a positive number of genes, got {measured_per_pass}")
    width = measured_per_pass / max(measured_fraction, 1.0 / max(n_genes, 1))
    n_groups = max(1, min(n_genes, math.ceil(n_genes / width)))
    if n_groups == 1:
        return [np.arange(n_genes)]
    if vectors is not None:
        return [np.sort(group) for group in _bisect(np.asarray(vectors, dtype=np.float64), np.arange(n_genes),
                                                    n_groups)]
    order = np.random.default_rng([seed, n_genes]).permutation(n_genes)
    return [np.sort(group) for group in np.array_split(order, n_groups)]


def _bisect(vectors: np.ndarray, positions: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """`positions` cut into `n_groups` near-equal groups of similar `vectors`: split along the first principal
    component at the share of groups each side gets, then each side again (a balanced k-d tree)."""
    if n_groups == 1:
        return [positions]
    centred = vectors[positions] - vectors[positions].mean(axis=0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0]
    direction *= np.sign(direction[np.argmax(np.abs(direction))])  # the SVD's sign is arbitrary: fix it
    order = positions[np.argsort(centred @ direction, kind="stable")]
    left = n_groups // 2
    cut = round(len(positions) * left / n_groups)
    return _bisect(vectors, order[:cut], left) + _bisect(vectors, order[cut:], n_groups - left)


def gene_embedding_vectors(model, tokenizer, genes: Sequence[str]) -> np.ndarray:
    """The model's learned gene-identity embeddings of `genes` (vocabulary names): genes the model treats alike lie
    close, so grouping by them keeps a gene's informative partners in its pass."""
    table = model.base_model.embeddings.gene_embeddings.weight.detach().float().cpu().numpy()
    return table[np.asarray(tokenizer.convert_genes_to_ids(list(genes)))]


def impute_in_passes(model, tokenizer, data, genes: Sequence[str] | None = None, measured_per_pass: int = 256,
                     grouping: str = "embedding", batch_size: int = 64, seed: int = PASS_SEED,
                     progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`impute` with a bounded context: `(filled, uncertainty)` as `impute` returns them (same rows, columns and
    labels), each pass reading one seeded random group of about `measured_per_pass` measured genes plus its share
    of the missing and requested absent genes. Cost per sample ~ genes x measured_per_pass / measured fraction,
    instead of genes squared; when the whole profile fits in one group this is exactly `impute`. `grouping`
    "embedding" puts genes with similar learned gene embeddings in one pass; "random" draws seeded random groups.

    `data` is a samples x genes DataFrame (an AnnData: pass `as_expression_frame(adata)`).
    """
    if isinstance(data, pd.DataFrame) and data.shape[0] == 0:
        raise ExpressionInputError(f"{IMPUTATION_INPUT}: no samples")
    frame = as_expression_frame(data, source=IMPUTATION_INPUT)
    tokenizer.select_known(frame, source=IMPUTATION_INPUT)  # the one error or warning about unknown genes
    names = {gene: tokenizer.vocabulary_name(gene) for gene in frame.columns}
    shown_genes = [gene for gene in frame.columns if names[gene] is not None]
    measured = set(names.values())
    requested = [gene for gene in dict.fromkeys(genes or []) if gene not in measured]
    columns = [*shown_genes, *requested]
    measured_share = float(np.isfinite(frame[shown_genes].to_numpy(dtype=float)).sum()) / (len(frame) * len(columns))
    if grouping not in GROUPINGS:
        raise ExpressionInputError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
    vectors = (gene_embedding_vectors(model, tokenizer, [names.get(gene) or gene for gene in columns])
               if grouping == "embedding" else None)
    groups = gene_groups(len(columns), measured_share, measured_per_pass, seed, vectors)
    if len(groups) == 1:
        return impute(model, tokenizer, data, genes=genes, batch_size=batch_size, progress=progress)
    parts = [_impute_group(model, tokenizer, frame, [columns[i] for i in group], set(requested), batch_size, progress)
             for group in groups]
    filled, uncertainty = (_assemble([part[k] for part in parts], columns) for k in (0, 1))
    if isinstance(data, pd.DataFrame):  # the caller's own labels, as `impute` gives them back
        own = {str(column): column for column in data.columns}
        labels = pd.Index([own.get(gene, gene) for gene in columns], name=data.columns.name)
        filled, uncertainty = (table.set_axis(data.index).set_axis(labels, axis=1) for table in (filled, uncertainty))
    return filled, uncertainty


def _impute_group(model, tokenizer, frame: pd.DataFrame, group: list[str], requested: set[str], batch_size: int,
                  progress: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One pass: the group's measured genes and its missing ones as queries; a group of requested absent genes
    only is read beside the profile's first gene (the model needs one measured token)."""
    shown = [gene for gene in group if gene not in requested] or [frame.columns[0]]
    asked = [gene for gene in group if gene in requested]
    return impute(model, tokenizer, frame[shown], genes=asked, batch_size=batch_size, progress=progress)


def _assemble(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The passes' columns side by side in the whole call's column order (a gene read twice: its first pass)."""
    joined = pd.concat(parts, axis=1)
    return joined.loc[:, ~joined.columns.duplicated()].reindex(columns=columns)


__all__ = ["cpu_autocast", "cpu_has_native_bf16", "default_cpu_dtype", "gene_embedding_vectors", "gene_groups", "impute_in_passes",
           "quantize_linear_int8", "quantized_linear_names"]
