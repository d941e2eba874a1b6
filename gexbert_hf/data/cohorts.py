"""Cohorts: expression and clinical data aligned on one sample index, and the two that ship with the package.

The embedded cohort is GSE7390 as shipped inside scikit-survival (198 breast tumours x 76 genes, ER status, grade,
distant-metastasis-free survival): it comes with a dependency, so the demo and tests run on any machine.

Synthetic cohorts serve unit and scale tests: co-expression modules, tumour types, a hazard tied to a few genes. They
check that code runs and recovers planted structure; they never stand in for real data in a result. Values are
TPM-like (non-negative, heavy upper tail), so `normalization='auto'` picks log1p as for real TPM files. The matrix
is filled in sample chunks, so 11,000 x 20,000 costs little more than the matrix itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CLINICAL_COLUMNS = ("age", "er", "grade", "size")  # the embedded cohort's non-gene features
_CHUNK = 1024  # synthetic samples generated at a time


@dataclass
class Cohort:
    """Expression (samples x genes, NaN = not measured) and clinical table, aligned on the same sample index.

    `label_column`, `time_column` and `event_column` name the registered clinical columns (None when absent).
    """

    expression: pd.DataFrame
    clinical: pd.DataFrame
    label_column: str | None = None
    time_column: str | None = None
    event_column: str | None = None
    name: str = "cohort"


def load_embedded_cohort() -> Cohort:
    """GSE7390 breast cancer: expression of 76 genes, clinical `er` (label), `time` / `event` (metastasis-free)."""
    from sksurv.datasets import load_breast_cancer

    features, outcome = load_breast_cancer()
    samples = pd.Index([f"GSE7390_{i:03d}" for i in range(len(features))], name="sample")
    genes = [column for column in features.columns if column not in CLINICAL_COLUMNS]
    expression = features[genes].astype(np.float64).set_axis(samples)
    clinical = pd.DataFrame(
        {
            "er": features["er"].astype(str).to_numpy(),
            "grade": features["grade"].astype(str).to_numpy(),
            "age": features["age"].astype(float).to_numpy(),
            "time": outcome["t.tdm"].astype(float),
            "event": outcome["e.tdm"].astype(int),
        },
        index=samples,
    )
    return Cohort(expression, clinical, label_column="er", time_column="time", event_column="event",
                  name="GSE7390 (scikit-survival breast_cancer)")


def make_synthetic_cohort(
    n_samples: int = 300,
    n_genes: int = 200,
    n_types: int = 3,
    n_modules: int = 10,
    n_hazard_genes: int = 5,
    missing_fraction: float = 0.0,
    censoring_rate: float = 0.3,
    seed: int = 0,
    dtype: type = np.float64,
) -> Cohort:
    """Samples x genes expression plus clinical `cancer_type`, `os_months`, `os_event` and the true `risk`.

    Each gene belongs to one of `n_modules` co-expression modules (a shared latent factor); each tumour type shifts
    module means. Hazard = exp(risk), risk a fixed linear function of the log expression of the first
    `n_hazard_genes` genes (their names are in `clinical.attrs['hazard_genes']`). `missing_fraction` of the cells
    are NaN (not measured), drawn at random.
    """
    if n_samples < 2 or n_genes < max(2, n_hazard_genes) or n_types < 1 or n_modules < 1:
        raise ValueError("need at least 2 samples, n_hazard_genes <= n_genes, one type and one module")
    rng = np.random.default_rng(seed)
    genes = [f"GENE{index:05d}" for index in range(n_genes)]
    samples = pd.Index([f"SYN-{index:06d}" for index in range(n_samples)], name="sample")
    type_names = np.array([f"TYPE{index}" for index in range(n_types)])

    module_of_gene = rng.integers(0, n_modules, size=n_genes)
    loading = rng.uniform(0.5, 1.5, size=n_genes)
    base = rng.normal(3.0, 1.5, size=n_genes)  # log-scale mean expression
    noise_sd = rng.uniform(0.3, 0.8, size=n_genes)
    type_shift = rng.normal(0.0, 1.0, size=(n_types, n_modules))
    tumour_type = rng.integers(0, n_types, size=n_samples)
    factors = rng.normal(0.0, 1.0, size=(n_samples, n_modules)) + type_shift[tumour_type]

    hazard_genes = np.arange(n_hazard_genes)
    beta = rng.choice([-1.0, 1.0], size=n_hazard_genes) * rng.uniform(0.4, 0.8, size=n_hazard_genes)
    log_hazard_genes = np.empty((n_samples, n_hazard_genes))

    values = np.empty((n_samples, n_genes), dtype=dtype)
    for start in range(0, n_samples, _CHUNK):
        stop = min(start + _CHUNK, n_samples)
        log_expression = base + loading * factors[start:stop][:, module_of_gene]
        log_expression += rng.standard_normal((stop - start, n_genes)) * noise_sd
        log_hazard_genes[start:stop] = log_expression[:, hazard_genes]
        np.expm1(np.maximum(log_expression, 0.0), out=log_expression)  # log1p(TPM) -> TPM, floored at 0
        values[start:stop] = log_expression
        if missing_fraction > 0:
            block = values[start:stop]
            block[rng.random(block.shape) < missing_fraction] = np.nan

    standardized = (log_hazard_genes - log_hazard_genes.mean(0)) / (log_hazard_genes.std(0) + 1e-8)
    risk = standardized @ beta
    event_time = rng.exponential(1.0, size=n_samples) / np.exp(risk) * 24.0  # months
    censor_time = rng.exponential(24.0 / max(censoring_rate, 1e-6), size=n_samples)
    clinical = pd.DataFrame(
        {
            "cancer_type": type_names[tumour_type],
            "os_months": np.minimum(event_time, censor_time),
            "os_event": (event_time <= censor_time).astype(np.int64),
            "risk": risk,
        },
        index=samples,
    )
    clinical.attrs["hazard_genes"] = [genes[index] for index in hazard_genes]
    expression = pd.DataFrame(values, index=samples, columns=genes)
    return Cohort(expression, clinical, label_column="cancer_type", time_column="os_months", event_column="os_event",
                  name=f"synthetic ({n_samples} x {n_genes}, seed {seed})")


__all__ = ["CLINICAL_COLUMNS", "Cohort", "load_embedded_cohort", "make_synthetic_cohort"]
