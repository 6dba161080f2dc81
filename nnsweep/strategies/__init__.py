"""Where trials come from: the grid loop, or a Keras Tuner oracle (local or a chief's).

A strategy hands the runner groups of trials (trials that may train together) and hears
back their rows, which search strategies use to choose what comes next.
"""

from __future__ import annotations

from nnsweep.strategies._base import Strategy
from nnsweep.strategies.grid import GridStrategy
from nnsweep.strategies.tuner import TunerStrategy

__all__ = ["GridStrategy", "Strategy", "TunerStrategy"]
