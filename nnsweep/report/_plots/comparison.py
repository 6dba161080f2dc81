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
from nnsweep.report.stats import (
    fmt_num,
    p_text,
    rank_configurations,
    ranked_rows,
    summarize,
    welch_arrays,
)


@dataclass
class ComparisonData:
    """Per sweep and value of ``x``: the chosen configuration's runs, mean and 95 % CI."""

    x: str
    metric: str
    direction: str
    runs: Any  # sweep, config, x, metric (the chosen configuration at each value only)
    lines: Any  # summarize() by sweep, x
    best: Any  # per sweep, its chosen configuration's summarize() row; best sweep first
    chosen_by: list[str]  # the columns that chose (each sweep's validation objective)


def gather_comparison(
    frames: Mapping[str, Any],
    x: str,
    metric: str,
    *,
    direction: str = "max",
    infos: Mapping[str, Mapping[str, Any]] | None = None,
    choose_by: str | None = None,
) -> ComparisonData:
    """Every sweep's ok search runs of the configuration it would choose at each value of
    ``x``: the one ``rank_configurations`` ranks first there (by ``choose_by``, default the
    sweep's validation objective), drawn on ``metric`` (the test metric, say).

    Where other hyperparameters vary too (optimizer, learning rate), pooling them would
    compare averages over settings nobody would pick; the chosen one at each size is the
    fair "MLP vs CNN" comparison, and choosing on the metric drawn would flatter it.
    """
    import pandas as pd

    parts, chosen_by = [], []
    for name, df in frames.items():
        df = df if "config_id" in df else df.assign(config_id=df[x].astype(str))
        ranking = rank_configurations(df, (infos or {}).get(name), metric=choose_by)
        chosen_by.append(ranking.metric)
        ranked = ranking.table.loc[ranking.table["n"] > 0, "config_id"].astype(str)
        rows = ranked_rows(df)
        ok = rows[rows["status"] == "ok"] if "status" in rows else rows
        part = pd.DataFrame(
            {
                "sweep": name,
                "config": ok["config_id"].astype(str),
                x: pd.to_numeric(ok[x], errors="coerce"),
                metric: pd.to_numeric(ok[metric], errors="coerce"),
            }
        )
        part["_rank"] = part["config"].map(dict(zip(ranked, range(len(ranked)), strict=True)))
        part = part.dropna()
        parts.append(part[part["_rank"] == part.groupby(x)["_rank"].transform("min")])
    runs = pd.concat(parts, ignore_index=True)
    lines = summarize(runs, metric, by=["sweep", x]).sort_values(["sweep", x])
    chosen = runs[runs["_rank"] == runs.groupby("sweep")["_rank"].transform("min")]
    best = summarize(chosen, metric, by=["sweep", x])
    best = best.sort_values("mean", ascending=direction == "min", kind="stable")
    runs = runs.drop(columns="_rank")
    return ComparisonData(
        x,
        metric,
        direction,
        runs,
        lines,
        best.reset_index(drop=True),
        list(dict.fromkeys(chosen_by)),
    )


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
        f"configuration chosen on {_chosen_words(data)} at each value; band: 95 % CI",
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

    if data.chosen_by == [data.metric]:
        head = f"best {name}: "
    else:
        head = f"{name} of the configuration chosen on {_chosen_words(data)}: "
    text = head + "; ".join(where(r) for _, r in b.iterrows())  # one per sweep
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


def _chosen_words(data: ComparisonData) -> str:
    """What chose the configurations, in words: ``validation accuracy``."""
    return " or ".join(label(c) for c in data.chosen_by)
