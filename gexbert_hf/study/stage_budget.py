"""The one time budget of the study's commands (`gexbert benchmark`, `gexbert evaluate`), shared out among stages.

`--time_budget_minutes` once sized only the benchmark's pretraining, and a 20,530-gene cohort then spent 47 minutes
in imputation alone past a 30-minute budget. Each stage now gets a share of what is left when it starts (`RunClock`);
inside a stage, work runs in units (a seed of a panel, a scenario, a type) and the stage's `StageBudget` starts a
unit only while the longest unit so far still fits in what is left (the first unit: while anything is left), so a
stage rarely overruns by more than the unit it misjudged. The benchmark also runs every item's first seed whatever
the clock says (`budgeted_rounds(..., first_round=True)`), so every setting has a number to report; `gexbert
evaluate` holds to its budget instead (`first_round=False`). What was not started is recorded with why, for
results.json and the report. The clock (`now`) is injectable, so the rule is tested without sleeping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

Unit = TypeVar("Unit")

# Shares of the benchmark's wall time, from the committed full runs (pretraining ~half of each, classification up to
# 40% on tcga31, imputation up to 40% on tcga13, survival < 10%, attention ~1%).
STAGE_SHARES = {"pretraining": 0.45, "classification": 0.2, "survival": 0.1, "imputation": 0.2, "attention": 0.05}
# `gexbert evaluate`: classification (run first: it is usually cheap) may use 40% of the time left after loading;
# imputation, the last stage, then gets all that is left, including what classification did not use
EVALUATE_SHARES = {"classification": 0.4, "imputation": 0.6}
# ... less this part of the budget, kept back for report, plots and results (and the overshoot of a misjudged unit)
EVALUATE_RESERVE = 0.05


@dataclass
class StageBudget:
    """One stage's allowance. Work runs through `units` (or `budgeted_rounds`), which starts a unit only while
    `fits()` and records the others with `skip()`; each unit's length is measured, as the longest so far is what a
    later unit is expected to need."""

    stage: str
    seconds: float
    now: Callable[[], float] = time.perf_counter
    started: float | None = None  # the clock's reading at the start (now() when not given)
    skipped: list[dict] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    longest: float = 0.0  # seconds of the longest unit so far

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.now()

    @classmethod
    def unlimited(cls, stage: str = "stage") -> StageBudget:
        """No limit (the task functions' default when called outside a command)."""
        return cls(stage, math.inf)

    def elapsed(self) -> float:
        return self.now() - self.started

    def left(self) -> float:
        """Seconds of the allowance still unused (0 once spent)."""
        return max(0.0, self.seconds - self.elapsed())

    def spent(self) -> bool:
        return self.elapsed() >= self.seconds

    def fits(self) -> bool:
        """Whether a next unit is expected to fit: the longest unit so far is shorter than what is left (before the
        first unit: anything is left)."""
        return self.left() > self.longest

    def skip(self, item: str) -> None:
        """Record one unit not started because it was not expected to fit."""
        share = f"the {self.stage} stage's share of the time budget ({self.seconds / 60:.1f} min)"
        when = f"after {self.elapsed() / 60:.1f} min"
        reason = (f"{share} was spent {when}" if self.spent() else f"{share} had {self.left() / 60:.1f} min left "
                  f"{when}, less than its longest unit so far ({self.longest / 60:.1f} min)")
        self.skipped.append({"item": item, "reason": reason})

    def units(self, labelled: Iterable[tuple[str, Unit]], always: int = 0) -> Iterator[Unit]:
        """Each unit of `labelled` ((label, unit) pairs, read lazily) that `fits()`, the first `always` of them
        regardless; the caller's work between two yields is the unit, timed. Those not started are skipped by label."""
        for index, (label, unit) in enumerate(labelled):
            if index >= always and not self.fits():
                self.skip(label)
                continue
            begun = self.now()
            yield unit
            self.longest = max(self.longest, self.now() - begun)
            self.done.append(label)

    def part(self, fraction: float) -> StageBudget:
        """A first part of this allowance (same start, same records of units done and skipped) for a first phase of
        the stage, so the phases after it keep the rest; its units are timed apart (a later phase's may differ)."""
        return StageBudget(self.stage, self.seconds * fraction, self.now, self.started, self.skipped, self.done)

    def record(self) -> dict:
        """What results.json keeps of the stage's budget."""
        return {"allowed_seconds": self.seconds, "used_seconds": self.elapsed(), "units_done": len(self.done),
                "skipped": list(self.skipped)}


def budgeted_rounds(budget: StageBudget | None, plan: Mapping[str, Sequence[int]], first_round: bool = True
                    ) -> Iterator[tuple[str, int]]:
    """(item, seed) pairs, seed-major: every item's first seed, then every item's second, and so on, so a budget
    that runs out leaves the items with equally many seeds. A unit (one pair) starts only while `budget` expects it
    to fit (`StageBudget.units`), else it is recorded as skipped; with `first_round`, each item's first seed runs
    regardless, so every item has a number."""
    rounds = max((len(seeds) for seeds in plan.values()), default=0)
    labelled = [(f"{item}, seed {seeds[round_]}", (item, seeds[round_]))
                for round_ in range(rounds) for item, seeds in plan.items() if round_ < len(seeds)]
    first = sum(1 for seeds in plan.values() if seeds) if first_round else 0
    return (budget or StageBudget.unlimited()).units(labelled, always=first)


class RunClock:
    """Shares out what is left of the run's budget (less `reserve`, a fraction kept back for the end) when each stage
    starts, among the stages still to come in proportion to their `shares`: a stage that overran shrinks the later
    ones, one that ended early or did not run passes its time on, and the last stage gets all that is left."""

    def __init__(self, total_seconds: float, stages: Sequence[str], started: float | None = None,
                 shares: Mapping[str, float] = STAGE_SHARES, reserve: float = 0.0,
                 now: Callable[[], float] = time.perf_counter) -> None:
        self.total_seconds = total_seconds
        self.shares, self.reserve, self.now = dict(shares), reserve, now
        self.started = now() if started is None else started
        self.pending = [stage for stage in stages if stage in self.shares]
        self.stages: dict[str, StageBudget] = {}

    def stage(self, name: str) -> StageBudget:
        """Start stage `name`: its allowance is its share of the time left among the stages still pending."""
        if name in self.pending:
            share = self.shares[name] / sum(self.shares[stage] for stage in self.pending)
            self.pending.remove(name)
        else:
            share = 1.0
        left = max(0.0, self.total_seconds * (1 - self.reserve) - (self.now() - self.started))
        self.stages[name] = StageBudget(name, left * share, self.now)
        return self.stages[name]

    def record(self) -> dict:
        """The budget, the shares and each started stage's allowance, use, units done and skipped units."""
        return {"total_seconds": self.total_seconds, "shares": dict(self.shares), "reserve": self.reserve,
                "stages": {name: budget.record() for name, budget in self.stages.items()}}
