"""Adaptive seeds: as many seeds per configuration as the question needs, and no more.

``Seeds(min=2, max=10)`` starts every configuration of a grid with ``min`` seeds, then,
round by round, gives ``step`` more seeds to the configurations whose 95 % interval still
overlaps the best's, until the best is separated from the rest or ``max`` is reached.
The rule lives here, apart from training, so that the runner's rounds and the report's
account of them are one computation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nnsweep.errors import SweepDefinitionError

# Seeds are 32-bit for NumPy and TensorFlow; a count this large is a typo, not a plan.
_MAX_SEEDS = 10_000


@dataclass(frozen=True)
class Seeds:
    """Adaptive seeds for a grid sweep: start with ``min``, add ``step`` a round, up to ``max``.

    A configuration gets more seeds while its 95 % interval of the objective overlaps the
    best configuration's; seeds are 0, 1, 2, ... so every configuration's first seeds are
    the same ones.
    """

    min: int = 2
    max: int = 10
    step: int = 2

    def __post_init__(self) -> None:
        for name in ("min", "max", "step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SweepDefinitionError(f"seeds.{name}", "must be an integer", value)
        if self.min < 2:
            # One run has no interval: the first comparison needs two seeds per configuration.
            raise SweepDefinitionError(
                "seeds.min", "must be >= 2 (an interval needs two)", self.min
            )
        if not self.min < self.max <= _MAX_SEEDS:
            raise SweepDefinitionError(
                "seeds.max",
                f"must be greater than min ({self.min}) and at most {_MAX_SEEDS}",
                self.max,
            )
        if self.step < 1:
            raise SweepDefinitionError("seeds.step", "must be >= 1", self.step)

    def levels(self) -> list[int]:
        """Seeds per configuration after each round: min, min+step, ..., max."""
        out = list(range(self.min, self.max, self.step))
        return [*out, self.max]

    def to_json(self) -> dict[str, int]:
        return {"min": self.min, "max": self.max, "step": self.step}


def _overlaps(low: float, high: float, best_low: float, best_high: float) -> bool:
    """Whether two intervals meet; an unknown one (a single run) counts as overlapping."""
    if any(math.isnan(x) for x in (low, high, best_low, best_high)):
        return True
    return low <= best_high and high >= best_low


def contenders(table: Any, direction: str) -> list[str]:
    """Config ids (the best first) whose 95 % interval overlaps the best's.

    ``table``: ``stats.summarize`` output with ``config_id``; configurations without a
    successful run are out of the running.
    """
    rows = table[table["n"] > 0].sort_values("mean", ascending=direction == "min", kind="stable")
    if rows.empty:
        return []
    best = rows.iloc[0]
    return [
        str(r.config_id)
        for r in rows.itertuples(index=False)
        if r.config_id == best["config_id"]
        or _overlaps(r.ci_low, r.ci_high, best["ci_low"], best["ci_high"])
    ]


@dataclass(frozen=True)
class SeedsAccount:
    """What adaptive seeds did, for the report: seeds per configuration, and the outcome."""

    rule: dict[str, int]
    counts: dict[int, int]  # seeds -> how many configurations got that many
    separated: bool  # no other configuration's interval overlaps the best's
    overlapping: int  # configurations besides the best still overlapping it

    @property
    def text(self) -> str:
        rule = f"Seeds(min={self.rule['min']}, max={self.rule['max']}, step={self.rule['step']})"
        got = ", ".join(
            f"{n} configuration{'s' if n != 1 else ''} with {k} seed{'s' if k != 1 else ''}"
            for k, n in sorted(self.counts.items())
        )
        return f"Adaptive seeds, {rule}: {got}; {outcome(self.overlapping)}."


def outcome(overlapping: int) -> str:
    """Whether the best stands apart, in words: for the run's summary and the report."""
    if overlapping <= 0:
        return "the best is separated from every other configuration (95 % intervals)"
    verb = "s still overlap" if overlapping != 1 else " still overlaps"
    return f"{overlapping} configuration{verb} the best's 95 % interval"


def account(df: Any, table: Any, rule: dict[str, int], direction: str) -> SeedsAccount:
    """Seeds per configuration of a trials table (its search rows), and whether the best of
    its ``summarize`` table stands apart."""
    counts: dict[int, int] = {}
    for n in df.groupby("config_id")["seed"].nunique():
        counts[int(n)] = counts.get(int(n), 0) + 1
    close = contenders(table, direction)
    return SeedsAccount(dict(rule), counts, len(close) <= 1, max(len(close) - 1, 0))
