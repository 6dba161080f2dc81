"""Where trials come from: the grid loop now, Keras Tuner oracles later.

A strategy hands the runner packs of trials (trials that may train together) and hears
back their results, which search strategies use to choose what comes next.
"""

from __future__ import annotations

from nnsweep.errors import SweepDefinitionError
from nnsweep.strategies._base import Strategy
from nnsweep.strategies.grid import GridStrategy
from nnsweep.sweep import Sweep


def make_strategy(sweep: Sweep) -> Strategy:
    """The strategy object for ``sweep.strategy``."""
    if sweep.strategy == "grid":
        return GridStrategy(sweep)
    raise SweepDefinitionError(
        "strategy", "is not available in this version (only 'grid' runs so far)", sweep.strategy
    )


__all__ = ["GridStrategy", "Strategy", "make_strategy"]
