"""A sweep's report page: rank its configurations, draw its figures, write the page.

``write_report`` in steps: ``_judge`` ranks the search rows by the metric (the validation
objective by default) with the test metric beside it; ``_draw`` makes every figure the
sweep calls for; ``_sections`` gathers what the sweep has besides (effects, confirmation,
adaptive seeds, mixed versions); ``_html`` writes the page and the terminal summary.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnsweep.errors import ResultsError
from nnsweep.report import _left_out
from nnsweep.report._html import Sections, render_html, summary_text
from nnsweep.report._plots._common import is_numeric, label
from nnsweep.report._plots.curves import caption_curves, draw_curves, gather_curves
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
from nnsweep.report.confirmation import confirmation
from nnsweep.report.pruned import PrunedAccount, pruned_account
from nnsweep.report.stats import (
    Verdict,
    check_metric,
    config_labels,
    default_metric,
    failures,
    fmt_num,
    held_out_column,
    metric_direction,
    rank_configurations,
    ranked_rows,
    search_rows,
    summarize,
    verdict,
)
from nnsweep.store.kept import kept_sentence
from nnsweep.store.provenance import mixed_versions
from nnsweep.store.results import (
    DEFAULT_RESULTS,
    HISTORY,
    SWEEP_JSON,
    TRIALS,
    list_result_dirs,
    load_history,
    load_results,
    load_sweep_json,
    results_dir_for,
)

if TYPE_CHECKING:
    import pandas as pd

    from nnsweep.definition.seeds import SeedsAccount
    from nnsweep.report._effect_base import Effects
    from nnsweep.report.confirmation import Confirmation

FORMATS = ("png", "svg")
CURVE_CONFIGS = 4  # learning curves of the best few configurations keep the figure legible
AUTO_SMOOTHING = 0.6
AUTO_SMOOTHING_EPOCHS = 30


def _metric_and_direction(
    df: Any, metric: str | None, direction: str | None, info: Mapping[str, Any] | None = None
) -> tuple[str, str]:
    metric = metric or default_metric(df, info)
    check_metric(df, metric, info)
    return metric, direction or metric_direction(metric, info)


@dataclass
class ReportResult:
    """What ``write_report`` wrote, and the text the CLI prints."""

    html_path: Path
    figures: list[Path]
    captions: list[str]
    summary_text: str
    metric: str
    verdict: Verdict
    table: pd.DataFrame = field(repr=False)  # stats.describe(): the ranked configurations
    # Libraries whose versions differ between the runs that trained the table (runs.jsonl).
    mixed_versions: list[str] = field(default_factory=list)
    test_metric: str | None = None  # shown beside the metric the sweep is judged by
    confirmation: Confirmation | None = None  # the top configurations on fresh seeds
    effects: Effects | None = None  # which hyperparameters matter beyond seed noise
    seeds: SeedsAccount | None = None  # for a sweep with adaptive seeds
    # "Section: left out, why" for each section the report does not have.
    left_out: list[str] = field(default_factory=list)


def _check_fmt(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ResultsError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def _folder(name_or_path: str | Path, results: str | Path) -> Path:
    """The sweep's results folder; an unknown name lists the sweeps there are."""
    folder = results_dir_for(name_or_path, results)
    if not (folder / TRIALS).exists():
        known = ", ".join(p.name for p in list_result_dirs(results)) or "none"
        raise ResultsError(
            f"no results for {str(name_or_path)!r} at {folder / TRIALS} "
            f"(sweeps under {results}: {known})"
        )
    return folder


def _figure(size: tuple[float, float] = (6.4, 4.2), ncols: int = 1) -> tuple[Any, Any]:
    """A pyplot-free Figure (no GUI backend involved), seaborn's whitegrid look."""
    import seaborn as sns
    from matplotlib.figure import Figure

    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        fig = Figure(figsize=size, layout="constrained")
        axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def write_report(
    name_or_path: str | Path,
    *,
    results: str | Path = DEFAULT_RESULTS,
    metric: str | None = None,
    fmt: str = "png",
    smoothing: float | None = None,
) -> ReportResult:
    """Write ``<sweep folder>/report/index.html`` and one figure file per figure.

    ``metric``: the column to rank and judge by (default: the sweep's validation objective;
    the test metric is shown beside it). Rows of ``nnsweep confirm`` get their own section.
    ``smoothing``: EMA factor for learning curves; None smooths (0.6) only runs of 30+
    epochs, 0 turns it off. Raises ResultsError for an unknown sweep or column.
    """
    _check_fmt(fmt)
    j = _judge(_folder(name_or_path, results), metric)
    out = j.folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    figures = _Figures(out, fmt)
    effects, left_out = _draw(j, figures, smoothing)
    extra = Sections(
        effects=effects,
        mixed=mixed_versions(j.every, j.folder),
        confirmation=confirmation(j.every, j.metric, j.swept, j.direction),
        seeds=_seeds_account(j.df, j.info, j.metric, j.direction),
        pruned=j.pruned,
        kept=kept_sentence(j.folder, j.table),
    )
    extra.left_out = left_out + _left_out.section_reasons(
        j.info, confirmation=extra.confirmation, seeds=extra.seeds, pruned=extra.pruned
    )
    failed = failures(j.every, j.swept)
    args = (j.info, j.every, j.table, j.verdict, j.swept, j.metric, j.direction)
    html_path = out / "index.html"
    html_path.write_text(render_html(*args, figures.made, failed, extra), encoding="utf-8")
    return ReportResult(
        html_path=html_path,
        figures=[p for _, _, p in figures.made],
        captions=[c for _, c, _ in figures.made],
        summary_text=summary_text(*args, failed, extra),
        metric=j.metric,
        verdict=j.verdict,
        table=j.table,
        mixed_versions=extra.mixed,
        test_metric=j.test_metric,
        confirmation=extra.confirmation,
        effects=extra.effects,
        seeds=extra.seeds,
        left_out=[f"{section}: left out, {why}" for section, why in extra.left_out],
    )


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


def _judge(folder: Path, metric: str | None) -> _Judged:
    """Load a sweep's tables and rank its configurations by ``metric``."""
    every = load_results(folder)
    df = ranked_rows(every)  # confirmation rows are judged apart; pruned ones are listed
    info = load_sweep_json(folder) if (folder / SWEEP_JSON).exists() else {}
    info.setdefault("name", folder.name)
    history = load_history(folder) if (folder / HISTORY).exists() else None
    if history is not None and "trial_id" in df:
        # The search's epochs: the ranked configurations' and the pruned ones' (whose
        # curves end where they stopped).
        history = history[history["trial_id"].isin(search_rows(every)["trial_id"])]
    # The one ranking show, best, diff and the overlay choose by.
    ranking = rank_configurations(every, info, metric=metric)
    metric, direction, swept, table = ranking.metric, ranking.direction, ranking.by, ranking.table
    test_metric = held_out_column(metric, df, info)
    if test_metric is not None:
        table = _with_test(table, df, test_metric, swept)
    the_verdict = _judged(verdict(table, metric, swept, direction, label(metric)), table, metric)
    stopped = pruned_account(every, swept, info)
    if stopped is not None:
        the_verdict = replace(the_verdict, text=f"{the_verdict.text} {stopped.headline}")
    return _Judged(
        folder,
        every,
        df,
        info,
        history,
        metric,
        direction,
        swept,
        table,
        test_metric,
        the_verdict,
        stopped,
    )


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
        metric=j.info.get("metric"),
        configs=ids,
        labels=names,
        smoothing=smoothing or None,
        stopped=stopped,
    )
    c.total = len(ranked)
    if not c.curves.empty:
        fig, axes = _figure((12, 4.4), 2)
        draw_curves(c, axes, ["loss", c.metric])
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


def _with_test(table: Any, df: Any, test_metric: str, by: Sequence[str]) -> Any:
    """The ranked table with each configuration's test mean and std beside it."""
    test = (
        summarize(df, test_metric, by)[["config_id", "mean", "std"]] if "config_id" in df else None
    )
    if test is None:
        return table
    test = test.rename(columns={"mean": "test_mean", "std": "test_std"})
    out = table.merge(test, on="config_id", how="left")
    out.attrs["test_metric"] = test_metric
    return out


def _judged(the_verdict: Verdict, table: Any, metric: str) -> Verdict:
    """The verdict, saying in words what chose the best and what the test split says."""
    if not the_verdict.best or metric.startswith("test_"):
        return the_verdict
    test_metric = table.attrs.get("test_metric")
    text = f"Chosen on {label(metric)}; the test split is never used to choose. "
    text += the_verdict.text
    if test_metric and "test_mean" in table and table["n"].iloc[0] > 0:
        best = table.iloc[0]
        spread = f" ± {fmt_num(best['test_std'])}" if best["test_std"] == best["test_std"] else ""
        text += (
            f" On the test split the chosen configuration scores {label(test_metric)} "
            f"{fmt_num(best['test_mean'])}{spread}."
        )
    return replace(the_verdict, text=text)


def _effects(
    df: Any, metric: str, varied: Sequence[str], direction: str, info: Mapping[str, Any]
) -> Any:
    """Which swept hyperparameters matter beyond seed noise (None without replicates)."""
    if not varied:
        return None
    from nnsweep.report.effects import effects

    return effects(df, metric, varied, direction, strategy=info.get("strategy") or "grid")


def _seeds_account(df: Any, info: Mapping[str, Any], metric: str, direction: str) -> Any:
    """How many seeds adaptive seeds gave each configuration (None for fixed seeds)."""
    rule = info.get("adaptive_seeds")
    if not rule or "config_id" not in df:
        return None
    from nnsweep.definition.seeds import account

    objective = info.get("objective")
    if isinstance(objective, str) and objective in df.columns:
        # The rounds decided on the objective, whatever the report ranks by.
        metric, direction = objective, metric_direction(objective, info)
    return account(df, summarize(df, metric, by=[]), rule, direction)
