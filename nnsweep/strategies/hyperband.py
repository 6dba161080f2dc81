"""Hyperband that continues instead of restarting: each bracket is one batch of packs.

Keras Tuner's Hyperband trains a bracket's configurations for a small budget, then
starts the best again for a larger one, from a checkpoint or (in nnsweep before) from
scratch. Here a bracket's configurations train together, packed, for the largest budget,
and successive halving happens at the bracket's rungs inside the packs (``pruning``):
at each budget the configurations outside the bracket's next round stop, so a promoted
configuration simply goes on training from its own weights. The brackets, their sizes
and budgets are Keras Tuner's (factor 3, ``max_epochs`` the space's epochs); which
configurations a bracket tries is drawn from the space with Keras Tuner's own sampling,
from one stream seeded by the sweep's ``search_seed``, so a resumed run draws the same
ones. With two or more runs a configuration (seeds or folds), a configuration within seed
noise of the leader is never stopped on rank alone; with one, the rank decides, as in
Keras Tuner.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nnsweep.definition.pruning import Prune, RungBook
from nnsweep.definition.sweep import Sweep, Trial, config_id
from nnsweep.store.results import read_rows

FACTOR = 3  # Keras Tuner's default
# The noise guard's false-prune rate (a bracket's rungs share it, as in ``Prune``).
ALPHA = 0.05
_DRAWS = 100  # tries to draw a configuration not drawn before, before the space is spent


def bracket_plan(max_epochs: int, factor: int = FACTOR) -> list[tuple[int, list[int], list[int]]]:
    """Keras Tuner's brackets, most aggressive first: (configurations, each round's epoch
    budget, each round's size)."""
    brackets, e = 0, float(max_epochs)
    while e >= 1:
        e /= factor
        brackets += 1
    end = math.ceil(1 + math.log(max_epochs, factor))
    out = []
    for b in reversed(range(brackets)):
        sizes = [math.ceil(end / (b + 1) * factor ** (b - r)) for r in range(b + 1)]
        budgets = [math.ceil(max_epochs / factor ** (b - r)) for r in range(b + 1)]
        out.append((sizes[0], budgets, sizes))
    return out


def rungs_of(budgets: Sequence[int], sizes: Sequence[int], n: int) -> dict[int, int]:
    """Rung epoch -> configurations that go on past it, for a bracket that starts ``n``
    configurations (fewer than planned scales each round alike)."""
    out: dict[int, int] = {}
    scale = n / sizes[0]
    for r in range(len(budgets) - 1):
        epoch, keep = budgets[r], max(1, math.ceil(sizes[r + 1] * scale))
        if epoch < budgets[-1]:
            out[epoch] = min(keep, out.get(epoch, keep))
    return out


class HyperbandStrategy:
    """Brackets of configurations drawn from the space, each trained as one batch with
    successive halving at its rungs, until ``max_trials`` configurations were tried."""

    concurrent = False  # a bracket's book is read from the rows of the brackets before

    def __init__(self, sweep: Sweep, folder: Path, objective: str, direction: str) -> None:
        import numpy as np

        assert sweep.max_trials is not None, "hyperband needs max_trials"
        self.sweep, self.folder = sweep, folder
        self.objective, self.direction = objective, direction
        self.max_epochs = sweep.max_epochs
        self._rng = np.random.RandomState(sweep.resolved_search_seed)
        self._seen: set[str] = set()
        self._book: RungBook | None = None
        self.brackets = 0  # brackets that had something to train in this run

    def planned(self) -> list[Trial] | None:
        return None

    def batches(self, done: set[str]) -> Iterator[Sequence[Trial]]:
        left = self.sweep.max_trials or 0
        while left > 0:
            for n, budgets, sizes in bracket_plan(self.max_epochs):
                n = min(n, left)
                configs = [c for c in (self._draw() for _ in range(n)) if c is not None]
                if not configs:
                    return  # every configuration of the space was drawn
                left -= len(configs)
                trials = [t for p in configs for t in self.sweep.trials_for(p)]
                self._book = self._bracket_book(trials, budgets, sizes, len(configs))
                if any(t.trial_id not in done for t in trials):
                    self.brackets += 1
                    yield trials
                if left <= 0:
                    return

    def rung_book(self) -> RungBook | None:
        """The current bracket's evidence: its own configurations, its rungs and sizes."""
        return self._book

    def tell(self, batch: Sequence[Trial], results: Sequence[Mapping[str, Any]]) -> None:
        """The rows are on disk: the next bracket reads them when it starts."""

    def describe_run(self) -> list[str]:
        return [f"hyperband: {self.brackets} bracket(s) trained in this run (factor {FACTOR})"]

    def _draw(self) -> dict[str, Any] | None:
        """A configuration not drawn before (None when the space has no more)."""
        from nnsweep.strategies.tuner import hyperparameters, params_from_values

        space = hyperparameters(self.sweep).space
        for _ in range(_DRAWS):
            seed = int(self._rng.randint(2**31 - 1))
            values = {hp.name: hp.random_sample(seed=seed + i) for i, hp in enumerate(space)}
            params = params_from_values(self.sweep, values)
            params["epochs"] = self.max_epochs
            params = self.sweep.validate_params(params)
            cid = config_id(params)
            if cid not in self._seen:
                self._seen.add(cid)
                return params
        return None

    def _bracket_book(
        self, trials: Sequence[Trial], budgets: Sequence[int], sizes: Sequence[int], n: int
    ) -> RungBook:
        keep = rungs_of(budgets, sizes, n)
        runs = len(self.sweep.seed_list) * len(self.sweep.folds)
        book = RungBook(
            Prune(alpha=ALPHA),
            self.objective,
            self.direction,
            self.max_epochs,
            rungs=sorted(keep),
            keep_top=keep,
            rank_only=runs < 2,
            scope={t.config_id for t in trials},
        )
        trials_path = self.folder / "trials.csv"
        if trials_path.is_file():
            history = self.folder / "history.csv"
            book.load(read_rows(trials_path), read_rows(history) if history.is_file() else [])
        return book
