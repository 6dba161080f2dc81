"""Welch's unequal-variance t-test (from summary statistics or samples) and Holm's
step-down correction: the comparisons ``stats``, ``diff``, the effects and the confirmation
make, beyond seed noise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHA = 0.05


def _t_sf2(t: Any, dof: Any) -> Any:
    """Two-sided p-value of Student's t."""
    from scipy import stats as st

    return 2 * st.t.sf(np.abs(t), dof)


@dataclass(frozen=True)
class Welch:
    """Welch's unequal-variance t-test: statistic, degrees of freedom, two-sided p."""

    t: float
    dof: float
    p: float


def holm(p: Sequence[float]) -> list[float]:
    """Holm's step-down correction (statsmodels) over the known p-values; NaN stays NaN
    and counts for nothing."""
    from statsmodels.stats.multitest import multipletests

    values = np.asarray(p, dtype=float)
    out = np.full(len(values), math.nan)
    known = ~np.isnan(values)
    if known.any():
        out[known] = multipletests(values[known], alpha=ALPHA, method="holm")[1]
    return [float(x) for x in out]


def welch_arrays(m1: Any, s1: Any, n1: Any, m2: Any, s2: Any, n2: Any) -> Any:
    """Welch's p-values from summary statistics, elementwise; NaN where n < 2."""
    m1, s1, n1, m2, s2, n2 = (np.asarray(a, dtype=float) for a in (m1, s1, n1, m2, s2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        v1, v2 = s1**2 / n1, s2**2 / n2
        se2 = v1 + v2
        t = (m1 - m2) / np.sqrt(se2)
        dof = se2**2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
        p = _t_sf2(t, dof)
    # Two sets of identical runs: different means are certainly different, equal ones not.
    zero = se2 == 0
    p = np.where(zero, np.where(m1 == m2, 1.0, 0.0), p)
    p = np.where((n1 < 2) | (n2 < 2), np.nan, p)
    return t, dof, p


def welch(first: Sequence[float], second: Sequence[float]) -> Welch:
    """Welch's t-test of two samples (runs of two configurations)."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    t, dof, p = welch_arrays(
        a.mean() if len(a) else np.nan,
        a.std(ddof=1) if len(a) > 1 else np.nan,
        len(a),
        b.mean() if len(b) else np.nan,
        b.std(ddof=1) if len(b) > 1 else np.nan,
        len(b),
    )
    return Welch(float(t), float(dof), float(p))
