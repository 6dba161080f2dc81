"""The report's verdict: does the best configuration beat the runner-up beyond seed noise?

In plain words, from a ``stats.describe`` table (its Welch p-values and unstable flags).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nnsweep.report._format import config_labels, fmt_num, p_text
from nnsweep.report._welch import ALPHA


@dataclass(frozen=True)
class Verdict:
    """Best configuration vs runner-up: does the best win beyond seed noise?"""

    best: str
    runner_up: str | None
    best_mean: float
    runner_up_mean: float
    difference: float
    p: float
    beyond_noise: bool | None
    text: str


def verdict(
    table: Any, metric: str, by: Sequence[str], direction: str, label: str | None = None
) -> Verdict:
    """Plain words on whether the best of a ``describe`` table beats the runner-up."""
    label = label or metric
    rows = table[table["n"] > 0]
    if rows.empty:
        return Verdict("", None, math.nan, math.nan, math.nan, math.nan, None, "no successful runs")
    names = config_labels(rows, by)
    best = rows.iloc[0]
    head = f"best {label}: {names[0]}, {fmt_num(best['mean'])}" + _pm(best)
    if len(rows) == 1:
        return Verdict(names[0], None, best["mean"], math.nan, math.nan, math.nan, None, head)
    second = rows.iloc[1]
    diff = float(abs(best["mean"] - second["mean"]))
    p = float(second["p_vs_best"])
    vs = f"runner-up {names[1]}, {fmt_num(second['mean'])}" + _pm(second)
    if math.isnan(p):
        beyond = None
        words = "cannot tell whether this beats seed noise (fewer than two runs each)"
    elif bool(second["unstable"]):
        beyond = None
        words = (
            f"the runner-up's runs disagree wildly, so Welch's test ({p_text(p)}) settles nothing"
        )
    elif p < ALPHA:
        beyond = True
        words = f"the best wins by {fmt_num(diff)}, beyond seed noise (Welch {p_text(p)})"
    else:
        beyond = False
        words = f"the gap of {fmt_num(diff)} is within seed noise (Welch {p_text(p)})"
    text = f"{head}; {vs}; {words}."
    return Verdict(names[0], names[1], best["mean"], second["mean"], diff, p, beyond, text)


def _pm(row: Any) -> str:
    std = row["std"]
    spread = f" ± {fmt_num(std)}" if not math.isnan(std) else ""
    return f"{spread} (n={int(row['n'])})"
