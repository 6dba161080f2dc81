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

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnsweep.errors import ResultsError
from nnsweep.report._drawing import _figure
from nnsweep.report._page import (
    ReportResult,
    _check_fmt,
    _folder,
    _metric_and_direction,
    write_report,
)
from nnsweep.report._plots._common import is_numeric, new_axes
from nnsweep.report._plots.comparison import caption_comparison, draw_comparison, gather_comparison
from nnsweep.report._plots.curves import draw_curves, gather_curves
from nnsweep.report._plots.heatmap import draw_heatmap, gather_heatmap
from nnsweep.report._plots.metric import (
    draw_categorical,
    draw_metric,
    gather_categorical,
    gather_metric,
)
from nnsweep.report._plots.parallel import draw_parallel, gather_parallel
from nnsweep.report._plots.pareto import draw_pareto, gather_pareto
from nnsweep.report.stats import param_columns, ranked_rows, swept_columns
from nnsweep.store.results import DEFAULT_RESULTS, SWEEP_JSON, load_results, load_sweep_json

FORMATS = ("png", "svg")
if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

COMPARE_DIR = "_compare"


# -- public plotting functions ----------------------------------------------------------


def _check_column(df: Any, x: str, what: str = "x") -> None:
    if x not in df.columns:
        choices = param_columns(df)
        raise ResultsError(
            f"{what} must be a column of trials.csv, got {x!r} "
            f"(hyperparameter columns: {', '.join(choices) or 'none'})"
        )


def plot_metric(
    df: pd.DataFrame,
    x: str = "hidden_units",
    metric: str | None = None,
    *,
    hue: str | None = None,
    direction: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """The metric against a numeric hyperparameter: mean line, 95 % band, every run."""
    _check_column(df, x)
    if hue is not None:
        _check_column(df, hue, "hue")
    metric, direction = _metric_and_direction(df, metric, direction)
    data = gather_metric(df, x, metric, hue=hue, direction=direction)
    return draw_metric(data, new_axes(ax))


def plot_categorical(
    df: pd.DataFrame,
    x: str,
    metric: str | None = None,
    *,
    direction: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """The metric per category (optimizer, activation): runs, mean and 95 % interval."""
    _check_column(df, x)
    metric, direction = _metric_and_direction(df, metric, direction)
    return draw_categorical(gather_categorical(df, x, metric, direction=direction), new_axes(ax))


def plot_learning_curves(
    history: pd.DataFrame,
    *,
    metric: str | None = None,
    configs: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    smoothing: float | None = None,
    panels: Sequence[str] = ("loss", "metric"),
    ax: Axes | Sequence[Axes] | None = None,
) -> list[Axes]:
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
            _, grid = plt.subplots(
                1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False, layout="constrained"
            )
        axes = list(grid[0])
    else:
        from matplotlib.axes import Axes

        axes = [ax] if isinstance(ax, Axes) else list(ax)
    if len(axes) != len(panels):
        raise ResultsError(f"need {len(panels)} Axes for panels {list(panels)}, got {len(axes)}")
    return draw_curves(data, axes, ["loss" if p == "loss" else data.metric for p in panels])


def plot_heatmap(
    df: pd.DataFrame,
    x: str,
    y: str,
    metric: str | None = None,
    *,
    direction: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Mean metric over a pair of hyperparameters; the best cell outlined."""
    _check_column(df, x)
    _check_column(df, y, "y")
    metric, direction = _metric_and_direction(df, metric, direction)
    return draw_heatmap(gather_heatmap(df, x, y, metric, direction=direction), new_axes(ax))


def plot_parallel(
    df: pd.DataFrame,
    params: Sequence[str],
    metric: str | None = None,
    *,
    direction: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """One line per configuration through its values of ``params``, coloured by the metric."""
    for p in params:
        _check_column(df, p)
    metric, direction = _metric_and_direction(df, metric, direction)
    data = gather_parallel(df, params, metric, direction=direction)
    return draw_parallel(data, new_axes(ax, (8.4, 4.4)))


def plot_pareto(
    df: pd.DataFrame,
    x: str = "n_params",
    metric: str | None = None,
    *,
    by: Sequence[str] | None = None,
    direction: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Metric vs cost (``n_params`` or ``fit_seconds``) with the Pareto front drawn."""
    metric, direction = _metric_and_direction(df, metric, direction)
    data = gather_pareto(df, x, metric, by=by, direction=direction)
    return draw_pareto(data, new_axes(ax))


def plot_comparison(
    frames: Mapping[str, pd.DataFrame],
    x: str = "n_params",
    metric: str | None = None,
    *,
    direction: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Several sweeps' metric against one shared axis, one colour per sweep: at each value
    the configuration chosen by ``metric`` where given, else by the validation objective."""
    if not frames:
        raise ResultsError("plot_comparison needs at least one table")
    first = next(iter(frames.values()))
    choose_by = metric
    metric, direction = _metric_and_direction(first, metric, direction)
    _check_frames(frames, x, metric)
    data = gather_comparison(frames, x, metric, direction=direction, choose_by=choose_by)
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
    ``n_params``. ``metric`` (drawn) defaults to the first sweep's test metric and must exist
    in all; at each value of ``x`` each sweep's configuration is the one its report would
    rank first (by ``metric`` where given, else its validation objective).
    Returns the figure's path (a ``.txt`` caption is written beside it).
    """
    _check_fmt(fmt)
    if len(names) < 2:
        raise ResultsError(f"a comparison needs two or more sweeps, got {len(names)}")
    frames, infos = {}, []
    for n in names:
        folder = _folder(n, results)
        df = ranked_rows(load_results(folder))  # what the reports rank
        info = load_sweep_json(folder) if (folder / SWEEP_JSON).exists() else {}
        frames[info.get("name") or folder.name] = df
        infos.append(info)
    first = next(iter(frames.values()))
    choose_by = metric
    metric, direction = _metric_and_direction(first, metric, None, infos[0])
    if x is None:
        shared = [
            p
            for p in swept_columns(first, infos[0])
            if all(
                p in swept_columns(d, i) and is_numeric(d[p])
                for d, i in zip(frames.values(), infos, strict=True)
            )
        ]
        x = shared[0] if shared else "n_params"
    _check_frames(frames, x, metric)
    by_sweep = dict(zip(frames, infos, strict=True))
    data = gather_comparison(
        frames, x, metric, direction=direction, infos=by_sweep, choose_by=choose_by
    )
    fig, (ax,) = _figure((7.2, 4.6))
    draw_comparison(data, ax)
    out = Path(results) / COMPARE_DIR
    out.mkdir(parents=True, exist_ok=True)
    stem = "_vs_".join(frames) + f"_{metric}_vs_{x}"
    path = out / f"{stem}.{fmt}"
    fig.savefig(path, dpi=110)
    path.with_suffix(".txt").write_text(caption_comparison(data) + "\n", encoding="utf-8")
    return path


def check_report(
    name_or_path: str | Path, *, results: str | Path = DEFAULT_RESULTS, metric: str | None = None
) -> None:
    """Raise what ``write_report`` would raise for this sweep, writing nothing: a command
    that reports on several sweeps checks them all before it writes the first report."""
    from nnsweep.report._page import _folder, _judge

    _judge(_folder(name_or_path, results), metric)


__all__ = [
    "ReportResult",
    "check_report",
    "plot_categorical",
    "plot_comparison",
    "plot_heatmap",
    "plot_learning_curves",
    "plot_metric",
    "plot_pareto",
    "write_comparison",
    "write_report",
]
