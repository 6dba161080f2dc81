"""Effects figure: which hyperparameters move the metric, drawn against the seed noise.

For a grid (ANOVA), one small panel per main effect: its marginal means with 95 % intervals
over a band of ± one seed-noise std, so the eye compares the effect with the noise. For a
search (permutation importance), one bar chart of importances with bootstrap intervals.
Effects within seed noise are grey.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnsweep.report._effect_base import Effect, Effects, fmt_share
from nnsweep.report._plots._common import better_word, label
from nnsweep.report.stats import fmt_num, metric_bounds, p_text

MAX_PANELS = 4  # main-effect panels drawn; the rest are named in the caption
_GREY = "0.6"
_BAND = "0.88"


@dataclass
class EffectsData:
    """What ``draw_effects`` shows: the effects drawn (largest first) and those left out."""

    kind: str  # "anova" or "importance"
    metric: str
    direction: str
    noise_std: float
    grand_mean: float
    shown: list[Effect]
    left_out: list[Effect] = field(default_factory=list)
    beyond: list[str] = field(default_factory=list)
    within: list[str] = field(default_factory=list)


def gather_effects(eff: Effects) -> EffectsData:
    """The main effects by share, largest first; for ANOVA at most ``MAX_PANELS`` drawn."""
    ranked = sorted(eff.rows, key=lambda e: -e.share)
    limit = MAX_PANELS if eff.kind == "anova" else len(ranked)
    return EffectsData(
        eff.kind,
        eff.metric,
        eff.direction,
        eff.noise_std,
        eff.grand_mean,
        ranked[:limit],
        ranked[limit:],
        eff.beyond,
        eff.within,
    )


def effects_figure_size(data: EffectsData) -> tuple[tuple[float, float], int]:
    """(figure size in inches, number of panels side by side) for a Figure to draw on."""
    if data.kind == "anova":
        n = max(1, len(data.shown))
        return (max(3.4 * n, 5.0), 3.6), n
    return (6.4, 1.6 + 0.45 * max(1, len(data.shown))), 1


def draw_effects(data: EffectsData, axes: Any) -> list[Any]:
    """ANOVA: a panel per main effect (one Axes each); importance: bars on the first Axes."""
    axes = list(np.ravel(axes))
    if data.kind == "importance":
        return [_draw_importance(data, axes[0])]
    limits = _ylim(data)
    for i, (ax, e) in enumerate(zip(axes, data.shown, strict=False)):
        _draw_panel(data, e, ax, limits)
        if i == 0:
            ax.set_ylabel(f"{label(data.metric)} ({better_word(data.direction)})")
    return axes[: len(data.shown)]


def _draw_panel(data: EffectsData, e: Effect, ax: Any, limits: tuple[float, float]) -> None:
    """Marginal means with 95 % intervals over the ± one seed-noise std band."""
    t = e.levels
    x = np.arange(len(t))
    ax.axhspan(*_band(data), color=_BAND, lw=0, zorder=0)
    ax.axhline(data.grand_mean, color="0.5", lw=0.8, ls="--", zorder=1)
    err = np.vstack([t["mean"] - t["ci_low"], t["ci_high"] - t["mean"]])
    color = "C0" if e.beyond_noise else _GREY
    ax.errorbar(x, t["mean"], yerr=np.nan_to_num(err), fmt="o", color=color, ms=6, capsize=4)
    long = len(t) > 5 or max(len(str(v)) for v in t["level"]) > 8
    ax.set_xticks(x, list(t["level"]), rotation=30 if long else 0)
    ax.set_xlim(-0.5, len(t) - 0.5)
    ax.set_ylim(*limits)
    ax.set_xlabel(e.name)
    ax.set_title(
        f"{e.name} — {fmt_share(e.share)}, {p_text(e.p_holm)}",
        fontsize="medium",
        color="black" if e.beyond_noise else "0.45",
    )


def _band(data: EffectsData) -> tuple[float, float]:
    """The grey band, ± one seed-noise std around the grand mean, inside the metric's range."""
    lo, hi = metric_bounds(data.metric)
    mean, noise = data.grand_mean, data.noise_std
    return max(mean - noise, lo), min(mean + noise, hi)


def _ylim(data: EffectsData) -> tuple[float, float]:
    """One y range for every panel (same metric), from the intervals and the noise band."""
    values = list(_band(data))
    for e in data.shown:
        for col in ("mean", "ci_low", "ci_high"):
            values.extend(e.levels[col].to_numpy(float))
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    lo, hi = float(v.min()), float(v.max())
    pad = 0.08 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 0.01)
    return lo - pad, hi + pad


def _draw_importance(data: EffectsData, ax: Any) -> Any:
    """Importance bars with 95 % intervals, largest on top; grey where within noise."""
    shown = data.shown
    y = np.arange(len(shown))[::-1]
    imp = np.array([e.importance for e in shown], dtype=float)
    err = np.vstack([imp - [e.low for e in shown], [e.high for e in shown] - imp])
    colors = ["C0" if e.beyond_noise else _GREY for e in shown]
    ax.barh(y, imp, color=colors, height=0.6)
    ax.errorbar(imp, y, xerr=np.clip(err, 0, None), fmt="none", ecolor="black", capsize=4)
    ax.axvline(0, color="0.3", lw=0.8)
    for yi, e in zip(y, shown, strict=True):
        ax.text(max(e.high, 0), yi, f"  {fmt_share(e.share)}", va="center", fontsize="small")
    ax.set_yticks(y, [e.name for e in shown])
    ax.set_xlabel("importance: drop in R² when shuffled")
    ax.set_title(f"What moves {label(data.metric)}")
    ax.margins(x=0.15)
    return ax


def caption_effects(data: EffectsData) -> str:
    """What the figure shows, then which hyperparameters are beyond seed noise and which not."""
    name = label(data.metric)
    if data.kind == "anova":
        text = (
            f"Marginal means of {name} at each value, with 95 % intervals from the seed "
            "noise (the analysis's residual); "
        ) + (
            f"the grey band is ± one seed-noise std ({fmt_num(data.noise_std)}) around the "
            "mean of all runs; titles give the share of the variance and the p-value "
            "(Holm-corrected)."
            if data.noise_std > 0
            else "repeated runs agree exactly, so there is no seed-noise band."
        )
    else:
        text = (
            f"Permutation importance of each hyperparameter for {name} (the drop in R² when "
            "it is shuffled, labelled with its share), with 95 % bootstrap intervals over "
            "configurations and seeds; grey bars are within seed noise."
        )
    text += f" Beyond seed noise: {', '.join(data.beyond) or 'none'}."
    if data.within:
        text += f" Within noise: {', '.join(data.within)}."
    if data.left_out:
        names = ", ".join(e.name for e in data.left_out)
        many = "s" if len(data.left_out) > 1 else ""
        text += (
            f" Not drawn: {len(data.left_out)} hyperparameter{many} with smaller shares ({names})."
        )
    return text.removesuffix(".")  # as every caption: the page adds the full stop


def effects_figure(data: EffectsData) -> Any:
    """A pyplot-free Figure with the effects drawn (no GUI backend involved)."""
    import seaborn as sns
    from matplotlib.figure import Figure

    size, ncols = effects_figure_size(data)
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        fig = Figure(figsize=size, layout="constrained")
        draw_effects(data, fig.subplots(1, ncols, squeeze=False)[0])
    return fig
