"""Learning curves from history.csv: train vs validation per epoch, mean and band over runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnsweep.report._plots._common import label
from nnsweep.report.stats import fmt_num, lower_is_better, metric_bounds

KEYS = ("trial_id", "config_id", "seed", "fold", "epoch")
RATE = "learning_rate"  # history.csv's column where the sweep names lr_schedule


def history_metric(history: Any) -> str:
    """The task metric of a history table (``accuracy``, ``mae``): the non-loss column."""
    names = [c for c in history.columns if c not in KEYS and not c.startswith("val_")]
    names = [c for c in names if c not in ("loss", RATE)]
    return names[0] if names else "loss"


@dataclass
class CurvesData:
    """Mean and ± 1 std band per configuration, epoch and series, and each best epoch."""

    metric: str
    smoothing: float | None
    curves: Any  # config_id, epoch, series, mean, low, high, n
    best: Any  # config_id, panel, epoch, value
    labels: dict[str, str]
    order: list[str]
    total: int = 0  # configurations in the sweep, when only the best few are drawn
    stopped: dict[str, int] = field(default_factory=dict)  # pruned config -> its last epoch


def gather_curves(
    history: Any,
    *,
    metric: str | None = None,
    configs: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    smoothing: float | None = None,
    stopped: Mapping[str, int] | None = None,
) -> CurvesData:
    """Per configuration and epoch: mean and std over seeds and folds, EMA-smoothed.

    ``smoothing`` is TensorBoard's factor in [0, 1): each point becomes
    ``s * previous + (1 - s) * value``, applied per run before averaging. ``stopped``:
    pruned configurations (and the epoch each stopped at), drawn apart from ``configs``.
    """
    import pandas as pd

    if smoothing is not None and not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    m = metric or history_metric(history)
    series = [c for c in ("loss", m, "val_loss", f"val_{m}", RATE) if c in history.columns]
    order = list(configs) if configs is not None else list(dict.fromkeys(history["config_id"]))
    stopped = {c: int(e) for c, e in (stopped or {}).items() if c not in order}
    h = history[history["config_id"].isin([*order, *stopped])]
    h = h.sort_values(["trial_id", "epoch"])
    h = h[["trial_id", "config_id", "epoch", *series]].copy()
    h[series] = h[series].apply(pd.to_numeric, errors="coerce")
    if smoothing:  # the metrics; a rate is drawn as it was
        metrics = [c for c in series if c != RATE]
        ema = h.groupby("trial_id", sort=False)[metrics].ewm(alpha=1 - smoothing, adjust=False)
        h[metrics] = ema.mean().reset_index(level=0, drop=True).loc[h.index]
    long = h.melt(["trial_id", "config_id", "epoch"], series, "series", "value").dropna()
    g = long.groupby(["config_id", "series", "epoch"], sort=False)["value"]
    curves = g.agg(["mean", "std", "count"]).reset_index().rename(columns={"count": "n"})
    # The band is the spread of the runs (± 1 std), not a CI of the mean: with 3 seeds a
    # t-interval is 2.5 times wider and buries the curves under one another.
    half = curves["std"].fillna(0.0)
    curves["low"], curves["high"] = curves["mean"] - half, curves["mean"] + half
    for series in curves["series"].unique():  # a band stays inside its metric's range
        lo, hi = metric_bounds(str(series))
        rows = curves["series"] == series
        curves.loc[rows, ["low", "high"]] = curves.loc[rows, ["low", "high"]].clip(lo, hi)
    best = _best_epochs(curves[curves["config_id"].isin(order)], m)
    names = {c: (labels or {}).get(c, c) for c in [*order, *stopped]}
    return CurvesData(m, smoothing, curves, best, names, order, stopped=stopped)


def _best_epochs(curves: Any, m: str) -> Any:
    """The epoch where each configuration's mean validation curve is best."""
    import pandas as pd

    out = []
    for s, panel in (("val_loss", "loss"), (f"val_{m}", m)):
        v = curves[curves["series"] == s]
        if v.empty:
            continue
        pick = "idxmin" if panel == "loss" or lower_is_better(panel) else "idxmax"
        idx = getattr(v.groupby("config_id", sort=False)["mean"], pick)()
        rows = v.loc[idx, ["config_id", "epoch", "mean"]].rename(columns={"mean": "value"})
        out.append(rows.assign(panel=panel))
    if not out:
        return pd.DataFrame(columns=["config_id", "epoch", "value", "panel"])
    return pd.concat(out, ignore_index=True)


def draw_curves(data: CurvesData, axes: Sequence[Any], panels: Sequence[str]) -> list[Any]:
    """Validation solid, training dashed, one colour per configuration, best epoch marked."""
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator

    palette = sns.color_palette("deep", max(1, len(data.order)))
    c = data.curves
    for ax, panel in zip(axes, panels, strict=True):
        key = "loss" if panel == "loss" else data.metric
        for i, cid in enumerate(data.order):
            color = palette[i]
            for s, style in ((key, "--"), (f"val_{key}", "-")):
                line = c[(c["config_id"] == cid) & (c["series"] == s)].sort_values("epoch")
                if line.empty:
                    continue
                is_val = s.startswith("val_")
                ax.plot(
                    line["epoch"],
                    line["mean"],
                    style,
                    color=color,
                    lw=2 if is_val else 1.3,
                    label=data.labels[cid] if is_val else None,
                )
                ax.fill_between(
                    line["epoch"],
                    line["low"],
                    line["high"],
                    color=color,
                    alpha=0.18 if is_val else 0.08,
                    lw=0,
                )
            _mark_best(ax, data, cid, key, color)
        _draw_stopped(ax, data, key)
        _zoom(ax, c[c["series"].isin([key, f"val_{key}"])])
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _few_epochs(ax, c)
        smooth = f", EMA {data.smoothing:g}" if data.smoothing else ""
        ax.set_ylabel(f"{label(key)}{smooth}")
        ax.set_title(f"{label(key)}: training (dashed) vs validation (solid)")
    from matplotlib.lines import Line2D

    handles, names = axes[0].get_legend_handles_labels()
    handles += [Line2D([], [], color="0.3", ls="--"), Line2D([], [], color="0.3", ls="-")]
    names += ["training", "validation"]
    if data.stopped:
        handles.append(Line2D([], [], color="0.6", lw=1, marker="X", markersize=7))
        names.append(f"pruned ({len(data.stopped)}), × where it stopped")
    n = int(c["n"].max()) if len(c) else 0
    axes[0].legend(
        handles,
        names,
        fontsize="x-small",
        frameon=False,
        title=f"mean ± std over {n} runs; ▼▲ best epoch",
        title_fontsize="x-small",
    )
    return list(axes)


def has_rates(data: CurvesData) -> bool:
    """Whether the curves carry each epoch's learning rate (a sweep naming lr_schedule)."""
    return bool((data.curves["series"] == RATE).any())


def draw_rates(data: CurvesData, ax: Any) -> None:
    """Each configuration's learning rate per epoch (the rate of its last update), in the
    learning curves' colours; the band spans seeds whose rates differ (plateau)."""
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator

    palette = sns.color_palette("deep", max(1, len(data.order)))
    c = data.curves[data.curves["series"] == RATE]
    for i, cid in enumerate(data.order):
        line = c[c["config_id"] == cid].sort_values("epoch")
        if line.empty:
            continue
        ax.plot(line["epoch"], line["mean"], "-o", color=palette[i], lw=1.8, ms=3)
        ax.fill_between(
            line["epoch"], line["low"], line["high"], color=palette[i], alpha=0.15, lw=0
        )
    # A linear axis: a cosine's last rates (near 0) would stretch a log one over decades.
    ax.set_ylim(bottom=0)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _few_epochs(ax, c)
    ax.set_ylabel("learning rate")
    ax.set_title("learning rate (each epoch's last update)")


def caption_rates(data: CurvesData) -> str:
    """Where the best configuration's learning rate starts and ends."""
    c = data.curves[(data.curves["series"] == RATE) & (data.curves["config_id"] == data.order[0])]
    if c.empty:
        return ""
    c = c.sort_values("epoch")
    first, last = c.iloc[0], c.iloc[-1]
    if first["mean"] == last["mean"]:
        return f"its learning rate stays at {fmt_num(first['mean'])}"
    return (
        f"its learning rate goes from {fmt_num(first['mean'])} (epoch {int(first['epoch'])}) "
        f"to {fmt_num(last['mean'])} (epoch {int(last['epoch'])})"
    )


# Beyond this many pruned configurations, their × marks go unlabelled (they would overlap).
_LABELLED_STOPS = 8


def _draw_stopped(ax: Any, data: CurvesData, key: str) -> None:
    """Pruned configurations: their validation curves thin and grey, × at the last epoch
    (labelled with the configuration where there are few)."""
    c = data.curves
    for cid, epoch in data.stopped.items():
        line = c[(c["config_id"] == cid) & (c["series"] == f"val_{key}")].sort_values("epoch")
        if line.empty:
            continue
        ax.plot(line["epoch"], line["mean"], "-", color="0.6", lw=1, zorder=1)
        end = line[line["epoch"] == epoch]
        if len(end):
            ax.scatter(end["epoch"], end["mean"], marker="X", s=55, color="0.45", zorder=3)
            if len(data.stopped) <= _LABELLED_STOPS:
                ax.annotate(
                    data.labels.get(cid, cid),
                    (float(end["epoch"].iloc[0]), float(end["mean"].iloc[0])),
                    xytext=(6, 0),
                    textcoords="offset points",
                    fontsize="xx-small",
                    color="0.35",
                    va="center",
                )


def _mark_best(ax: Any, data: CurvesData, cid: str, key: str, color: Any) -> None:
    """A configuration's best epoch: a dotted line and a triangle at its value."""
    b = data.best[(data.best["config_id"] == cid) & (data.best["panel"] == key)]
    if len(b):
        ax.axvline(b["epoch"].iloc[0], color=color, ls=":", lw=1)
        ax.scatter(
            b["epoch"],
            b["value"],
            marker="v" if key == "loss" or lower_is_better(key) else "^",
            s=80,
            color=color,
            edgecolor="black",
            zorder=4,
        )


def _few_epochs(ax: Any, c: Any) -> None:
    """An axis of whole epochs where there are one or two: matplotlib's own limits around a
    single epoch are 0.945-1.050, with fractional ticks (its integer locator needs two
    integers in view to keep to them)."""
    if not len(c):
        return
    lo, hi = int(c["epoch"].min()), int(c["epoch"].max())
    if hi - lo < 2:
        ax.set_xticks(range(lo, hi + 1))
        ax.set_xlim(lo - 0.5, hi + 0.5)


def _zoom(ax: Any, c: Any) -> None:
    # Early epochs of long runs dwarf the rest (MAE 20 at epoch 1, 2.5 later): leave them out.
    last = c["epoch"].max() if len(c) else 0
    if last < 20:
        return
    late = c[c["epoch"] > 0.1 * last]
    lo, hi = late["low"].min(), late["high"].max()
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
        pad = 0.05 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)


def _loss_trend(c: Any, e: int, v: float, last: int) -> str:
    """What the validation loss did, claiming no more than its epochs show: one epoch is
    a point, not a curve; two are a single step, too few to call a trend."""
    val = c[c["series"] == "val_loss"].set_index("epoch")["mean"]
    if len(val) == 1:
        return (
            f"the sweep trained one epoch, so there is no curve to judge: validation loss "
            f"{fmt_num(v)} after epoch {last}"
        )
    if len(val) == 2:
        (e0, a), (e1, z) = val.sort_index().items()
        return (
            f"validation loss goes from {fmt_num(a)} at epoch {e0} to {fmt_num(z)} at epoch "
            f"{e1}: two epochs are too few to tell a trend"
        )
    end = float(val.loc[last]) if last in val.index else v
    where = f"validation loss bottoms out at epoch {e} of {last} ({fmt_num(v)})"
    if e == last:
        where += ", still falling at the end: more epochs may help"
    elif end > v:
        where += f" and ends at {fmt_num(end)}: overfitting after epoch {e}"
    return where


def caption_curves(data: CurvesData) -> str:
    """The best configuration's validation minimum, and whether it over- or under-fits."""
    if not data.order or data.curves.empty:
        return "no learning curves in history.csv"
    cid = data.order[0]
    c = data.curves[data.curves["config_id"] == cid]
    name = data.labels[cid]
    parts = []
    last = int(c["epoch"].max())
    n = int(c["n"].max())
    b = data.best[(data.best["config_id"] == cid) & (data.best["panel"] == "loss")]
    if len(b):
        train = c[c["series"] == "loss"].set_index("epoch")["mean"]
        where = _loss_trend(c, int(b["epoch"].iloc[0]), float(b["value"].iloc[0]), last)
        if last in train.index:
            where += f"; training loss ends at {fmt_num(train.loc[last])}"
        parts.append(where)
    else:
        parts.append("no validation data")
    bm = data.best[(data.best["config_id"] == cid) & (data.best["panel"] == data.metric)]
    if len(bm) and c["epoch"].nunique() == 1:
        parts.append(f"validation {label(data.metric)} {fmt_num(bm['value'].iloc[0])}")
    elif len(bm):
        word = "is lowest" if lower_is_better(data.metric) else "peaks"
        word = "is best" if c["epoch"].nunique() == 2 else word  # of two: no peak to see
        parts.append(
            f"validation {label(data.metric)} {word} at epoch {int(bm['epoch'].iloc[0])} "
            f"({fmt_num(bm['value'].iloc[0])})"
        )
    if has_rates(data) and caption_rates(data):
        parts.append(caption_rates(data))
    smooth = f"; EMA-smoothed ({data.smoothing:g})" if data.smoothing else ""
    drawn = len(data.order)
    if data.total > drawn:
        more = f"; the {drawn} best of {data.total} configurations drawn"
    else:
        more = f"; {drawn} configurations drawn" if drawn > 1 else ""
    if data.stopped:
        at = sorted(set(data.stopped.values()))
        more += (
            f"; {len(data.stopped)} pruned configurations in grey, each × where it stopped "
            f"(epoch {', '.join(map(str, at))})"
        )
    return f"{name} (best, mean of {n} runs): " + "; ".join(parts) + smooth + more
