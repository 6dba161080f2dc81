"""Helpers shared by the figures: labels, axis scales, ticks and jitter."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnsweep.report.stats import fmt_value

MAX_LEVELS = 12  # more distinct numeric values than this are binned
_WORDS = {
    "val": "validation",
    "accuracy": "accuracy",
    "mae": "MAE",
    "mse": "MSE",
    "auc": "AUC",
    "rmse": "RMSE",
    "f1": "F1",
    "top_k_accuracy": "top-5 accuracy",
    "n_params": "parameters",
    "fit_seconds": "training time (s)",
}
UNITS = {"hidden_units": "units", "depth": "layers", "epochs": "epochs"}


def label(column: str) -> str:
    """A column name in words: ``val_mae`` -> ``validation MAE``."""
    if column in _WORDS:
        return _WORDS[column]
    head, _, rest = column.partition("_")
    if head in ("val", "test", "best") and rest:  # a split's metric: ``val_top_k_accuracy``
        return f"{_WORDS.get(head, head)} {label(rest)}"
    return " ".join(_WORDS.get(w, w) for w in column.split("_"))


def at(param: str, value: Any) -> str:
    """A hyperparameter value in a caption: ``16 units``, ``learning_rate=0.001``."""
    if param in UNITS:
        return f"{fmt_value(value)} {UNITS[param]}"
    return f"{param}={fmt_value(value)}"


def is_numeric(series: Any) -> bool:
    """Numeric and not bool: drawn on an axis rather than as categories."""
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def use_log(values: Sequence[float]) -> bool:
    """Log axis where values are powers of two (units) or span a decade or more (rates)."""
    v = np.unique(np.asarray(values, dtype=float))
    v = v[~np.isnan(v)]
    if len(v) < 2 or (v <= 0).any():
        return False
    if v.max() / v.min() >= 10:
        # Decades apart: log, unless the values are spread evenly on a linear scale (e.g.
        # random dropout in [0, 0.5], whose smallest draw is tiny), which a mean near the
        # median gives away.
        return bool(len(v) <= 3 or v.mean() > 1.5 * np.median(v))
    powers = np.all(np.isclose(np.log2(v), np.round(np.log2(v)))) and np.all(v >= 1)
    return bool(powers and len(v) >= 3)


def bin_numeric(values: Any, log: bool, bins: int = 8) -> Any:
    """Bin centres (geometric on a log axis) for continuous values from random search."""
    import pandas as pd

    v = values.astype(float)
    edges_src = np.log(v) if log else v
    cut = pd.cut(edges_src, bins=bins)
    mids = cut.map(lambda iv: iv.mid).astype(float)
    return np.exp(mids) if log else mids


def set_value_ticks(ax: Any, axis: str, values: Sequence[float], log: bool) -> None:
    """Ticks at the swept values themselves (4, 16, 64 rather than 10^1)."""
    v = np.unique(np.asarray(values, dtype=float))
    v = v[~np.isnan(v)]
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    if log:
        base = 2 if np.all(np.isclose(np.log2(v), np.round(np.log2(v)))) else 10
        setter("log", base=base)
    if len(v) <= MAX_LEVELS:
        from matplotlib.ticker import NullLocator

        ticks = ax.set_xticks if axis == "x" else ax.set_yticks
        ticks(v, [fmt_value(x) for x in v])
        (ax.xaxis if axis == "x" else ax.yaxis).set_minor_locator(NullLocator())


def plain_log_ticks(ax: Any, axis: str = "x") -> None:
    """Log-axis labels as plain numbers (300, 1000) rather than 3 x 10^2."""
    from matplotlib.ticker import FuncFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    span = hi / lo if lo > 0 else math.inf

    def minor(v: float, _: Any) -> str:
        # Label 2x and 5x between decades only where few decades leave room for them.
        mantissa = round(v / 10 ** math.floor(math.log10(v)), 6) if v > 0 else 0
        return fmt_value(v) if span < 30 and mantissa in (2, 5) else ""

    target.set_major_formatter(FuncFormatter(lambda v, _: fmt_value(v)))
    target.set_minor_formatter(FuncFormatter(minor))


def jitter(x: Any, log: bool, width: float = 0.04, seed: int = 0) -> Any:
    """Spread runs that share a value sideways so each one stays visible."""
    x = np.asarray(x, dtype=float)
    noise = np.random.default_rng(seed).uniform(-1, 1, len(x)) * width
    if log:
        return x * np.exp(noise * 1.5)
    span = np.nanmax(x) - np.nanmin(x) if len(x) else 0.0
    return x + noise * (span if span > 0 else 1.0) * 0.5


def fit_runs(ax: Any, values: Any) -> None:
    """Y limits from the runs and means: a 3-run t-interval can reach past any real value
    (accuracy 1.16), and would otherwise flatten the differences that matter."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return
    lo, hi = float(v.min()), float(v.max())
    pad = 0.08 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 0.01)
    ax.set_ylim(lo - pad, hi + pad)


def dot_style(n: int) -> dict[str, float]:
    """Marker size and opacity for ``n`` dots: thousands of runs must not paint a wall."""
    if n <= 200:
        return {"s": 14.0, "alpha": 0.55}
    if n <= 2000:
        return {"s": 8.0, "alpha": 0.3}
    return {"s": 4.0, "alpha": 0.15}


def new_axes(ax: Any = None, size: tuple[float, float] = (6.4, 4.2)) -> Any:
    """The given Axes, or a fresh one from pyplot (a notebook shows it)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt
    import seaborn as sns

    with sns.axes_style("whitegrid"):
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def better_word(direction: str) -> str:
    return "lower is better" if direction == "min" else "higher is better"
