"""Attention analysis: which genes GexBERT attends to in each cancer type, and whether they are that type's
differentially expressed genes more often than chance (a hypergeometric test per type, combined over types)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from ..inference import attention_received
from ..tokenization_gexbert import GexBertTokenizer
from .stage_budget import StageBudget
from .working_scale import working_frame


def differential_genes(work: pd.DataFrame, types: pd.Series, cancer: str, top: int) -> list[str]:
    """Top genes by |Welch t| of one type against all others (train samples)."""
    inside = (types == cancer).to_numpy()
    t, _ = stats.ttest_ind(work.to_numpy()[inside], work.to_numpy()[~inside], axis=0, equal_var=False)
    t = np.nan_to_num(np.abs(t), nan=0.0)
    return [work.columns[i] for i in np.argsort(-t)[:top]]


def _attention_by_type(model, tokenizer: GexBertTokenizer, raw: pd.DataFrame, types: pd.Series,
                       samples_per_type: int, seed: int, progress: bool, budget: StageBudget | None
                       ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per type (sorted): the mean attention matrix and the attention each gene receives, over a seeded random
    sample of its members; types after the first two only while `budget` expects them to fit (the others recorded
    as skipped)."""
    rng = np.random.default_rng(seed)
    received: dict[str, np.ndarray] = {}
    matrices: dict[str, np.ndarray] = {}
    cancers = tqdm(sorted(types.dropna().unique()), desc="attention", disable=not progress)
    for cancer in (budget or StageBudget.unlimited()).units(((f"type {c}", c) for c in cancers), always=2):
        members = np.flatnonzero((types == cancer).to_numpy())
        chosen = rng.choice(members, size=min(samples_per_type, len(members)), replace=False)
        matrices[cancer], received[cancer] = attention_received(model, tokenizer, raw.iloc[chosen])
    return matrices, received


def run_attention_analysis(
    model,
    tokenizer: GexBertTokenizer,
    raw_train: pd.DataFrame,
    types: pd.Series,
    samples_per_type: int = 24,
    max_genes: int = 512,
    top: int = 20,
    seed: int = 0,
    progress: bool = True,
    budget: StageBudget | None = None,
) -> dict:
    """Per type: mean attention matrix over `samples_per_type` train samples, the most-attended genes, the overlap
    of the top `top` attended genes with the top `top` differentially expressed genes, and its p-value.

    The attention each gene receives is compared with its mean over all types: a gene that every sample attends to
    (a 'hub' of the gene-identity embedding) says nothing about a type, so types are ranked by excess attention.
    Genes are restricted to the `max_genes` most variable train genes when there are more (attention cost is
    quadratic in genes). The first two types always run (excess attention needs a mean over types); a later type
    starts only while `budget` expects it to fit (the longest type so far fits in what is left), else it is
    recorded in `skipped_by_budget` and left out of every statistic.
    """
    work = working_frame(tokenizer, raw_train)
    genes = list(raw_train.columns)
    if len(genes) > max_genes:
        variance = work.var(axis=0).to_numpy()
        genes = sorted([genes[i] for i in np.argsort(-variance)[:max_genes]])
    matrices, received = _attention_by_type(model, tokenizer, raw_train[genes], types, samples_per_type, seed,
                                            progress, budget)
    cancers = list(received)
    overall = np.mean([received[cancer] for cancer in cancers], axis=0)
    per_type: dict = {}
    overlaps, expected_total, p_values = 0, 0.0, []
    n = len(genes)
    for cancer in cancers:
        excess = received[cancer] - overall
        attended = [genes[i] for i in np.argsort(-excess)[:top]]
        de = differential_genes(work[genes], types, cancer, top)
        overlap = len(set(attended) & set(de))
        # P(overlap >= observed) when `top` attended genes are drawn at random among n
        p_value = float(stats.hypergeom.sf(overlap - 1, n, top, top))
        overlaps += overlap
        expected_total += top * top / n
        p_values.append(p_value)
        per_type[cancer] = {"most_attended": attended[:10], "top_de": de[:10], "overlap": overlap,
                            "expected_overlap": top * top / n, "p_value": p_value}
    # combined: total overlap over types against the sum of independent hypergeometric draws (Poisson-binomial
    # approximated by a normal with the exact mean and variance)
    variance = len(cancers) * stats.hypergeom.var(n, top, top)
    z = (overlaps - expected_total) / np.sqrt(max(variance, 1e-12))
    fisher = stats.combine_pvalues(p_values, method="fisher") if p_values else None
    # heatmap material: excess attention received per type over the genes most often in any type's top list
    counts: dict[str, int] = {}
    for cancer in cancers:
        for gene in per_type[cancer]["most_attended"]:
            counts[gene] = counts.get(gene, 0) + 1
    heat_genes = sorted(counts, key=lambda gene: -counts[gene])[:40]
    index = [genes.index(gene) for gene in heat_genes]
    heat = np.array([received[cancer][index] - overall[index] for cancer in cancers])
    return {
        "genes_analysed": len(genes),
        "samples_per_type": samples_per_type,
        "top": top,
        "per_type": per_type,
        "total_overlap": int(overlaps),
        "expected_overlap": float(expected_total),
        "overlap_z": float(z),
        "overlap_p_one_sided": float(stats.norm.sf(z)),
        "fisher_combined_p": None if fisher is None else float(fisher.pvalue),
        "types_significant_005": int(sum(p < 0.05 for p in p_values)),
        "heatmap": {"types": cancers, "genes": heat_genes, "excess_attention": heat.tolist()},
        "mean_matrix_example": {"type": cancers[0], "genes": genes[:30],
                                "matrix": matrices[cancers[0]][:30, :30].tolist()} if cancers else None,
        "skipped_by_budget": list(budget.skipped) if budget is not None else [],
    }

