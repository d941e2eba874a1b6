"""The benchmark's time budget, shared out among its stages.

`--time_budget_minutes` once sized only the pretraining, and a 20,530-gene cohort then spent 47 minutes in imputation
alone past a 30-minute budget. Each stage now gets a share of what is left when it starts; inside a stage, a work
item (a seed of a panel, a scenario, a type) starts only while the share lasts, except each item's first seed, so
every setting still has a number to report. What was not started is recorded with why, for results.json and the
report.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

# Shares of the run's wall time, from the committed full runs (pretraining ~half of each, classification up to 40%
# on tcga31, imputation up to 40% on tcga13, survival < 10%, attention ~1%).
STAGE_SHARES = {"pretraining": 0.45, "classification": 0.2, "survival": 0.1, "imputation": 0.2, "attention": 0.05}


@dataclass
class StageBudget:
    """One stage's allowance: work items ask `spent()` before they start and `skip()` records those that did not."""

    stage: str
    seconds: float
    started: float = field(default_factory=time.perf_counter)
    skipped: list[dict] = field(default_factory=list)

    @classmethod
    def unlimited(cls, stage: str = "stage") -> StageBudget:
        """No limit (the task functions' default when called outside the benchmark)."""
        return cls(stage, math.inf)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        """Seconds of the allowance still unused (0 once spent)."""
        return max(0.0, self.seconds - self.elapsed())

    def spent(self) -> bool:
        return self.elapsed() >= self.seconds

    def skip(self, item: str) -> None:
        """Record one work item not started because the allowance was spent."""
        self.skipped.append({"item": item, "reason": f"the {self.stage} stage's share of the time budget "
                                                     f"({self.seconds / 60:.1f} min) was spent after "
                                                     f"{self.elapsed() / 60:.1f} min"})

    def part(self, fraction: float) -> StageBudget:
        """A first part of this allowance (same start, same skip record) for a first phase of the stage, so the
        phases after it keep the rest."""
        return StageBudget(self.stage, self.seconds * fraction, self.started, self.skipped)

    def record(self) -> dict:
        """What results.json keeps of the stage's budget."""
        return {"allowed_seconds": self.seconds, "used_seconds": self.elapsed(), "skipped": list(self.skipped)}


def budgeted_rounds(budget: StageBudget | None, plan: Mapping[str, Sequence[int]]) -> Iterator[tuple[str, int]]:
    """(item, seed) pairs, seed-major: every item's first seed, then every item's second, and so on, so a spent
    allowance leaves the items with equally many seeds. Each item's first seed always runs; a later one starts only
    while the allowance lasts, else it is recorded as skipped."""
    rounds = max((len(seeds) for seeds in plan.values()), default=0)
    for round_ in range(rounds):
        for item, seeds in plan.items():
            if round_ >= len(seeds):
                continue
            if round_ > 0 and budget is not None and budget.spent():
                budget.skip(f"{item}, seed {seeds[round_]}")
                continue
            yield item, seeds[round_]


class RunClock:
    """Shares out what is left of the run's budget when each stage starts, among the stages still to come in
    proportion to their shares: a stage that overran shrinks the later ones, one that ended early or did not run
    passes its time on."""

    def __init__(self, total_seconds: float, stages: Sequence[str], started: float | None = None) -> None:
        self.total_seconds = total_seconds
        self.started = time.perf_counter() if started is None else started
        self.pending = [stage for stage in stages if stage in STAGE_SHARES]
        self.stages: dict[str, StageBudget] = {}

    def stage(self, name: str) -> StageBudget:
        """Start stage `name`: its allowance is its share of the time left among the stages still pending."""
        if name in self.pending:
            share = STAGE_SHARES[name] / sum(STAGE_SHARES[stage] for stage in self.pending)
            self.pending.remove(name)
        else:
            share = 1.0
        left = max(0.0, self.total_seconds - (time.perf_counter() - self.started))
        self.stages[name] = StageBudget(name, left * share)
        return self.stages[name]

    def record(self) -> dict:
        """The budget, the shares and each started stage's allowance, use and skipped items."""
        return {"total_seconds": self.total_seconds, "shares": dict(STAGE_SHARES),
                "stages": {name: budget.record() for name, budget in self.stages.items()}}
