"""Confirmation on fresh seeds: do the sweep's best configurations still win on seeds
they were not chosen on?

``nnsweep confirm NAME --top K --seeds N`` retrains the K best configurations (by the
validation objective, over the search rows) on N seeds the sweep never used, and appends
those rows to the same trials.csv with ``phase`` "confirm". The report's account of them
(``nnsweep.report.confirmation``) ranks the confirmed configurations on the fresh seeds
alone and measures the winner's curse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnsweep.definition.sweep import Sweep
from nnsweep.errors import ResultsError, SweepDefinitionError
from nnsweep.report.stats import SEARCH, rank_configurations
from nnsweep.store.results import read_rows
from nnsweep.strategies.grid import FixedStrategy

DEFAULT_TOP = 3
DEFAULT_SEEDS = 5


@dataclass(frozen=True)
class Confirm:
    """What to confirm: the ``top`` configurations, each on ``seeds`` fresh seeds."""

    top: int = DEFAULT_TOP
    seeds: int = DEFAULT_SEEDS

    def __post_init__(self) -> None:
        for name in ("top", "seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SweepDefinitionError(f"--{name}", "must be an integer >= 1", value)


def fresh_seeds(sweep: Sweep, rows: Sequence[Mapping[str, Any]], n: int) -> list[int]:
    """``n`` seeds above every seed the sweep declares or its search rows used.

    Computed from the search rows only, so a resumed (or repeated) confirm picks the same
    seeds again and skips the trials it already trained.
    """
    used = {int(r["seed"]) for r in rows if (r.get("phase") or SEARCH) == SEARCH}
    start = max([*sweep.seed_list, *used]) + 1
    return list(range(start, start + n))


def top_configs(
    rows: Sequence[Mapping[str, Any]], objective: str, direction: str, k: int
) -> list[str]:
    """Config ids of the ``k`` best configurations by mean objective over search rows, in
    ``rank_configurations``'s order, the one ``best`` and the report choose by
    (configurations that pruning stopped left out: one is never confirmed)."""
    import pandas as pd

    search = [r for r in rows if (r.get("phase") or SEARCH) == SEARCH]
    if not search:
        raise ResultsError("the sweep has no search rows yet; run it before confirming")
    df = pd.DataFrame(search)
    df[objective] = pd.to_numeric(df[objective], errors="coerce")  # the rows are text
    table = rank_configurations(df, metric=objective, by=[], direction=direction).table
    table = table[table["n"] > 0]
    if table.empty:
        raise ResultsError("no successful search trials to confirm")
    return [str(c) for c in table["config_id"].head(k)]


class ConfirmStrategy(FixedStrategy):
    """The trials of a confirmation: the top configurations on fresh seeds."""

    def __init__(
        self, sweep: Sweep, trials_path: Path, objective: str, direction: str, confirm: Confirm
    ) -> None:
        from nnsweep.run.best import params_of

        rows = read_rows(trials_path) if trials_path.exists() else []
        self.configs = top_configs(rows, objective, direction, confirm.top)
        self.seeds = fresh_seeds(sweep, rows, confirm.seeds)
        results = trials_path.parent.parent
        super().__init__(
            [
                t
                for c in self.configs
                for t in sweep.trials_for(params_of(sweep, c, results), self.seeds)
            ]
        )
