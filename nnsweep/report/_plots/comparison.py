"""Several sweeps on one figure (e.g. MLP vs CNN): the metric against a shared axis."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsweep.report._plots._common import (
    at,
    better_word,
    dot_style,
    fit_runs,
    jitter,
    label,
    set_value_ticks,
    use_log,
)
from nnsweep.report.stats import describe, fmt_num, p_text, summarize, welch_arrays


@dataclass
class ComparisonData:
    """Per sweep and value of ``x``: the best configuration's runs, mean and 95 % CI."""

    x: str
    metric: str
    direction: str
    runs: Any  # sweep, config, x, metric (the best configuration at each value only)
    lines: Any  # summarize() by sweep, x
    best: Any  # one describe() row per sweep, best sweep first


def gather_comparison(
    frames: Mapping[str, Any], x: str, metric: str, *, direction: str = "max"
) -> ComparisonData:
    """Stack every sweep's ok runs; at each value of ``x`` keep each sweep's best configuration.

    Where other hyperparameters vary too (optimizer, learning rate), pooling them would
    compare averages over settings nobody would pick; the best at each size is the fair
    "MLP vs CNN" comparison.
    """
    import pandas as pd

    parts = []
    for name, df in frames.items():
        ok = df[df["status"] == "ok"] if "status" in df else df
        config = ok["config_id"] if "config_id" in ok else ok[x].astype(str)
        parts.append(
            pd.DataFrame(
                {
                    "sweep": name,
                    "config": config.astype(str),
                    x: pd.to_numeric(ok[x], errors="coerce"),
                    metric: pd.to_numeric(ok[metric], errors="coerce"),
                }
            )
        )
    runs = pd.concat(parts, ignore_index=True).dropna()
    per = describe(runs, metric, by=["sweep", "config", x], direction=direction)
    per = per[per["n"] > 0].drop_duplicates(["sweep", x])  # sorted best first
    runs = runs.merge(per[["sweep", "config"]], on=["sweep", "config"])
    lines = summarize(runs, metric, by=["sweep", x]).sort_values(["sweep", x])
    best = per.drop_duplicates("sweep").reset_index(drop=True)
    return ComparisonData(x, metric, direction, runs, lines, best)


def draw_comparison(data: ComparisonData, ax: Any) -> Any:
    """One colour per sweep: mean line, 95 % band and runs."""
    import seaborn as sns

    x, m = data.x, data.metric
    names = list(dict.fromkeys(data.runs["sweep"]))
    palette = sns.color_palette("deep", max(1, len(names)))
    log = use_log(data.runs[x].unique())
    for color, name in zip(palette, names, strict=False):
        line = data.lines[data.lines["sweep"] == name]
        ax.plot(line[x], line["mean"], "-o", color=color, lw=2, ms=5, label=name, zorder=3)
        band = line["n"] > 1
        ax.fill_between(
            line[x][band], line["ci_low"][band], line["ci_high"][band], color=color, alpha=0.2
        )
        runs = data.runs[data.runs["sweep"] == name]
        ax.scatter(jitter(runs[x], log), runs[m], color=color, lw=0, **dot_style(len(runs)))
    set_value_ticks(ax, "x", data.runs[x], log)
    fit_runs(ax, np.concatenate([data.runs[m].to_numpy(float), data.lines["mean"].to_numpy(float)]))
    ax.set_xlabel(label(x) if x in ("n_params",) else x)
    ax.set_ylabel(f"{label(m)} ({better_word(data.direction)})")
    ax.set_title(f"{label(m)} vs {label(x) if x == 'n_params' else x}: " + " vs ".join(names))
    ax.text(
        0.99,
        0.01,
        "best configuration at each value; band: 95 % CI",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize="x-small",
        color="0.4",
    )
    ax.legend(fontsize="small", frameon=False)
    return ax


def caption_comparison(data: ComparisonData) -> str:
    """Each sweep's best value, and whether the winner wins beyond seed noise."""
    b = data.best
    if b.empty:
        return "no successful runs to compare"
    x, name = data.x, label(data.metric)

    def where(r: Any) -> str:
        return f"{r['sweep']} {fmt_num(r['mean'])} at {at(x, r[x])}"

    text = f"best {name}: " + "; ".join(where(r) for _, r in b.iterrows())  # one per sweep
    if len(b) > 1:
        first, second = b.iloc[0], b.iloc[1]
        _, _, p = welch_arrays(
            first["mean"], first["std"], first["n"], second["mean"], second["std"], second["n"]
        )
        diff = abs(first["mean"] - second["mean"])
        if np.isnan(p):
            text += f"; {first['sweep']} leads by {fmt_num(diff)} (seed noise unknown)"
        elif p < 0.05:
            text += (
                f"; {first['sweep']} wins by {fmt_num(diff)}, beyond seed noise (Welch {p_text(p)})"
            )
        else:
            text += f"; the gap of {fmt_num(diff)} is within seed noise (Welch {p_text(p)})"
    return text
