"""The settings of `gexbert evaluate`, scaled to the cohort's width so that each stage fits its share of the time
budget on 2 CPU cores (the budget itself is `stage_budget`'s, as in `gexbert benchmark`).

Measured with one torch thread on a shared 2-core CPU (another process on the other core), at 300 samples x 20,000
genes (a 300k-parameter model with a 20,000-gene vocabulary; the plan below: 100 test rows, 200 reference rows, one
iterative round): tuning 5 s; per mask GexBERT 46-100 s (1,024 genes per pass), the iterative imputer 35-55 s,
SoftImpute 8-16 s, KNN ~5 s, so one missing rate of one seed (a unit) costs 100-175 s; the 15 classification panels
29 s together. With `--time_budget_minutes 10` the run ended after 7.7 minutes: all panels, 3 of the 20 imputation
units, the other 17 recorded as skipped. The 30-minute default holds about 10-15 imputation units (2-3 seeds of the
four rates). The KNN and SoftImpute grids are the baselines module's wide ones (7 values each, extended past an
edge the best value sits on), about twice the tuning time of the earlier 3- and 4-value grids.
"""

from __future__ import annotations

from dataclasses import dataclass

from .baselines import IMPUTER_GRIDS

# wider than this, the iterative imputer gets fewer rounds and SoftImpute fewer SVD iterations
WIDE_GENES = 5000


@dataclass
class EvaluationPlan:
    """Settings of every stage, scaled to the cohort so each fits its share of the budget on 2 CPU cores."""

    test_rows: int  # test samples imputed
    reference_rows: int  # train rows the transductive imputers see (KNN: twice as many)
    tuning_rows: int  # validation rows KNN's k and SoftImpute's penalty are chosen on
    tuning_genes: int  # ... on at most this many genes (a seeded random subset)
    knn_grid: tuple[int, ...]
    soft_grid: tuple[float, ...]
    soft_max_iter: int
    iterative_rounds: int
    max_queries: int  # genes GexBERT restores per classification panel


def plan_for(n_genes: int, quick: bool, test_rows: int) -> EvaluationPlan:
    """The settings for a cohort of `n_genes` scored genes: rows shrink as genes grow (each imputer's cost is about
    rows x genes), tuning runs on a gene subset, and wide profiles get fewer iterative rounds and SVD iterations."""
    if quick:
        return EvaluationPlan(test_rows=min(test_rows, 30), reference_rows=80, tuning_rows=40, tuning_genes=200,
                              knn_grid=(5, 15), soft_grid=(0.05, 0.2), soft_max_iter=10, iterative_rounds=1,
                              max_queries=16)
    genes = max(n_genes, 1)
    return EvaluationPlan(
        test_rows=min(test_rows, max(60, 2_000_000 // genes)),
        reference_rows=min(1200, max(200, 3_000_000 // genes)),
        tuning_rows=min(300, max(60, 1_000_000 // genes)),
        tuning_genes=2000, knn_grid=IMPUTER_GRIDS["KNN"], soft_grid=IMPUTER_GRIDS["SoftImpute"],
        soft_max_iter=40 if n_genes <= WIDE_GENES else 20,
        iterative_rounds=3 if n_genes <= 2000 else 2 if n_genes <= WIDE_GENES else 1,
        max_queries=128,
    )


__all__ = ["EvaluationPlan", "plan_for"]
