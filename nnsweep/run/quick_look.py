"""Quick looks: ``run --epochs N`` trains a sweep for N epochs into its own folder,
``<name>-epochsN``, which the reading commands find by that name or by ``--epochs N``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nnsweep.definition.pruning import Prune
from nnsweep.definition.sweep import Sweep, with_overrides
from nnsweep.store._layout import quick_look_name as folder_name
from nnsweep.store._layout import split_quick_look as split

__all__ = ["folder_name", "quick_look", "split"]


def quick_look(sweep: Sweep, epochs: int, *, prune_given: bool = False) -> tuple[Sweep, str | None]:
    """The sweep as ``run --epochs`` trains it (every trial ``epochs`` long, its own folder),
    and a note when its pruning has no rung left before the end (then it is off, unless
    the command line said what pruning to do)."""
    note = None
    if not prune_given and isinstance(sweep.prune, Prune) and not sweep.prune.epochs(epochs):
        note = f"note: pruning is off for this quick look: no rung before epoch {epochs}"
        sweep = replace(sweep, prune=False)
    looked: Any = with_overrides(sweep, epochs=epochs)
    return replace(looked, name=folder_name(sweep.name, epochs)), note
