"""The metric against cost (parameter count or training time), with the Pareto front."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsweep.report._plots._common import better_word, dot_style, label, plain_log_ticks, use_log
from nnsweep.report.stats import config_labels, describe, fmt_num


@dataclass
class ParetoData:
    """Per configuration: mean cost, mean metric, rank, and whether it is on the front."""

    x: str
    metric: str
    direction: str
    runs: Any  # x, metric of every ok run
    configs: Any  # describe() rows + x (mean), label, front; sorted by x
    log: bool


def gather_pareto(
    df: Any, x: str, metric: str, *, by: Sequence[str] | None = None, direction: str = "max"
) -> ParetoData:
    """Configurations' mean cost and metric; the front is those no cheaper one beats."""
    import pandas as pd

    from nnsweep.report.stats import param_columns

    if x not in df.columns:
        from nnsweep.errors import ResultsError

        raise ResultsError(f"x must be a column of trials.csv, got {x!r} (try n_params)")
    by = list(by) if by is not None else param_columns(df)
    ok = df[df["status"] == "ok"] if "status" in df else df
    cost = pd.to_numeric(ok[x], errors="coerce")
    vals = pd.to_numeric(ok[metric], errors="coerce")
    keep = cost.notna() & vals.notna()
    runs = pd.DataFrame({x: cost[keep], metric: vals[keep]})
    table = describe(ok[keep], metric, by=by, direction=direction)
    table = table[table["n"] > 0]
    keys = ["config_id", *by] if "config_id" in ok else by
    means = cost[keep].groupby([ok.loc[keep, k] for k in keys], dropna=False, sort=False).mean()
    means = means.rename(x).reset_index()
    table = table.merge(means, on=keys, how="left").sort_values([x, "rank"]).reset_index(drop=True)
    table["label"] = config_labels(table, by)
    sign = -1.0 if direction == "min" else 1.0
    score = sign * table["mean"].to_numpy(float)
    prev = np.maximum.accumulate(np.concatenate([[-np.inf], score[:-1]]))
    table["front"] = score > prev
    return ParetoData(x, metric, direction, runs, table, use_log(list(runs[x].unique())))


def draw_pareto(data: ParetoData, ax: Any) -> Any:
    """Runs in grey, configuration means in blue, the front as a red staircase."""
    x, m, t = data.x, data.metric, data.configs
    ax.scatter(
        data.runs[x], data.runs[m], color="0.6", lw=0, label="runs", **dot_style(len(data.runs))
    )
    many = len(t) > 100
    ax.scatter(
        t[x],
        t["mean"],
        s=10 if many else 36,
        alpha=0.5 if many else 1.0,
        color="#4c72b0",
        lw=0,
        zorder=3,
        label="configuration mean",
    )
    front = t[t["front"]]
    ax.step(
        front[x], front["mean"], where="post", color="#d62728", lw=2, zorder=2, label="Pareto front"
    )
    ax.scatter(front[x], front["mean"], s=60, color="#d62728", zorder=4)
    # Labels only where they stay short and few; the caption names the ones that matter.
    if data.log:
        ax.set_xscale("log")
        plain_log_ticks(ax)
    if len(front) <= 8 and front["label"].str.len().max() <= 32:
        to_axes = ax.transData + ax.transAxes.inverted()
        for _, r in front.iterrows():  # at most 8 labels
            # Labels of points in the right part of the plot go to their left, inside it.
            right = to_axes.transform((r[x], r["mean"]))[0] > 0.55
            ax.annotate(
                r["label"],
                (r[x], r["mean"]),
                textcoords="offset points",
                xytext=(-6, -11) if right else (6, -11),
                ha="right" if right else "left",
                fontsize=7,
            )
    ax.set_xlabel(label(x) + (" (log scale)" if data.log else ""))
    ax.set_ylabel(f"{label(m)} ({better_word(data.direction)})")
    ax.set_title(f"{label(m)} vs {label(x)}")
    ax.legend(fontsize="small", frameon=False)
    return ax


def _cost(x: str, v: float) -> str:
    if x == "n_params":
        return f"{v:,.0f} parameters"
    if x == "fit_seconds":
        return f"{fmt_num(v)} s"
    return f"{x}={fmt_num(v)}"


def caption_pareto(data: ParetoData) -> str:
    """How many configurations are on the front, and the cheapest one as good as the best."""
    t = data.configs
    if t.empty:
        return f"no successful runs with {data.x}"
    best = t[t["rank"] == 1].iloc[0]
    text = (
        f"{int(t['front'].sum())} of {len(t)} configurations are on the Pareto front; the best, "
        f"{best['label']} ({fmt_num(best['mean'])}), costs {_cost(data.x, best[data.x])}"
    )
    near = t[(t["within_noise"].fillna(False)) | (t["rank"] == 1)]
    cheap = near.iloc[0]  # sorted by cost
    if cheap["rank"] != 1:
        text += (
            f"; the cheapest within seed noise of it is {cheap['label']} "
            f"({fmt_num(cheap['mean'])}, {_cost(data.x, cheap[data.x])})"
        )
    elif t["within_noise"].isna().all() and len(t) > 1:
        text += "; one run per configuration, so seed noise is unknown"
    else:
        text += "; nothing cheaper comes within seed noise of it"
    return text
