"""Quick looks: ``run --epochs N`` trains a sweep for N epochs into its own folder,
``<name>-epochsN``, which the reading commands find by that name or by ``--epochs N``."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from nnsweep.definition.pruning import Prune
from nnsweep.definition.sweep import Sweep, with_overrides

_NAME = re.compile(r"(?P<base>.+)-epochs(?P<epochs>[1-9][0-9]*)")


def folder_name(name: str, epochs: int | None) -> str:
    """The results folder of sweep ``name``'s quick look of ``epochs`` (or its own)."""
    return f"{name}-epochs{epochs}" if epochs else name


def split(name: str) -> tuple[str, int | None]:
    """``("hidden_units", 1)`` for ``hidden_units-epochs1``; ``(name, None)`` otherwise."""
    match = _NAME.fullmatch(name)
    return (match["base"], int(match["epochs"])) if match else (name, None)


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
