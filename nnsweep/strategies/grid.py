"""The grid strategy: every configuration of the space, each with all seeds and folds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from nnsweep.sweep import Sweep, Trial


class GridStrategy:
    """Every combination of the swept values; a configuration's seeds form one pack."""

    def __init__(self, sweep: Sweep) -> None:
        self._trials = sweep.grid_trials()

    def planned(self) -> list[Trial]:
        return list(self._trials)

    def packs(self, done: set[str]) -> Iterator[Sequence[Trial]]:
        pack: list[Trial] = []
        for trial in self._trials:
            if trial.trial_id in done:
                continue
            if pack and pack[0].config_id != trial.config_id:
                yield pack
                pack = []
            pack.append(trial)
        if pack:
            yield pack

    def tell(self, results: Sequence[dict]) -> None:
        """A grid does not adapt to results."""
