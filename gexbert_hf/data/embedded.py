"""The embedded cohort: GSE7390 as shipped inside scikit-survival (198 breast tumours x 76 genes, ER status, grade,
distant-metastasis-free survival). It comes with a dependency, so the demo and tests run on any machine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CLINICAL_COLUMNS = ("age", "er", "grade", "size")


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
