"""Parallel coordinates: one line per configuration through its swept values, coloured by
the metric's mean over its runs. With three or more swept hyperparameters, pairs of
heatmaps no longer show a configuration whole; this does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsweep.report._plots._common import better_word, is_numeric, label, use_log
from nnsweep.report.stats import fmt_num, fmt_value

# More tick labels than this on one axis would overlap; the rest are drawn unlabelled.
_MAX_TICK_LABELS = 8


@dataclass
class ParallelData:
    """Per configuration: where it crosses each axis (0 to 1), and its mean metric."""

    params: list[str]
    metric: str
    direction: str
    positions: Any  # DataFrame: a row per configuration, a column per param
    ticks: dict[str, list[tuple[float, str]]]  # per param: (position, value label)
    mean: Any  # Series, aligned with positions
    runs: Any  # Series: runs per configuration


def _axis(values: Any) -> tuple[Any, list[tuple[float, str]]]:
    """Positions in [0, 1] for one hyperparameter's values, and its ticks: numbers on a
    linear or log scale (as the other figures choose), anything else evenly spaced."""
    if is_numeric(values) and values.notna().all():
        v = values.astype(float)
        log = use_log(v.unique())
        f = np.log(v) if log else v
        span = f.max() - f.min()
        pos = (f - f.min()) / span if span > 0 else f * 0 + 0.5
        levels = sorted(v.unique())
        at = dict(zip(v, pos, strict=True))
        return pos, [(float(at[x]), fmt_value(x)) for x in levels]
    text = values.map(fmt_value)
    levels = sorted(text.unique(), key=str)
    step = {x: (i / (len(levels) - 1) if len(levels) > 1 else 0.5) for i, x in enumerate(levels)}
    return text.map(step).astype(float), [(step[x], str(x)) for x in levels]


def gather_parallel(
    df: Any, params: Sequence[str], metric: str, *, direction: str = "max"
) -> ParallelData:
    """Mean ``metric`` of the ok runs per configuration of ``params``, placed on the axes."""
    import pandas as pd

    ok = df[df["status"] == "ok"] if "status" in df else df
    values = pd.to_numeric(ok[metric], errors="coerce")
    frame = ok.loc[values.notna(), list(params)].copy()
    frame["__metric"] = values[values.notna()]
    grouped = frame.groupby(list(params), sort=False, dropna=False)["__metric"]
    configs = grouped.agg(["mean", "size"]).reset_index()
    positions, ticks = pd.DataFrame(index=configs.index), {}
    for p in params:
        positions[p], ticks[p] = _axis(configs[p])
    return ParallelData(
        list(params), metric, direction, positions, ticks, configs["mean"], configs["size"]
    )


def draw_parallel(d: ParallelData, ax: Any) -> Any:
    """The lines, worst first so the best are on top; the best drawn thick."""
    import matplotlib as mpl

    k = len(d.params)
    ax.set_xlim(-0.15, k - 1 + 0.15)
    ax.set_ylim(-0.08, 1.08)
    for i, p in enumerate(d.params):
        ax.axvline(i, color="0.35", lw=1)
        ticks = d.ticks[p]
        if len(ticks) > _MAX_TICK_LABELS:  # the ends and a few between
            picks = np.unique(np.linspace(0, len(ticks) - 1, 6).round().astype(int))
            ticks = [ticks[i] for i in picks]
        shown = ticks
        for pos, text in shown:
            ax.text(i + 0.03, pos, text, fontsize=7, va="center", color="0.2")
    ax.set_xticks(range(k), d.params)
    ax.set_yticks([])
    ax.grid(False)
    if d.mean.empty:
        ax.text(0.5, 0.5, "no successful runs", ha="center", transform=ax.transAxes)
        return ax
    cmap = mpl.colormaps["viridis" if d.direction == "max" else "viridis_r"]
    norm = mpl.colors.Normalize(float(d.mean.min()), float(d.mean.max()))
    order = np.argsort(d.mean.to_numpy() * (1 if d.direction == "max" else -1))
    best = order[-1]
    faint = 0.75 if len(order) <= 50 else 0.25  # many lines: let the colours show through
    for j in order:
        y = d.positions.iloc[j].to_numpy(float)
        width, alpha = (2.8, 1.0) if j == best else (1.2, faint)
        ax.plot(range(k), y, color=cmap(norm(d.mean.iloc[j])), lw=width, alpha=alpha)
    ax.figure.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=label(d.metric))
    ax.set_title(f"{label(d.metric)} by configuration ({better_word(d.direction)})")
    return ax


def caption_parallel(d: ParallelData) -> str:
    """What the figure shows, with the best configuration named."""
    if d.mean.empty:
        return "No configuration has a successful run."
    j = int(np.argmax(d.mean.to_numpy() * (1 if d.direction == "max" else -1)))
    tick_of = {p: dict(d.ticks[p]) for p in d.params}
    best = ", ".join(f"{p}={tick_of[p][d.positions[p].iloc[j]]}" for p in d.params)
    return (
        f"Each of the {len(d.mean)} lines is a configuration, through its value on each "
        f"axis, coloured by its mean {label(d.metric)} over its runs "
        f"({better_word(d.direction)}); the thick line is the best, {best}, at "
        f"{fmt_num(d.mean.iloc[j])} (n={int(d.runs.iloc[j])})."
    )
