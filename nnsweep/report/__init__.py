"""The report: figures, statistics and the HTML page of a sweep, from its CSVs alone.

The ``plot_*`` functions draw one figure on an Axes (a notebook passes its own, or gets a
new one) from ``load_results`` / ``load_history`` tables. ``write_report`` writes every
figure of a sweep and ``results/<sweep>/report/index.html``; ``write_comparison`` overlays
several sweeps. What the report uses lives beside it: ``stats`` (aggregation over seeds,
Welch's tests, the verdict), ``effects`` and ``_importance`` (which hyperparameters matter
beyond seed noise), ``_plots/`` (one module per kind of figure: gather, draw, caption) and
``_html`` (the page and the terminal summary). Nothing here imports Keras or TensorFlow.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nnsweep.errors import ResultsError
from nnsweep.provenance import mixed_versions
from nnsweep.report._html import Sections as _Sections
from nnsweep.report._plots._common import is_numeric, label, new_axes
from nnsweep.report._plots.comparison import caption_comparison, draw_comparison, gather_comparison
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
from nnsweep.report.stats import (
    Verdict,
    check_metric,
    config_labels,
    default_metric,
    describe,
    failures,
    fmt_num,
    held_out_column,
    metric_direction,
    param_columns,
    search_rows,
    selection_metric,
    summarize,
    verdict,
)
from nnsweep.results import (
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

FORMATS = ("png", "svg")
COMPARE_DIR = "_compare"
CURVE_CONFIGS = 4  # learning curves of the best few configurations keep the figure legible
AUTO_SMOOTHING = 0.6
AUTO_SMOOTHING_EPOCHS = 30


# -- public plotting functions ----------------------------------------------------------


def _metric_and_direction(
    df: Any, metric: str | None, direction: str | None, info: Mapping[str, Any] | None = None
) -> tuple[str, str]:
    metric = metric or default_metric(df, info)
    check_metric(df, metric)
    return metric, direction or metric_direction(metric, info)


def _check_column(df: Any, x: str, what: str = "x") -> None:
    if x not in df.columns:
        choices = param_columns(df)
        raise ResultsError(
            f"{what} must be a column of trials.csv, got {x!r} "
            f"(hyperparameter columns: {', '.join(choices) or 'none'})"
        )


def plot_metric(
    df: Any,
    x: str = "hidden_units",
    metric: str | None = None,
    *,
    hue: str | None = None,
    direction: str | None = None,
    ax: Any = None,
) -> Any:
    """The metric against a numeric hyperparameter: mean line, 95 % band, every run."""
    _check_column(df, x)
    if hue is not None:
        _check_column(df, hue, "hue")
    metric, direction = _metric_and_direction(df, metric, direction)
    data = gather_metric(df, x, metric, hue=hue, direction=direction)
    return draw_metric(data, new_axes(ax))


def plot_categorical(
    df: Any, x: str, metric: str | None = None, *, direction: str | None = None, ax: Any = None
) -> Any:
    """The metric per category (optimizer, activation): runs, mean and 95 % interval."""
    _check_column(df, x)
    metric, direction = _metric_and_direction(df, metric, direction)
    return draw_categorical(gather_categorical(df, x, metric, direction=direction), new_axes(ax))


def plot_learning_curves(
    history: Any,
    *,
    metric: str | None = None,
    configs: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    smoothing: float | None = None,
    panels: Sequence[str] = ("loss", "metric"),
    ax: Any = None,
) -> list[Any]:
    """Training vs validation loss and metric per epoch, mean and band over runs.

    ``configs``: config_ids to draw (default all); ``smoothing``: EMA factor in [0, 1);
    ``ax``: one Axes per panel (a single Axes when one panel). Returns the Axes.
    """
    if history is None or len(history) == 0:
        raise ResultsError("history is empty: no epochs to draw")
    bad = [p for p in panels if p not in ("loss", "metric")]
    if bad or not panels:
        raise ResultsError(f"panels must be 'loss' and/or 'metric', got {list(panels)!r}")
    data = gather_curves(
        history, metric=metric, configs=configs, labels=labels, smoothing=smoothing
    )
    if ax is None:
        import matplotlib.pyplot as plt
        import seaborn as sns

        with sns.axes_style("whitegrid"):
            _, axes = plt.subplots(
                1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False, layout="constrained"
            )
        axes = list(axes[0])
    else:
        axes = list(ax) if hasattr(ax, "__len__") else [ax]
    if len(axes) != len(panels):
        raise ResultsError(f"need {len(panels)} Axes for panels {list(panels)}, got {len(axes)}")
    return draw_curves(data, axes, ["loss" if p == "loss" else data.metric for p in panels])


def plot_heatmap(
    df: Any,
    x: str,
    y: str,
    metric: str | None = None,
    *,
    direction: str | None = None,
    ax: Any = None,
) -> Any:
    """Mean metric over a pair of hyperparameters; the best cell outlined."""
    _check_column(df, x)
    _check_column(df, y, "y")
    metric, direction = _metric_and_direction(df, metric, direction)
    return draw_heatmap(gather_heatmap(df, x, y, metric, direction=direction), new_axes(ax))


def plot_parallel(
    df: Any,
    params: Sequence[str],
    metric: str | None = None,
    *,
    direction: str | None = None,
    ax: Any = None,
) -> Any:
    """One line per configuration through its values of ``params``, coloured by the metric."""
    for p in params:
        _check_column(df, p)
    metric, direction = _metric_and_direction(df, metric, direction)
    data = gather_parallel(df, params, metric, direction=direction)
    return draw_parallel(data, new_axes(ax, (8.4, 4.4)))


def plot_pareto(
    df: Any,
    x: str = "n_params",
    metric: str | None = None,
    *,
    by: Sequence[str] | None = None,
    direction: str | None = None,
    ax: Any = None,
) -> Any:
    """Metric vs cost (``n_params`` or ``fit_seconds``) with the Pareto front drawn."""
    metric, direction = _metric_and_direction(df, metric, direction)
    data = gather_pareto(df, x, metric, by=by, direction=direction)
    return draw_pareto(data, new_axes(ax))


def plot_comparison(
    frames: Mapping[str, Any],
    x: str = "n_params",
    metric: str | None = None,
    *,
    direction: str | None = None,
    ax: Any = None,
) -> Any:
    """Several sweeps' metric against one shared axis, one colour per sweep."""
    if not frames:
        raise ResultsError("plot_comparison needs at least one table")
    first = next(iter(frames.values()))
    metric, direction = _metric_and_direction(first, metric, direction)
    _check_frames(frames, x, metric)
    data = gather_comparison(frames, x, metric, direction=direction)
    return draw_comparison(data, new_axes(ax))


def _check_frames(frames: Mapping[str, Any], x: str, metric: str) -> None:
    for name, df in frames.items():
        if metric not in df.columns:
            raise ResultsError(
                f"metric {metric!r} is not a column of {name}'s trials.csv; pick one that "
                "every sweep has"
            )
        if x not in df.columns:
            raise ResultsError(f"x {x!r} is not a column of {name}'s trials.csv (try n_params)")


# -- the report -------------------------------------------------------------------------


@dataclass
class ReportResult:
    """What ``write_report`` wrote, and the text the CLI prints."""

    html_path: Path
    figures: list[Path]
    captions: list[str]
    summary_text: str
    metric: str
    verdict: Verdict
    table: Any = field(repr=False)  # stats.describe(): ranked per-configuration summary
    # Libraries whose versions differ between the runs that trained the table (runs.jsonl).
    mixed_versions: list[str] = field(default_factory=list)
    test_metric: str | None = None  # shown beside the metric the sweep is judged by
    confirmation: Any = None  # confirm.Confirmation: the top configurations on fresh seeds
    effects: Any = None  # effects.Effects: which hyperparameters matter beyond seed noise
    seeds: Any = None  # seeds.SeedsAccount, for a sweep with adaptive seeds


def _check_fmt(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ResultsError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def _swept(df: Any, info: Mapping[str, Any]) -> list[str]:
    names = info.get("swept")
    if names is None:
        names = [c for c in param_columns(df) if df[c].nunique(dropna=False) > 1]
    return [c for c in names if c in df.columns]


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
    from nnsweep.report._html import render_html, summary_text

    _check_fmt(fmt)
    folder = _folder(name_or_path, results)
    every = load_results(folder)
    df = search_rows(every)  # what the sweep chose from; confirm rows are judged apart
    info = load_sweep_json(folder) if (folder / SWEEP_JSON).exists() else {}
    info.setdefault("name", folder.name)
    history = load_history(folder) if (folder / HISTORY).exists() else None
    if history is not None and "trial_id" in df:
        history = history[history["trial_id"].isin(df["trial_id"])]
    metric, direction = _metric_and_direction(df, metric or selection_metric(df, info), None, info)
    swept = _swept(df, info)
    table = describe(df, metric, by=swept, direction=direction)
    test_metric = held_out_column(metric, df, info)
    if test_metric is not None:
        table = _with_test(table, df, test_metric, swept)
    the_verdict = _judged(verdict(table, metric, swept, direction, label(metric)), table, metric)
    out = folder / "report"
    out.mkdir(parents=True, exist_ok=True)

    figures: list[tuple[str, str, Path]] = []  # (title, caption, path)

    def save(fig: Any, stem: str, title: str, caption: str) -> None:
        path = out / f"{stem}.{fmt}"
        fig.savefig(path, dpi=110)
        figures.append((title, caption, path))

    # Nothing to draw of a metric no run reached; the failures below still say why.
    varied = [p for p in swept if df[p].nunique() > 1] if (table["n"] > 0).any() else []
    for p in varied:
        others = [o for o in varied if o != p]
        fig, (ax,) = _figure()
        if is_numeric(df[p]) and df[p].notna().all():
            d = gather_metric(df, p, metric, direction=direction, others=others)
            draw_metric(d, ax)
            save(fig, f"{metric}_vs_{p}", f"{label(metric)} vs {p}", caption_metric(d))
        else:
            d = gather_categorical(df, p, metric, direction=direction, others=others)
            draw_categorical(d, ax)
            save(fig, f"{metric}_by_{p}", f"{label(metric)} by {p}", caption_categorical(d))

    the_effects = _effects(df, metric, varied, direction, info)
    if the_effects is not None:
        d = gather_effects(the_effects)
        size, ncols = effects_figure_size(d)
        fig, axes = _figure(size, ncols)
        draw_effects(d, axes)
        save(fig, f"{metric}_effects", "effects beyond seed noise", caption_effects(d))

    if history is not None and len(history):
        ranked = table[table["n"] > 0]
        if "config_id" in ranked:
            keep = ranked if len(ranked) <= CURVE_CONFIGS + 1 else ranked.head(CURVE_CONFIGS)
            ids = list(keep["config_id"])
            names = dict(zip(ids, config_labels(keep, swept), strict=True))
            if smoothing is None:
                long = history["epoch"].max() >= AUTO_SMOOTHING_EPOCHS
                smoothing = AUTO_SMOOTHING if long else None
            c = gather_curves(
                history,
                metric=info.get("metric"),
                configs=ids,
                labels=names,
                smoothing=smoothing or None,
            )
            c.total = len(ranked)
            if not c.curves.empty:
                fig, axes = _figure((12, 4.4), 2)
                draw_curves(c, axes, ["loss", c.metric])
                save(fig, "learning_curves", "learning curves", caption_curves(c))

    for x, y in itertools.combinations(varied, 2):
        fig, (ax,) = _figure((6.4, 4.8))
        d = gather_heatmap(df, x, y, metric, direction=direction)
        draw_heatmap(d, ax)
        save(fig, f"{metric}_by_{y}_and_{x}", f"{label(metric)}: {y} × {x}", caption_heatmap(d))

    if len(varied) >= 3:  # pairs of heatmaps no longer show a configuration whole
        fig, (ax,) = _figure((9.6, 4.6))
        d = gather_parallel(df, varied, metric, direction=direction)
        draw_parallel(d, ax)
        save(fig, f"{metric}_parallel", "parallel coordinates", caption_parallel(d))

    for cost in ("n_params", "fit_seconds"):
        ok = df[df["status"] == "ok"] if "status" in df else df
        if cost in df and ok[cost].nunique() > 1 and (table["n"] > 0).sum() > 1:
            fig, (ax,) = _figure()
            d = gather_pareto(df, cost, metric, by=swept, direction=direction)
            draw_pareto(d, ax)
            save(fig, f"{metric}_vs_{cost}", f"{label(metric)} vs {label(cost)}", caption_pareto(d))

    failed = failures(every, swept)
    extra = _Sections(
        effects=the_effects,
        mixed=mixed_versions(every, folder),
        confirmation=confirmation(every, metric, swept, direction),
        seeds=_seeds_account(df, info, metric, direction),
    )
    html = render_html(
        info, every, table, the_verdict, swept, metric, direction, figures, failed, extra
    )
    html_path = out / "index.html"
    html_path.write_text(html, encoding="utf-8")
    text = summary_text(info, every, table, the_verdict, swept, metric, direction, failed, extra)
    return ReportResult(
        mixed_versions=extra.mixed,
        html_path=html_path,
        figures=[p for _, _, p in figures],
        captions=[c for _, c, _ in figures],
        summary_text=text,
        metric=metric,
        verdict=the_verdict,
        table=table,
        test_metric=test_metric,
        confirmation=extra.confirmation,
        effects=extra.effects,
        seeds=extra.seeds,
    )


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
    from nnsweep.seeds import account

    objective = info.get("objective")
    if objective in df.columns:  # the rounds decided on the objective, whatever is reported
        metric, direction = objective, metric_direction(objective, info)
    return account(df, summarize(df, metric, by=[]), rule, direction)


def write_comparison(
    names: Sequence[str | Path],
    *,
    results: str | Path = DEFAULT_RESULTS,
    metric: str | None = None,
    x: str | None = None,
    fmt: str = "png",
) -> Path:
    """Overlay several sweeps in one figure: ``<results>/_compare/<a>_vs_<b>_<metric>.<fmt>``.

    ``x`` defaults to a numeric hyperparameter every sweep varies (e.g. hidden_units), else
    ``n_params``. ``metric`` defaults to the first sweep's default and must exist in all.
    Returns the figure's path (a ``.txt`` caption is written beside it).
    """
    _check_fmt(fmt)
    if len(names) < 2:
        raise ResultsError(f"a comparison needs two or more sweeps, got {len(names)}")
    frames, infos = {}, []
    for n in names:
        folder = _folder(n, results)
        df = search_rows(load_results(folder))
        info = load_sweep_json(folder) if (folder / SWEEP_JSON).exists() else {}
        frames[info.get("name") or folder.name] = df
        infos.append(info)
    first = next(iter(frames.values()))
    metric, direction = _metric_and_direction(first, metric, None, infos[0])
    if x is None:
        shared = [
            p
            for p in _swept(first, infos[0])
            if all(
                p in _swept(d, i) and is_numeric(d[p])
                for d, i in zip(frames.values(), infos, strict=True)
            )
        ]
        x = shared[0] if shared else "n_params"
    _check_frames(frames, x, metric)
    data = gather_comparison(frames, x, metric, direction=direction)
    fig, (ax,) = _figure((7.2, 4.6))
    draw_comparison(data, ax)
    out = Path(results) / COMPARE_DIR
    out.mkdir(parents=True, exist_ok=True)
    stem = "_vs_".join(frames) + f"_{metric}_vs_{x}"
    path = out / f"{stem}.{fmt}"
    fig.savefig(path, dpi=110)
    path.with_suffix(".txt").write_text(caption_comparison(data) + "\n", encoding="utf-8")
    return path


__all__ = [
    "ReportResult",
    "plot_categorical",
    "plot_comparison",
    "plot_heatmap",
    "plot_learning_curves",
    "plot_metric",
    "plot_pareto",
    "write_comparison",
    "write_report",
]
