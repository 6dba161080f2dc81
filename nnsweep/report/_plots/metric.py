"""The metric against one hyperparameter: numeric (line, band, runs) or categorical."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnsweep.report._plots._common import (
    MAX_LEVELS,
    at,
    better_word,
    bin_numeric,
    dot_style,
    fit_runs,
    jitter,
    label,
    set_value_ticks,
    use_log,
)
from nnsweep.report.stats import describe, fmt_num, fmt_value, p_text, summarize


def _ok_runs(df: Any, x: str, metric: str, *, need_x: bool = True) -> Any:
    import pandas as pd

    ok = df[df["status"] == "ok"] if "status" in df else df
    values = pd.to_numeric(ok[metric], errors="coerce")
    keep = values.notna() & (ok[x].notna() if need_x else True)
    return ok[keep].assign(**{metric: values[keep]})


def _pooled(ok: Any, x: str) -> bool:
    """Whether a value of ``x`` pools several configurations (other hyperparameters vary)."""
    if "config_id" not in ok:
        return True
    return bool((ok.groupby(x)["config_id"].nunique() > 1).any())


@dataclass
class MetricData:
    """What ``draw_metric`` shows: runs, per-value lines, and the marginal ranking."""

    x: str
    metric: str
    direction: str
    runs: Any  # columns: x (plotted position), metric, hue
    lines: Any  # summarize() by [hue], x
    marginal: Any  # describe() by x, sorted by x
    log: bool
    binned: bool
    hue: str | None = None
    others: list[str] = field(default_factory=list)


def gather_metric(
    df: Any,
    x: str,
    metric: str,
    *,
    hue: str | None = None,
    direction: str = "max",
    others: list[str] | None = None,
) -> MetricData:
    """Runs and per-value mean/CI of ``metric`` along a numeric hyperparameter ``x``."""
    ok = _ok_runs(df, x, metric)
    xs = ok[x].astype(float)
    log = use_log(xs.unique())
    binned = xs.nunique() > MAX_LEVELS
    pos = bin_numeric(xs, log) if binned else xs
    cols = {x: np.asarray(pos, dtype=float), metric: ok[metric].to_numpy(float)}
    if hue:
        cols[hue] = ok[hue].map(fmt_value).to_numpy()
    import pandas as pd

    runs = pd.DataFrame(cols)
    keys: list[str] = [hue, x] if hue else [x]
    lines = summarize(runs, metric, by=keys).sort_values(keys)
    pooled = _pooled(ok.assign(**{x: np.asarray(pos, dtype=float)}), x)
    marginal = describe(runs, metric, by=[x], direction=direction, flag=not pooled)
    marginal = marginal.sort_values(x)
    return MetricData(
        x,
        metric,
        direction,
        runs,
        lines,
        marginal.reset_index(drop=True),
        log,
        binned,
        hue,
        list(others or []),
    )


def draw_metric(data: MetricData, ax: Any) -> Any:
    """Mean line with a 95 % band, every run as a dot, the best value starred."""
    import seaborn as sns

    x, m = data.x, data.metric
    groups = data.lines.groupby(data.hue, sort=False) if data.hue else [(None, data.lines)]
    palette = sns.color_palette("deep", max(1, len(groups)))
    for i, (level, line) in enumerate(groups):
        color = palette[i]
        name = f"{data.hue}={level}" if data.hue else "mean (95 % CI)"
        ax.plot(line[x], line["mean"], "-o", color=color, lw=2, ms=5, label=name, zorder=3)
        band = line["n"] > 1
        ax.fill_between(
            line[x][band], line["ci_low"][band], line["ci_high"][band], color=color, alpha=0.2
        )
        runs = data.runs if level is None else data.runs[data.runs[data.hue] == level]
        ax.scatter(
            jitter(runs[x], data.log),
            runs[m],
            color=color,
            lw=0,
            **dot_style(len(data.runs)),
            zorder=2,
            label="runs" if level is None else None,
        )
    best = data.marginal.loc[data.marginal["rank"] == 1]
    if len(best) and not data.hue:
        ax.scatter(
            best[x],
            best["mean"],
            marker="o",
            s=190,
            facecolors="none",
            edgecolors="#d62728",
            lw=2,
            zorder=4,
            label="best mean",
        )
    set_value_ticks(ax, "x", data.runs[x], data.log)
    fit_runs(ax, np.concatenate([data.runs[m].to_numpy(float), data.lines["mean"].to_numpy(float)]))
    ax.set_xlabel(x + (" (binned)" if data.binned else ""))
    ax.set_ylabel(f"{label(m)} ({better_word(data.direction)})")
    ax.set_title(f"{label(m)} vs {x}")
    ax.legend(fontsize="small", frameon=False)
    return ax


def caption_metric(data: MetricData) -> str:
    """E.g. 'test accuracy rises from 0.815 at 4 units to 0.960 at 16 units; ...'."""
    t = data.marginal[data.marginal["n"] > 0].reset_index(drop=True)
    x, name = data.x, label(data.metric)
    if t.empty:
        return f"no successful runs to plot {name} against {x}"
    if len(t) == 1:
        return f"{name} is {fmt_num(t['mean'][0])} at {at(x, t[x][0])}, the only value with runs"
    ib = int(t.index[t["rank"] == 1][0])
    first, best, last = t.iloc[0], t.iloc[ib], t.iloc[-1]

    def move(a: float, b: float) -> str:
        return "rises" if b > a else "falls"

    if ib == 0:
        text = (
            f"{name} is best at the smallest value, {at(x, first[x])} ({fmt_num(first['mean'])}),"
            f" and {move(first['mean'], last['mean'])} to {fmt_num(last['mean'])}"
            f" at {at(x, last[x])}"
        )
    else:
        text = (
            f"{name} {move(first['mean'], best['mean'])} from {fmt_num(first['mean'])} at "
            f"{at(x, first[x])} to {fmt_num(best['mean'])} at {at(x, best[x])}"
        )
        if ib < len(t) - 1:
            text += f", then {move(best['mean'], last['mean'])} to {fmt_num(last['mean'])}"
            text += f" at {at(x, last[x])}"
    text += _noise_words(t, ib, x)
    if data.others:
        text += f" (averaged over {', '.join(data.others)})"
    if data.binned:
        text += f"; {x} binned into ranges"
    return text


def _yes(v: Any) -> bool:
    import pandas as pd

    return v is not pd.NA and bool(v)


def _noise_words(t: Any, ib: int, x: str) -> str:
    """Which values are within seed noise of the best: the plateau around it, and beyond."""
    within, p = t["within_noise"], t["p_vs_best"]
    if (t["n"] < 2).all():
        return "; one run per value, so seed noise is unknown"
    if within.drop(index=ib).isna().all():
        return "; the other values' runs disagree too wildly to compare (unstable)"
    lo = ib
    while lo > 0 and _yes(within.iloc[lo - 1]):
        lo -= 1
    hi = ib
    while hi < len(t) - 1 and _yes(within.iloc[hi + 1]):
        hi += 1
    xs = t[x]
    words = []
    if lo < ib and lo == 0:
        words.append(
            f"already at {at(x, xs.iloc[0])} it is within seed noise of the best "
            f"(Welch {p_text(p.iloc[0])})"
        )
    elif lo < ib:
        words.append(
            f"above {at(x, xs.iloc[lo])} the gain is within seed noise (Welch {p_text(p.iloc[lo])})"
        )
    elif ib > 0:
        v = at(x, xs.iloc[ib - 1])
        many = f"{v} and below are" if ib > 1 else f"{v} is"
        words.append(f"{many} worse beyond seed noise (Welch {p_text(p.iloc[ib - 1])})")
    last = len(t) - 1
    if hi > ib:
        where = "larger values" if hi == last else f"values up to {at(x, xs.iloc[hi])}"
        words.append(f"{where} stay within seed noise of the best")
    elif ib < last:
        v = at(x, xs.iloc[ib + 1])
        many = f"{v} and above are" if ib + 1 < last else f"{v} is"
        words.append(f"{many} worse beyond seed noise (Welch {p_text(p.iloc[ib + 1])})")
    return "; " + "; ".join(words)


# -- categorical ------------------------------------------------------------------------


@dataclass
class CategoricalData:
    """What ``draw_categorical`` shows: runs per category and the ranking of categories."""

    x: str
    metric: str
    direction: str
    runs: Any
    table: Any  # describe() by x, best first
    others: list[str] = field(default_factory=list)


def gather_categorical(
    df: Any, x: str, metric: str, *, direction: str = "max", others: list[str] | None = None
) -> CategoricalData:
    """Every run of ``metric`` per category of ``x``, and categories ranked best first."""
    import pandas as pd

    ok = _ok_runs(df, x, metric, need_x=False)  # a missing value is the category "None"
    runs = pd.DataFrame({x: ok[x].map(fmt_value).to_numpy(), metric: ok[metric].to_numpy(float)})
    table = describe(runs, metric, by=[x], direction=direction, flag=not _pooled(ok, x))
    return CategoricalData(x, metric, direction, runs, table, list(others or []))


def draw_categorical(data: CategoricalData, ax: Any) -> Any:
    """Each run as a dot, the mean as a diamond with its 95 % interval; best first."""
    import seaborn as sns

    x, m = data.x, data.metric
    order = list(data.table[x])
    pos = {c: i for i, c in enumerate(order)}
    palette = sns.color_palette("deep", max(1, len(order)))
    xs = data.runs[x].map(pos).to_numpy(float)
    colors = [palette[int(i)] for i in xs]
    ax.scatter(jitter(xs, False, 0.25), data.runs[m], c=colors, lw=0, **dot_style(len(xs)))
    t = data.table
    err = np.vstack([t["mean"] - t["ci_low"], t["ci_high"] - t["mean"]])
    ax.errorbar(
        np.arange(len(t)),
        t["mean"],
        yerr=np.nan_to_num(err),
        fmt="D",
        color="black",
        ms=7,
        capsize=6,
        lw=1.5,
        zorder=3,
        label="mean (95 % CI)",
    )
    ax.set_xticks(np.arange(len(order)), order, rotation=30 if len(order) > 5 else 0)
    ax.set_xlabel(f"{x} (best first)")
    ax.set_ylabel(f"{label(m)} ({better_word(data.direction)})")
    ax.set_title(f"{label(m)} by {x}")
    ax.legend(fontsize="small", frameon=False)
    return ax


def caption_categorical(data: CategoricalData) -> str:
    """E.g. 'adam gives the best test accuracy, 0.962; runner-up rmsprop 0.958 ...'."""
    t = data.table[data.table["n"] > 0]
    x, name = data.x, label(data.metric)
    if t.empty:
        return f"no successful runs to compare {name} by {x}"
    best = t.iloc[0]
    text = f"{x}={best[x]} gives the best {name}, {fmt_num(best['mean'])}"
    if len(t) > 1:
        second = t.iloc[1]
        p = second["p_vs_best"]
        if p != p:
            noise = "cannot be told from seed noise with one run each"
        elif bool(second["unstable"]):
            noise = "too unstable to compare (its runs disagree wildly)"
        elif p >= 0.05:
            noise = f"within seed noise of it (Welch {p_text(p)})"
        else:
            noise = f"worse beyond seed noise (Welch {p_text(p)})"
        text += f"; runner-up {second[x]} ({fmt_num(second['mean'])}) is {noise}"
    if len(t) > 2:
        worst = t.iloc[-1]
        text += f"; worst {worst[x]} ({fmt_num(worst['mean'])})"
    if data.others:
        text += f" (averaged over {', '.join(data.others)})"
    return text
