"""The grid strategy: every configuration of the space, each with all seeds and folds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from nnsweep.definition.sweep import Sweep, Trial


class FixedStrategy:
    """Trials known in advance, handed out as one group (any of them may pack together)."""

    concurrent = False

    def __init__(self, trials: Sequence[Trial]) -> None:
        self._trials = list(trials)

    def planned(self) -> list[Trial]:
        return list(self._trials)

    def batches(self, done: set[str]) -> Iterator[Sequence[Trial]]:
        # The whole plan is known, so every pending trial may pack with any other.
        pending = [t for t in self._trials if t.trial_id not in done]
        if pending:
            yield pending

    def tell(self, batch: Sequence[Trial], results: Sequence[Mapping[str, Any]]) -> None:
        """A fixed plan does not adapt to results."""


class GridStrategy(FixedStrategy):
    """Every combination of the swept values, each with every seed and fold."""

    def __init__(self, sweep: Sweep) -> None:
        super().__init__(sweep.grid_trials())
