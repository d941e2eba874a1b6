"""The one way samples are held out: seeded, optionally stratified, as a boolean mask.

Fine-tuning's validation part, pretraining's held-out part, a data folder's train / test split and the study's
validation rows all draw from `held_out_mask`: each stratum (class, event, or the whole set) is permuted with the
caller's random stream and its first `round(fraction * size)` members are held out, at least `min_per_stratum` of
them while more than that stay in, so a class is never held out whole. A stratum too small for both stays in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import SplitArgumentError

# the stream of `seed` that validation parts draw from: independent of a train / test split drawn from the same seed
VALIDATION_STREAM = 11


def split_validation(n_or_strata: int | Sequence | np.ndarray, fraction: float, seed: int,
                     min_per_stratum: int = 1) -> np.ndarray:
    """Boolean mask over the samples (True = validation): `fraction` of each stratum, seeded.

    `n_or_strata` is a sample count (one stratum) or one stratum label per sample (class labels, or events for
    survival). Each stratum gives validation at least `min_per_stratum` samples and keeps more than that for
    training; a stratum too small for both (with the default 1: two samples or fewer) stays in training whole.
    """
    return held_out_mask(n_or_strata, fraction, np.random.default_rng([seed, VALIDATION_STREAM]), min_per_stratum)


def stratified_split(labels: pd.Series | None, samples: Sequence[str], test_fraction: float = 0.2, seed: int = 0
                     ) -> pd.Series:
    """Seeded train / test split of `samples`, stratified by `labels` (a class with one sample stays in train)."""
    if not 0.0 < test_fraction < 1.0:
        raise SplitArgumentError(f"test_fraction must be in (0, 1), got {test_fraction}")
    samples = pd.Index(samples, name="sample")
    groups = np.zeros(len(samples), dtype=np.int64) if labels is None else pd.factorize(
        labels.reindex(samples).astype(str))[0]
    test = held_out_mask(groups, test_fraction, np.random.default_rng(seed), min_per_stratum=0)
    return pd.Series(np.where(test, "test", "train").astype(object), index=samples, name="split")


def held_out_mask(n_or_strata: int | Sequence | np.ndarray, fraction: float, rng: np.random.Generator,
                  min_per_stratum: int = 1) -> np.ndarray:
    """The algorithm behind every split: strata in sorted order, each permuted by `rng`, its first members held out
    (see `split_validation`). Callers pass their own `rng` so that each kind of split keeps its own random stream."""
    if not 0.0 <= fraction < 1.0:
        raise SplitArgumentError(f"the held-out fraction must be in [0, 1), got {fraction}")
    if min_per_stratum < 0:
        raise SplitArgumentError(f"min_per_stratum must be 0 or more, got {min_per_stratum}")
    strata = np.zeros(n_or_strata, dtype=np.int64) if np.ndim(n_or_strata) == 0 else np.asarray(n_or_strata)
    held = np.zeros(len(strata), dtype=bool)
    for stratum in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == stratum))
        held[members[:_held_count(len(members), fraction, min_per_stratum)]] = True
    return held


def _held_count(size: int, fraction: float, minimum: int) -> int:
    """`round(fraction * size)`, raised to `minimum` and capped so that more than `minimum` stay; 0 when both
    cannot hold."""
    most = size - minimum - 1
    if most < minimum:
        return 0
    return min(max(int(round(fraction * size)), minimum), most)


__all__ = ["VALIDATION_STREAM", "held_out_mask", "split_validation", "stratified_split"]
