"""The interface every strategy implements."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from nnsweep.definition.sweep import Trial


class Wait:
    """What a strategy hands out when it has nothing now, but may once a batch in flight
    has been told (a search whose next choice waits for a result)."""

    def __repr__(self) -> str:
        return "WAIT"


WAIT = Wait()


class Strategy(Protocol):
    """Hands out batches of trials not yet done, and hears how each batch went."""

    # Whether the next batch may be asked for before the last one is told (a search that
    # can keep several configurations in flight); batches of a round-based strategy wait.
    concurrent: bool

    def planned(self) -> list[Trial] | None:
        """Every trial the strategy will run, if known in advance (a grid), else None."""

    def batches(self, done: set[str]) -> Iterator[Sequence[Trial] | Wait]:
        """Groups of trials the runner may pack together (it skips those already written);
        ``WAIT`` when nothing can be handed out until a batch in flight is told."""

    def tell(self, batch: Sequence[Trial], results: Sequence[Mapping[str, Any]]) -> None:
        """Every row of one batch, once all are written (searches learn from them)."""
