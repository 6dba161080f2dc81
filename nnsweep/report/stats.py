"""Aggregation over seeds and folds: per-configuration mean, spread and intervals.

Also which rows and which column choose, and the one ranking every command chooses by
(``rank_configurations``), and the comparisons a report needs: Welch's t-test of every
configuration against the best, a plain-words verdict on best vs runner-up, and a flag for
configurations whose runs disagree wildly. Welch's test and Holm's correction live in
``_welch``, the verdict in ``_verdict``, the shared formatting in ``_format``; all are
importable from here.
Everything is vectorised pandas/numpy, so a 10,000-trial table aggregates in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnsweep.definition.pruning import UNSTABLE_FACTOR
from nnsweep.errors import ResultsError
from nnsweep.report._format import config_labels as config_labels  # re-exported, as below
from nnsweep.report._format import fmt_num as fmt_num
from nnsweep.report._format import fmt_p as fmt_p
from nnsweep.report._format import fmt_value as fmt_value
from nnsweep.report._format import p_text as p_text
from nnsweep.report._verdict import Verdict as Verdict
from nnsweep.report._verdict import verdict as verdict
from nnsweep.report._welch import ALPHA, welch_arrays
from nnsweep.report._welch import Welch as Welch
from nnsweep.report._welch import holm as holm
from nnsweep.report._welch import welch as welch
from nnsweep.store.results import BASE_COLUMNS, RUN_COLUMNS, TAIL_COLUMNS

if TYPE_CHECKING:
    import pandas as pd


# Every column a run writes that is not a hyperparameter or a metric: from the results
# store's own lists, so a new column is never taken for a hyperparameter.
NON_PARAM_COLUMNS = frozenset({*BASE_COLUMNS, *RUN_COLUMNS, *TAIL_COLUMNS, "best_epoch"})
# trials.csv's ``phase``: rows a sweep chose from, and rows ``nnsweep confirm`` trained on
# fresh seeds to check the choice. Tables written before the column existed are all search.
SEARCH, CONFIRM = "search", "confirm"
_METRIC_PREFIXES = ("loss", "accuracy", "mae", "val_", "test_", "best_")
_LOWER_IS_BETTER = ("loss", "mae", "mse", "error", "rmse", "seconds", "n_params")
# Unstable: a spread UNSTABLE_FACTOR times the sweep's median spread (pruning's, which
# leaves such a configuration out of its pooled noise) ...
# ... or, for a metric bounded in [0, 1] such as accuracy, runs this far apart.
UNSTABLE_RANGE = 0.10
_BOUNDED = ("accuracy", "auc", "precision", "recall", "f1")


def param_columns(df: Any) -> list[str]:
    """The hyperparameter columns of a trials table, in table order."""
    return [
        c for c in df.columns if c not in NON_PARAM_COLUMNS and not c.startswith(_METRIC_PREFIXES)
    ]


# -- metric choice ----------------------------------------------------------------------


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of a column are better (losses, errors, cost)."""
    return any(k in metric for k in _LOWER_IS_BETTER)


def metric_direction(metric: str, info: Mapping[str, Any] | None = None) -> str:
    """``"max"`` or ``"min"``: sweep.json's direction for its objective, else by name."""
    info = info or {}
    objective = info.get("objective")
    if objective and metric in (objective, f"best_{objective}") and info.get("direction"):
        return str(info["direction"])
    return "min" if lower_is_better(metric) else "max"


def search_rows(df: Any) -> Any:
    """The rows a sweep chose from (``phase`` search; every row of an older table)."""
    if "phase" not in df:
        return df
    # Empty (a row read as text from a table that has the column but not the value): search.
    return df[df["phase"].fillna(SEARCH).replace("", SEARCH) == SEARCH]


def pruned_ids(df: Any) -> set[str]:
    """Configurations that pruning stopped: any of their search rows has status pruned."""
    if "status" not in df or "config_id" not in df:
        return set()
    rows = search_rows(df)
    return {str(c) for c in rows.loc[rows["status"] == "pruned", "config_id"]}


def ranked_rows(df: Any) -> Any:
    """The rows a sweep ranks: its search rows, without the configurations pruning stopped
    (their numbers are of an earlier epoch, so ranking them beside complete ones would
    compare unlike things; they are listed with their evidence instead)."""
    rows = search_rows(df)
    stopped = pruned_ids(rows)
    if not stopped:
        return rows
    return rows[~rows["config_id"].astype(str).isin(stopped)]


def confirm_rows(df: Any) -> Any:
    """The rows ``nnsweep confirm`` trained on fresh seeds (none in an older table)."""
    if "phase" not in df:
        return df.iloc[0:0]
    return df[df["phase"] == CONFIRM]


def selection_metric(df: Any, info: Mapping[str, Any] | None = None) -> str:
    """The column a sweep is judged by: its validation objective where the table has it,
    else a validation column (a table without sweep.json: the tasks' default objectives
    first); the test split only where the table has no validation column at all.

    Choosing by the test split would make the test score an optimistic estimate, so every
    command ranks by validation and shows the test metric beside it.
    """
    objective = (info or {}).get("objective")
    named = [objective, f"best_{objective}"] if objective else []
    found = [c for c in df.columns if c.startswith(("val_", "best_val_"))]
    for column in [*named, "val_accuracy", "val_loss", *found]:
        if column in df.columns:
            return str(column)
    return default_metric(df, info)


def swept_columns(df: Any, info: Mapping[str, Any] | None = None) -> list[str]:
    """The columns that name a configuration: sweep.json's swept hyperparameters, else
    the hyperparameter columns that take two values or more."""
    names = (info or {}).get("swept")
    if names is None:
        names = [c for c in param_columns(df) if df[c].nunique(dropna=False) > 1]
    return [c for c in names if c in df.columns]


@dataclass(frozen=True)
class Ranking:
    """A sweep's configurations as chosen from: ``describe``'s table, the best first."""

    metric: str
    direction: str
    by: list[str]
    table: Any

    @property
    def best(self) -> Any:
        """The chosen configuration's row (None when no configuration has a value)."""
        rows = self.table[self.table["n"] > 0]
        return rows.iloc[0] if len(rows) else None


def rank_configurations(
    df: Any,
    info: Mapping[str, Any] | None = None,
    *,
    metric: str | None = None,
    by: Sequence[str] | None = None,
    direction: str | None = None,
) -> Ranking:
    """The one ranking that chooses, for the report and its overlay, ``show``, ``best``,
    ``diff`` and ``confirm``: the search rows of configurations trained to the end
    (``ranked_rows``), by ``metric`` (default ``selection_metric``: validation), ties in
    table order. ``by``: the columns that name a configuration (default: the swept ones)."""
    rows = ranked_rows(df)
    metric = metric or selection_metric(rows, info)
    check_metric(rows, metric, info)
    direction = direction or metric_direction(metric, info)
    by = list(by) if by is not None else swept_columns(rows, info)
    return Ranking(metric, direction, by, describe(rows, metric, by=by, direction=direction))


def held_out_column(metric: str, df: Any, info: Mapping[str, Any] | None = None) -> str | None:
    """The test-split column shown beside a validation ``metric`` (None when there is none)."""
    if metric.startswith("test_"):
        return None
    task_metric = (info or {}).get("metric")
    base = metric.removeprefix("best_").removeprefix("val_")
    for column in (f"test_{base}", f"test_{task_metric}" if task_metric else None):
        if column and column in df.columns:
            return column
    return None


def default_metric(df: Any, info: Mapping[str, Any] | None = None) -> str:
    """``test_<metric>`` when the table has it, else the sweep's objective (for ``diff``)."""
    info = info or {}
    task_metric = info.get("metric") or ("mae" if "test_mae" in df.columns else "accuracy")
    if f"test_{task_metric}" in df.columns:
        return f"test_{task_metric}"
    objective = info.get("objective")
    if objective and objective in df.columns:
        return str(objective)
    if objective and f"best_{objective}" in df.columns:
        return f"best_{objective}"
    candidates = metric_columns(df)
    if not candidates:
        raise ResultsError("trials.csv has no metric columns (val_*, test_*, best_*)")
    return candidates[0]


def metric_columns(df: Any) -> list[str]:
    """The columns a report can rank by: validation, test and best-epoch metrics."""
    return [c for c in df.columns if c.startswith(("val_", "test_", "best_")) and c != "best_epoch"]


# Measurements of a trial besides its metrics: a report may rank or plot by them.
MEASURES = ("epochs_run", "best_epoch", "n_params", "fit_seconds")


def check_metric(df: Any, metric: str, info: Mapping[str, Any] | None = None) -> None:
    """Raise ResultsError naming the valid choices when ``metric`` is not a metric column:
    a run's bookkeeping (``seed``, ``fold``, ``error``, ...) is not one, nor is one of the
    hyperparameters ``info`` (sweep.json) names."""
    choices = metric_columns(df) + [c for c in ("loss", "accuracy", "mae", *MEASURES) if c in df]
    if metric not in df.columns:
        raise ResultsError(
            f"metric must be a column of trials.csv, got {metric!r} "
            f"(metric columns: {', '.join(choices) or 'none'})"
        )
    hyperparameters = set((info or {}).get("space") or {}) | set((info or {}).get("swept") or [])
    bookkeeping = NON_PARAM_COLUMNS - set(MEASURES)
    if metric in bookkeeping or metric in hyperparameters:
        what = "a hyperparameter" if metric in hyperparameters else "not a measurement"
        raise ResultsError(
            f"metric must be a metric column of trials.csv, got {metric!r} ({what}); try one "
            f"of: {', '.join(choices)}"
        )
    import pandas as pd

    column = df[metric]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        kind = "true/false values" if pd.api.types.is_bool_dtype(column) else "text"
        raise ResultsError(
            f"metric must be a numeric column of trials.csv, got {metric!r} (a column of "
            f"{kind}); try one of: {', '.join(metric_columns(df)) or 'none'}"
        )


# -- aggregation ------------------------------------------------------------------------


def _t_critical(dof: Any) -> Any:
    """Two-sided 95 % Student t quantile; NaN where there are no degrees of freedom."""
    from scipy import stats as st

    d = np.asarray(dof, dtype=float)
    out = st.t.ppf(1 - ALPHA / 2, np.where(d > 0, d, np.nan))
    return float(out) if np.ndim(out) == 0 else out


def _aggregate(df: Any, metric: str, by: Sequence[str] | None) -> tuple[Any, list[str]]:
    """Per configuration n, mean, std, min, max of ``metric`` over ok trials."""
    import pandas as pd

    by = list(by) if by is not None else param_columns(df)
    ok = df[df["status"] == "ok"] if "status" in df else df
    keys = ["config_id", *by] if "config_id" in df else by
    values = pd.to_numeric(ok[metric], errors="coerce")
    if not keys:
        frame = ok.assign(_all="all")
        keys_used = ["_all"]
    else:
        frame, keys_used = ok, keys
    grouped = values.groupby([frame[k] for k in keys_used], dropna=False, sort=False)
    table = grouped.agg(["count", "mean", "std", "min", "max"]).reset_index()
    table = table.rename(columns={"count": "n"})
    if not keys:
        table = table.drop(columns="_all")
    table["n"] = table["n"].astype(int)
    return table, keys


def metric_bounds(metric: str) -> tuple[float, float]:
    """The range a metric's values can take: [0, 1] for accuracy-like ones, [0, inf) for
    losses, errors, times and counts, else unbounded."""
    name = metric.removeprefix("best_").removeprefix("val_").removeprefix("test_")
    if any(k in name for k in _BOUNDED):
        return 0.0, 1.0
    if any(k in name for k in _LOWER_IS_BETTER):
        return 0.0, math.inf
    return -math.inf, math.inf


def clipped_interval(
    mean: Any, half: Any, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``mean -+ half`` kept inside the metric's range; and where it had to be clipped (a
    t-interval over few seeds of an unstable configuration can pass 1 or 0)."""
    lo, hi = metric_bounds(metric)
    low = np.asarray(mean, dtype=float) - half
    high = np.asarray(mean, dtype=float) + half
    with np.errstate(invalid="ignore"):
        clipped = (low < lo) | (high > hi)
    return np.clip(low, lo, hi), np.clip(high, lo, hi), clipped


def summarize(df: pd.DataFrame, metric: str, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Per configuration: n, mean, std and 95 % interval of ``metric`` over ok trials; the
    interval stays inside the metric's range (``ci_clipped`` says where it was cut)."""
    table, keys = _aggregate(df, metric, by)
    n = table["n"].to_numpy()
    std = table["std"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = _t_critical(n - 1) * std / np.sqrt(n)
    half = np.where(n > 1, half, np.nan)
    table["ci_low"], table["ci_high"], table["ci_clipped"] = clipped_interval(
        table["mean"], half, metric
    )
    return table[[*keys, "n", "mean", "std", "ci_low", "ci_high", "ci_clipped"]]


# -- comparisons ------------------------------------------------------------------------


def describe(
    df: Any,
    metric: str,
    by: Sequence[str] | None = None,
    direction: str = "max",
    *,
    flag: bool = True,
) -> Any:
    """``summarize`` plus min, max, rank (1 = best), Welch p vs the best, and flags.

    ``within_noise``: the configuration is not worse than the best beyond seed noise
    (Welch p >= 0.05; NA when either has fewer than two runs, or when it is unstable).
    ``unstable``: see ``flag_unstable`` (all False with ``flag=False``, for groups that pool
    several configurations, whose spread is not seed noise). Rows are sorted best first;
    configurations without a value last.
    """
    table = summarize(df, metric, by)
    extra, _ = _aggregate(df, metric, by)
    table = table.assign(min=extra["min"].to_numpy(), max=extra["max"].to_numpy())
    ascending = direction == "min"
    table = table.sort_values("mean", ascending=ascending, na_position="last", kind="stable")
    table = table.reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    if len(table) and not math.isnan(table["mean"].iloc[0]):
        best = table.iloc[0]
        _, _, p = welch_arrays(
            table["mean"], table["std"], table["n"], best["mean"], best["std"], best["n"]
        )
    else:
        p = np.full(len(table), np.nan)
    table["p_vs_best"] = p
    import pandas as pd

    table["unstable"] = flag_unstable(table, metric) if flag else np.zeros(len(table), bool)
    # An unstable configuration's spread makes any gap look like noise: no claim either way.
    unknown = np.isnan(p) | (table["unstable"].to_numpy() & (table["rank"].to_numpy() != 1))
    table["within_noise"] = pd.array(
        [None if u else bool(v >= ALPHA) for v, u in zip(p, unknown, strict=True)],
        dtype="boolean",
    )
    return table


def flag_unstable(table: Any, metric: str) -> Any:
    """Boolean array: configurations whose runs disagree wildly.

    A configuration with two or more runs is unstable when its std is more than
    ``UNSTABLE_FACTOR`` times the median std of the sweep's configurations (and its runs
    span more than 1 % of its mean, so near-deterministic sweeps do not flag rounding), or,
    for a metric bounded in [0, 1] such as accuracy, when its runs span at least
    ``UNSTABLE_RANGE`` (one seed at 0.77, another at 0.96).
    """
    n = table["n"].to_numpy()
    std = table["std"].to_numpy(dtype=float)
    span = (table["max"] - table["min"]).to_numpy(dtype=float)
    mean = table["mean"].to_numpy(dtype=float)
    many = n >= 2
    typical = float(np.median(std[many])) if many.any() else math.nan
    with np.errstate(invalid="ignore"):
        relative = (std > UNSTABLE_FACTOR * typical) & (span > 0.01 * np.abs(mean))
        bounded = any(k in metric for k in _BOUNDED)
        absolute = span >= UNSTABLE_RANGE - 1e-12 if bounded else np.zeros(len(n), bool)
    return many & (relative | absolute)


def failures(df: Any, by: Sequence[str] | None = None) -> Any:
    """The trials that failed or diverged, with why: listed, not dropped (pruned trials are
    not failures: see ``report.pruned``)."""
    by = list(by) if by is not None else param_columns(df)
    cols = [c for c in ("trial_id", *by, "seed", "fold", "status", "error") if c in df.columns]
    if "status" not in df:
        return df.iloc[0:0][cols]
    return df.loc[~df["status"].isin(["ok", "pruned"]), cols].reset_index(drop=True)
