"""A sweep's report page: rank its configurations, draw its figures, write the page.

``write_report`` in steps: ``_judge`` ranks the search rows by the metric (the validation
objective by default) with the test metric beside it; ``_drawing._draw`` makes every figure the
sweep calls for; ``_sections`` gathers what the sweep has besides (effects, confirmation,
adaptive seeds, mixed versions); ``_html`` writes the page and the terminal summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnsweep.errors import ResultsError
from nnsweep.report import _left_out
from nnsweep.report._drawing import _draw, _Figures, _Judged
from nnsweep.report._html import Sections, render_html, summary_text
from nnsweep.report._plots._common import label
from nnsweep.report.confirmation import confirmation
from nnsweep.report.pruned import pruned_account
from nnsweep.report.stats import (
    Verdict,
    check_metric,
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
