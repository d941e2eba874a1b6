"""A 2-D map of sample embeddings for a report: principal components fitted on a reference set, samples projected."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference import embed
from ..tokenization_gexbert import GexBertTokenizer
from .reports import scatter_plot


def pca_map(reference: pd.DataFrame, embeddings: pd.DataFrame, components: int = 2) -> tuple[np.ndarray, list]:
    """`embeddings` on the first principal components of `reference` (e.g. train, so test only gets projected);
    returns the coordinates and each component's share of the reference's variance."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=components, svd_solver="full").fit(reference.to_numpy())  # exact: no random state
    return pca.transform(embeddings.to_numpy()), [float(share) for share in pca.explained_variance_ratio_]


def embedding_map(model, tokenizer: GexBertTokenizer, reference: pd.DataFrame, samples: pd.DataFrame,
                  labels: pd.Series, path) -> dict:
    """A PNG of `samples`' embeddings on the first two principal components of `reference`'s, one colour per
    label (missing -> "unknown"); returns what was drawn, for a report."""
    points, shares = pca_map(embed(model, tokenizer, reference), embed(model, tokenizer, samples))
    groups = labels.astype(object).where(labels.notna(), "unknown").astype(str).to_numpy()
    scatter_plot(path, points, groups, f"PC1 ({shares[0]:.0%} of reference variance)", f"PC2 ({shares[1]:.0%})",
                 f"GexBERT embeddings of {len(samples)} samples by {labels.name}")
    return {"method": "PCA fitted on the reference embeddings, samples projected", "pooling": model.config.pooling,
            "explained_variance_ratio": shares, "samples": int(len(samples)), "label": labels.name}
