"""The report's figures: every figure a sweep calls for, drawn in the page's order, each
saved with its caption, and the reason for each one left out.

``_page`` judges the sweep (``_Judged``) and hands it here; each kind of figure gathers,
draws and captions in its own ``_plots`` module.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnsweep.report import _left_out
from nnsweep.report._plots._common import is_numeric, label
from nnsweep.report._plots.curves import (
    caption_curves,
    draw_curves,
    draw_rates,
    gather_curves,
    has_rates,
)
from nnsweep.report._plots.effects import (
    caption_effects,
    draw_effects,
    effects_figure_size,
    gather_effects,
)
from nnsweep.report._plots.heatmap import caption_heatmap, draw_heatmap, gather_heatmap
from nnsweep.report._plots.metric import (
    caption_categorical,
    caption_metric,
    draw_categorical,
    draw_metric,
    gather_categorical,
    gather_metric,
)
from nnsweep.report._plots.parallel import caption_parallel, draw_parallel, gather_parallel
from nnsweep.report._plots.pareto import caption_pareto, draw_pareto, gather_pareto
from nnsweep.report.pruned import PrunedAccount
from nnsweep.report.stats import Verdict, config_labels

CURVE_CONFIGS = 4  # learning curves of the best few configurations keep the figure legible
AUTO_SMOOTHING = 0.6
AUTO_SMOOTHING_EPOCHS = 30


@dataclass
class _Judged:
    """A sweep's tables, ranked: what every figure and section of the report starts from."""

    folder: Path
    every: Any  # all rows, confirmation included
    df: Any  # the search rows: what the sweep chose from
    info: dict[str, Any]
    history: Any
    metric: str
    direction: str
    swept: list[str]
    table: Any  # stats.describe, with the test metric beside
    test_metric: str | None
    verdict: Verdict
    pruned: PrunedAccount | None = None  # configurations pruning stopped (not in ``df``)

    @property
    def varied(self) -> list[str]:
        """Swept hyperparameters that take two values or more (none when no run is ok)."""
        if not (self.table["n"] > 0).any():
            return []  # nothing to draw of a metric no run reached; failures still say why
        return [p for p in self.swept if self.df[p].nunique() > 1]


def _figure(size: tuple[float, float] = (6.4, 4.2), ncols: int = 1) -> tuple[Any, Any]:
    """A pyplot-free Figure (no GUI backend involved), seaborn's whitegrid look."""
    import seaborn as sns
    from matplotlib.figure import Figure

    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        fig = Figure(figsize=size, layout="constrained")
        axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


class _Figures:
    """The figures written so far: (title, caption, path) each."""

    def __init__(self, out: Path, fmt: str) -> None:
        self.out, self.fmt = out, fmt
        self.made: list[tuple[str, str, Path]] = []

    def save(self, fig: Any, stem: str, title: str, caption: str) -> None:
        path = self.out / f"{stem}.{self.fmt}"
        fig.savefig(path, dpi=110)
        self.made.append((title, caption, path))


def _draw(
    j: _Judged, figures: _Figures, smoothing: float | None
) -> tuple[Any, list[tuple[str, str]]]:
    """Every figure the sweep calls for, in the page's order; returns the effects found and
    (section, why) for each figure or section left out."""
    _metric_figures(j, figures.save)
    left_out: list[tuple[str, str]] = []
    effects = _effects(j.df, j.metric, j.varied, j.direction, j.info)
    if effects is None:
        why = _left_out.effects_reason(j.df, j.metric, j.varied, j.info)
        left_out.append((_left_out.EFFECTS, why))
    if effects is not None and j.pruned is not None:
        effects.text.append(
            f"The {len(j.pruned.table)} pruned configurations are left out: their final "
            "values are unknown. An effect whose worst levels were pruned is then "
            "understated here, never invented."
        )
    if effects is not None:
        d = gather_effects(effects)
        size, ncols = effects_figure_size(d)
        fig, axes = _figure(size, ncols)
        draw_effects(d, axes)
        figures.save(fig, f"{j.metric}_effects", "effects beyond seed noise", caption_effects(d))
    no_curves = _curves_figure(j, figures.save, smoothing)
    if no_curves:
        left_out.append((_left_out.CURVES, no_curves))
    _pair_figures(j, figures.save)
    left_out += _left_out.pair_reasons(j.varied)
    left_out += _cost_figures(j, figures.save)
    return effects, left_out


_Save = Callable[[Any, str, str, str], None]


def _metric_figures(j: _Judged, save: _Save) -> None:
    """The metric against each varied hyperparameter: a line for numbers, else categories."""
    m, df = j.metric, j.df
    for p in j.varied:
        others = [o for o in j.varied if o != p]
        fig, (ax,) = _figure()
        if is_numeric(df[p]) and df[p].notna().all():
            line = gather_metric(df, p, m, direction=j.direction, others=others)
            draw_metric(line, ax)
            save(fig, f"{m}_vs_{p}", f"{label(m)} vs {p}", caption_metric(line))
        else:
            cats = gather_categorical(df, p, m, direction=j.direction, others=others)
            draw_categorical(cats, ax)
            save(fig, f"{m}_by_{p}", f"{label(m)} by {p}", caption_categorical(cats))


def _curves_figure(j: _Judged, save: _Save, smoothing: float | None) -> str | None:
    """Learning curves of the best few configurations (all, when one more would fit); why
    there are none, when there are none."""
    if j.history is None:
        return "the results folder has no history.csv"
    if not len(j.history):
        return "history.csv has no epochs of the search's trials"
    ranked = j.table[j.table["n"] > 0]
    if "config_id" not in ranked:
        return "trials.csv has no config_id column to match epochs to configurations"
    keep = ranked if len(ranked) <= CURVE_CONFIGS + 1 else ranked.head(CURVE_CONFIGS)
    ids = list(keep["config_id"])
    names = dict(zip(ids, config_labels(keep, j.swept), strict=True))
    if smoothing is None:
        long = j.history["epoch"].max() >= AUTO_SMOOTHING_EPOCHS
        smoothing = AUTO_SMOOTHING if long else None
    stopped = {}
    if j.pruned is not None:
        stopped = dict(zip(j.pruned.table["config_id"], j.pruned.table["epoch"], strict=True))
        names.update(zip(j.pruned.table["config_id"], j.pruned.table["label"], strict=True))
    c = gather_curves(
        j.history,
        metric=_curve_metric(j),
        configs=ids,
        labels=names,
        smoothing=smoothing or None,
        stopped=stopped,
    )
    c.total = len(ranked)
    if not c.curves.empty:
        rates = has_rates(c)  # a third panel: each epoch's learning rate
        fig, axes = _figure((17, 4.4) if rates else (12, 4.4), 3 if rates else 2)
        draw_curves(c, axes[:2], ["loss", c.metric])
        if rates:
            draw_rates(c, axes[2])
        save(fig, "learning_curves", "learning curves", caption_curves(c))
        return None
    return "no configuration with a successful run has epochs in history.csv"


def _pair_figures(j: _Judged, save: _Save) -> None:
    """A heatmap per pair of varied hyperparameters; parallel coordinates for three or more."""
    m = j.metric
    for x, y in itertools.combinations(j.varied, 2):
        fig, (ax,) = _figure((6.4, 4.8))
        d = gather_heatmap(j.df, x, y, m, direction=j.direction)
        draw_heatmap(d, ax)
        save(fig, f"{m}_by_{y}_and_{x}", f"{label(m)}: {y} × {x}", caption_heatmap(d))
    if len(j.varied) >= 3:  # pairs of heatmaps no longer show a configuration whole
        fig, (ax,) = _figure((9.6, 4.6))
        lines = gather_parallel(j.df, j.varied, m, direction=j.direction)
        draw_parallel(lines, ax)
        save(fig, f"{m}_parallel", "parallel coordinates", caption_parallel(lines))


def _cost_figures(j: _Judged, save: _Save) -> list[tuple[str, str]]:
    """The metric against parameters and training time, with the Pareto front; (section,
    why) for each cost left out."""
    df, m = j.df, j.metric
    ok = df[df["status"] == "ok"] if "status" in df else df
    left_out = []
    for cost in ("n_params", "fit_seconds"):
        section = f"{label(m)} vs {label(cost)} (Pareto front)"
        if cost not in df:
            left_out.append((section, f"trials.csv has no {cost} column"))
        elif (j.table["n"] > 0).sum() < 2:
            left_out.append((section, "it needs two configurations with successful runs"))
        elif ok[cost].nunique() < 2:
            left_out.append((section, f"every successful run has the same {cost}"))
        else:
            fig, (ax,) = _figure()
            d = gather_pareto(df, cost, m, by=j.swept, direction=j.direction)
            draw_pareto(d, ax)
            save(fig, f"{m}_vs_{cost}", f"{label(m)} vs {label(cost)}", caption_pareto(d))
    return left_out


def _effects(
    df: Any, metric: str, varied: Sequence[str], direction: str, info: Mapping[str, Any]
) -> Any:
    """Which swept hyperparameters matter beyond seed noise (None without replicates)."""
    if not varied:
        return None
    from nnsweep.report.effects import effects

    return effects(df, metric, varied, direction, strategy=info.get("strategy") or "grid")


def _curve_metric(j: _Judged) -> str | None:
    """The learning curves' metric: the one the report ranks by where history.csv has it
    (``auc`` for ``val_auc``), else the task's (loss has its own panel)."""
    base = j.metric.removeprefix("best_").removeprefix("val_").removeprefix("test_")
    columns = j.history.columns if j.history is not None else ()
    if base != "loss" and base in columns and f"val_{base}" in columns:
        return base
    return j.info.get("metric")
