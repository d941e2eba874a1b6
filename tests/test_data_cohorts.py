"""Cohorts: the synthetic one's planted structure (modules, tumour types, hazard genes) is really there, and seeds repeat."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sksurv.metrics import concordance_index_censored

from gexbert_hf.data.cohorts import Cohort, make_synthetic_cohort


def test_shape_types_and_seed(synthetic_cohort):
    cohort = synthetic_cohort
    assert isinstance(cohort, Cohort) and cohort.expression.shape == (120, 60)
    assert cohort.clinical.index.equals(cohort.expression.index)
    assert (cohort.label_column, cohort.time_column, cohort.event_column) == ("cancer_type", "os_months", "os_event")
    assert cohort.clinical["cancer_type"].nunique() == 3
    assert (cohort.expression.to_numpy() >= 0).all() and cohort.expression.to_numpy().max() > 50  # TPM-like
    assert set(cohort.clinical["os_event"].unique()) == {0, 1} and (cohort.clinical["os_months"] > 0).all()
    again = make_synthetic_cohort(n_samples=120, n_genes=60, n_types=3, n_modules=6, seed=0)
    pd.testing.assert_frame_equal(cohort.expression, again.expression)
    other = make_synthetic_cohort(n_samples=120, n_genes=60, n_types=3, n_modules=6, seed=1)
    assert not np.allclose(cohort.expression.to_numpy(), other.expression.to_numpy())


def test_coexpression_modules_and_type_signal():
    cohort = make_synthetic_cohort(n_samples=400, n_genes=80, n_types=4, n_modules=4, seed=5)
    logged = np.log1p(cohort.expression.to_numpy())
    correlation = np.corrcoef(logged.T)
    np.fill_diagonal(correlation, np.nan)
    # genes sharing a module correlate; the strongest partner of most genes is strongly correlated
    assert np.nanmean(np.nanmax(correlation, axis=1) > 0.5) > 0.9
    types = cohort.clinical["cancer_type"].to_numpy()
    means = np.stack([logged[types == name].mean(0) for name in np.unique(types)])
    assert np.abs(means - means.mean(0)).max() > 0.5  # tumour types shift module means


def test_hazard_tied_to_named_genes():
    cohort = make_synthetic_cohort(n_samples=600, n_genes=50, n_hazard_genes=4, seed=2)
    hazard_genes = cohort.clinical.attrs["hazard_genes"]
    assert hazard_genes == ["GENE00000", "GENE00001", "GENE00002", "GENE00003"]
    clinical = cohort.clinical
    events, times = clinical["os_event"].astype(bool).to_numpy(), clinical["os_months"].to_numpy()
    assert 0.4 < events.mean() < 0.95
    c_index = concordance_index_censored(events, times, clinical["risk"].to_numpy())[0]
    assert c_index > 0.65
    random_gene = np.log1p(cohort.expression["GENE00040"].to_numpy())
    assert abs(concordance_index_censored(events, times, random_gene)[0] - 0.5) < 0.1


def test_missing_fraction_and_20000_genes():
    cohort = make_synthetic_cohort(n_samples=30, n_genes=20_000, missing_fraction=0.1, seed=0, dtype=np.float32)
    values = cohort.expression.to_numpy()
    assert values.shape == (30, 20_000) and values.dtype == np.float32
    assert abs(np.isnan(values).mean() - 0.1) < 0.01
