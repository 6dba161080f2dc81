"""Adaptive seeds over a grid: round by round, more seeds only where the answer is open.

Round one trains every configuration with ``Seeds.min`` seeds. After each round, the
configurations whose 95 % interval of the objective overlaps the best's (the best
included) get seeds up to the next level; the rounds end when the best is separated from
the rest or the level reaches ``Seeds.max``. Every decision is taken from the rows in
``trials.csv``, so a resumed run takes the same path and never trains a trial twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from nnsweep.definition.seeds import Seeds, contenders, outcome
from nnsweep.definition.sweep import Sweep, Trial, config_id
from nnsweep.store.results import read_rows


class AdaptiveSeedsStrategy:
    """A grid whose seeds per configuration grow while configurations stay close."""

    concurrent = False  # each round is decided on the rows of the rounds before

    def __init__(self, sweep: Sweep, trials_path: Any, objective: str, direction: str) -> None:
        assert sweep.adaptive is not None, "a sweep with seeds=Seeds(...)"
        self.sweep = sweep
        self.rule: Seeds = sweep.adaptive
        self.objective = objective
        self.direction = direction
        self._configs = {config_id(p): p for p in sweep.configurations()}
        # Rows of this sweep's search so far, by trial id (read once, then told).
        self._rows: dict[str, Mapping[str, Any]] = {
            r["trial_id"]: r
            for r in (read_rows(trials_path) if trials_path.exists() else [])
            if r.get("phase", "search") == "search"
        }
        self.rounds = 0  # rounds that had something to train in this run

    def planned(self) -> list[Trial] | None:
        """Unknown in advance: later rounds depend on the results."""
        return None

    def first_round(self) -> list[Trial]:
        """What the first round trains: every configuration with ``min`` seeds."""
        return self._round(list(self._configs), self.rule.min)

    def _round(self, ids: Sequence[str], level: int) -> list[Trial]:
        seeds = range(level)
        return [t for c in ids for t in self.sweep.trials_for(self._configs[c], seeds)]

    def batches(self, done: set[str]) -> Iterator[Sequence[Trial]]:
        active = list(self._configs)
        for level in self.rule.levels():
            pending = [t for t in self._round(active, level) if t.trial_id not in done]
            if pending:
                self.rounds += 1
                yield pending
            active = self.still_close()
            if len(active) <= 1:
                return  # the best is separated from every other configuration

    def tell(self, batch: Sequence[Trial], results: Sequence[Mapping[str, Any]]) -> None:
        for row in results:
            self._rows[str(row["trial_id"])] = row

    def describe_run(self) -> list[str]:
        """One line for the run's summary: rounds, and whether the best stands apart."""
        close = self.still_close()
        words = outcome(len(close) - 1) if close else "no configuration has a result to compare"
        return [f"adaptive seeds: {self.rounds} round(s) trained in this run; {words}"]

    def still_close(self) -> list[str]:
        """Config ids (best first) whose interval overlaps the best's, on the rows so far."""
        import pandas as pd

        from nnsweep.report.stats import ranked_rows, summarize

        if not self._rows:
            return list(self._configs)
        # A configuration that pruning stopped is out of contention: its question is closed.
        df = ranked_rows(pd.DataFrame(list(self._rows.values())))
        df = df[df["config_id"].isin(list(self._configs))]
        if self.objective not in df.columns:
            return []  # every row so far failed (a failed row has no metrics): none to add to
        df[self.objective] = pd.to_numeric(df[self.objective], errors="coerce")
        table = summarize(df, self.objective, by=[])
        return contenders(table, self.direction)
