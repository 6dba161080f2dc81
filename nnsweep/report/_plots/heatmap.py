"""A heatmap of the metric's mean over a pair of hyperparameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsweep.report._plots._common import (
    MAX_LEVELS,
    at,
    better_word,
    bin_numeric,
    is_numeric,
    label,
    use_log,
)
from nnsweep.report.stats import fmt_num, fmt_value


@dataclass
class HeatmapData:
    """Mean of ``metric`` per cell (rows: y values, columns: x values) and runs per cell."""

    x: str
    y: str
    metric: str
    direction: str
    mean: Any  # DataFrame, index y levels, columns x levels
    count: Any


def _levels(s: Any) -> Any:
    """Cell labels for one axis: the values, or ranges when a numeric axis is continuous."""
    import pandas as pd

    if is_numeric(s) and s.isna().any():
        return s.map(fmt_value)  # None among numbers: categories
    if is_numeric(s) and s.nunique() > MAX_LEVELS:
        log = use_log(s.unique())
        mids = bin_numeric(s, log)
        return pd.Series(mids, index=s.index).map(lambda v: f"~{fmt_value(float(f'{v:.2g}'))}")
    if is_numeric(s):
        return s.astype(float)
    return s.map(fmt_value)


def gather_heatmap(df: Any, x: str, y: str, metric: str, *, direction: str = "max") -> HeatmapData:
    """Pivot the ok runs' ``metric`` into a y-by-x grid of means and counts."""
    import pandas as pd

    ok = df[df["status"] == "ok"] if "status" in df else df
    vals = pd.to_numeric(ok[metric], errors="coerce")
    keep = vals.notna()
    frame = pd.DataFrame(
        {x: _levels(ok.loc[keep, x]), y: _levels(ok.loc[keep, y]), metric: vals[keep]}
    )
    if frame.empty:
        empty = pd.DataFrame(index=pd.Index([], name=y), columns=pd.Index([], name=x), dtype=float)
        return HeatmapData(x, y, metric, direction, empty, empty.copy())
    grid = frame.pivot_table(index=y, columns=x, values=metric, aggfunc=["mean", "count"])
    mean, count = grid["mean"], grid["count"]
    # Numeric levels sort as numbers; show them as written (64, not 64.0).
    for axis in (0, 1):
        labels = mean.axes[axis]
        if pd.api.types.is_numeric_dtype(labels):
            new = [fmt_value(v) for v in labels]
            mean = mean.set_axis(new, axis=axis)
            count = count.set_axis(new, axis=axis)
    mean.index.name, mean.columns.name = y, x
    return HeatmapData(x, y, metric, direction, mean, count)


def draw_heatmap(data: HeatmapData, ax: Any) -> Any:
    """Cells coloured so that better is always brighter; the best cell outlined."""
    import seaborn as sns
    from matplotlib.patches import Rectangle

    cells = data.mean.size
    annot = cells <= 150
    fmt_cells = data.mean.map(fmt_num) if annot else False
    sns.heatmap(
        data.mean,
        ax=ax,
        annot=fmt_cells,
        fmt="",
        cmap="viridis_r" if data.direction == "min" else "viridis",
        cbar_kws={"label": f"{label(data.metric)} ({better_word(data.direction)})"},
        annot_kws={"fontsize": 8},
        linewidths=0.5,
        linecolor="white",
    )
    arr = data.mean.to_numpy(dtype=float)
    if np.isfinite(arr).any():
        flat = np.nanargmin(arr) if data.direction == "min" else np.nanargmax(arr)
        r, c = np.unravel_index(flat, arr.shape)
        ax.add_patch(Rectangle((float(c), float(r)), 1, 1, fill=False, edgecolor="#d62728", lw=3))
    ax.invert_yaxis()  # small values at the bottom, as on a plot
    ax.set_title(f"mean {label(data.metric)}: {data.y} × {data.x}")
    return ax


def caption_heatmap(data: HeatmapData) -> str:
    """Best and worst cells with their means."""
    stacked = data.mean.stack().dropna()
    if stacked.empty:
        return f"no successful runs for {data.y} × {data.x}"
    name = label(data.metric)
    best = stacked.idxmin() if data.direction == "min" else stacked.idxmax()
    worst = stacked.idxmax() if data.direction == "min" else stacked.idxmin()
    n = data.count.stack()
    text = (
        f"best {name} at {at(data.y, best[0])}, {at(data.x, best[1])} "
        f"({fmt_num(stacked[best])}); worst at {at(data.y, worst[0])}, {at(data.x, worst[1])} "
        f"({fmt_num(stacked[worst])})"
    )
    missing = int(data.mean.isna().to_numpy().sum())
    text += (
        f"; {int(n.min())}–{int(n.max())} runs per cell"
        if n.min() != n.max()
        else (f"; {int(n.min())} runs per cell")
    )
    if missing:
        text += f"; {missing} empty cells"
    return text
