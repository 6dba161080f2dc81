"""The interface every strategy implements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from nnsweep.sweep import Trial


class Strategy(Protocol):
    """Hands out packs of trials not yet done, and hears how each pack went."""

    def planned(self) -> list[Trial] | None:
        """Every trial the strategy will run, if known in advance (a grid), else None."""

    def batches(self, done: set[str]) -> Iterator[Sequence[Trial]]:
        """Trials whose ids are not in ``done``, in groups the runner may pack together."""

    def tell(self, results: Sequence[dict]) -> None:
        """The rows of a finished pack (search strategies learn from them)."""
