"""The interface every strategy implements."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from nnsweep.sweep import Trial


class Strategy(Protocol):
    """Hands out packs of trials not yet done, and hears how each pack went."""

    def planned(self) -> list[Trial] | None:
        """Every trial the strategy will run, if known in advance (a grid), else None."""

    def batches(self, done: set[str]) -> Iterator[Sequence[Trial]]:
        """Groups of trials the runner may pack together (it skips those already written)."""

    def tell(self, results: Sequence[Mapping[str, Any]]) -> None:
        """Every row of the group just finished (search strategies learn from them)."""
