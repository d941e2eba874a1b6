"""The train/validation split (TEMPORARY stand-in: the library half of issue #12 writes the real module)."""

from __future__ import annotations

import numpy as np


def split_validation(n_or_strata: int | np.ndarray, fraction: float, seed: int, min_per_stratum: int = 1
                     ) -> np.ndarray:
    """Boolean mask of the rows held out for validation: a seeded share `fraction` of each stratum (class labels,
    events; one stratum when given a count), at least `min_per_stratum` of each; a stratum of two or fewer rows
    stays whole in the fitting part."""
    strata = np.zeros(n_or_strata, dtype=np.int64) if np.isscalar(n_or_strata) else np.asarray(n_or_strata)
    rng = np.random.default_rng([seed, 11])
    validation = np.zeros(len(strata), dtype=bool)
    for value in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == value))
        if len(members) > 2:
            validation[members[: max(min_per_stratum, int(round(fraction * len(members))))]] = True
    return validation
