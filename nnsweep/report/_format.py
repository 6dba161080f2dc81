"""Formatting shared by captions, tables and the terminal: numbers, p-values and
hyperparameter values as a reader compares them, and configuration labels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def config_labels(table: Any, by: Sequence[str]) -> list[str]:
    """``"hidden_units=64, optimizer=adam"`` per row (``"all runs"`` with nothing swept)."""
    if not by:
        return ["all runs"] * len(table)
    parts = [f"{k}=" + table[k].map(fmt_value).astype(str) for k in by]
    out = parts[0]
    for p in parts[1:]:
        out = out + ", " + p
    return list(out)


def fmt_num(x: Any) -> str:
    """A metric value to the precision that matters for comparing runs."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x) or math.isinf(x):
        return "n/a"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    if round(a, 3) >= 0.01 or a == 0:
        return f"{x:.3f}"
    return f"{x:.2g}"


def fmt_p(p: float) -> str:
    """A p-value: two significant digits, or '<0.001'."""
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def p_text(p: float) -> str:
    """``p=0.012`` or ``p<0.001``, for captions and verdicts."""
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def fmt_value(v: Any) -> str:
    """A hyperparameter value as a user wrote it (0.001, 64, adam)."""
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "None"
        x = float(v)
        return f"{int(x)}" if x.is_integer() and abs(x) < 1e15 else f"{x:.3g}"
    return str(v)
