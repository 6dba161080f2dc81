"""Aggregation over seeds and folds: per-configuration mean, spread and intervals.

Also the comparisons a report needs: a ranking, Welch's t-test of every configuration
against the best, a plain-words verdict on best vs runner-up, and a flag for
configurations whose runs disagree wildly. Everything is vectorised pandas/numpy, so a
10,000-trial table aggregates in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnsweep.definition.pruning import UNSTABLE_FACTOR
from nnsweep.errors import ResultsError
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
ALPHA = 0.05
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
    """The column a sweep is judged by: its validation objective where the table has it.

    Choosing by the test split would make the test score an optimistic estimate, so the
    report, ``show`` and ``best`` rank by validation and show the test metric beside it.
    """
    info = info or {}
    objective = info.get("objective")
    for column in (objective, f"best_{objective}") if objective else ():
        if column in df.columns:
            return str(column)
    return default_metric(df, info)


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


def check_metric(df: Any, metric: str) -> None:
    """Raise ResultsError naming the valid choices when ``metric`` is not a column."""
    if metric not in df.columns:
        choices = metric_columns(df) + [c for c in ("loss", "accuracy", "mae") if c in df]
        raise ResultsError(
            f"metric must be a column of trials.csv, got {metric!r} "
            f"(metric columns: {', '.join(choices) or 'none'})"
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


def _t_sf2(t: Any, dof: Any) -> Any:
    """Two-sided p-value of Student's t."""
    from scipy import stats as st

    return 2 * st.t.sf(np.abs(t), dof)


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


def summarize(df: pd.DataFrame, metric: str, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Per configuration: n, mean, std and 95 % interval of ``metric`` over ok trials."""
    table, keys = _aggregate(df, metric, by)
    n = table["n"].to_numpy()
    std = table["std"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = _t_critical(n - 1) * std / np.sqrt(n)
    half = np.where(n > 1, half, np.nan)
    table["ci_low"] = table["mean"] - half
    table["ci_high"] = table["mean"] + half
    return table[[*keys, "n", "mean", "std", "ci_low", "ci_high"]]


# -- comparisons ------------------------------------------------------------------------


@dataclass(frozen=True)
class Welch:
    """Welch's unequal-variance t-test: statistic, degrees of freedom, two-sided p."""

    t: float
    dof: float
    p: float


def holm(p: Sequence[float]) -> list[float]:
    """Holm's step-down correction (statsmodels) over the known p-values; NaN stays NaN
    and counts for nothing."""
    from statsmodels.stats.multitest import multipletests

    values = np.asarray(p, dtype=float)
    out = np.full(len(values), math.nan)
    known = ~np.isnan(values)
    if known.any():
        out[known] = multipletests(values[known], alpha=ALPHA, method="holm")[1]
    return [float(x) for x in out]


def welch_arrays(m1: Any, s1: Any, n1: Any, m2: Any, s2: Any, n2: Any) -> Any:
    """Welch's p-values from summary statistics, elementwise; NaN where n < 2."""
    m1, s1, n1, m2, s2, n2 = (np.asarray(a, dtype=float) for a in (m1, s1, n1, m2, s2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        v1, v2 = s1**2 / n1, s2**2 / n2
        se2 = v1 + v2
        t = (m1 - m2) / np.sqrt(se2)
        dof = se2**2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
        p = _t_sf2(t, dof)
    # Two sets of identical runs: different means are certainly different, equal ones not.
    zero = se2 == 0
    p = np.where(zero, np.where(m1 == m2, 1.0, 0.0), p)
    p = np.where((n1 < 2) | (n2 < 2), np.nan, p)
    return t, dof, p


def welch(first: Sequence[float], second: Sequence[float]) -> Welch:
    """Welch's t-test of two samples (runs of two configurations)."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    t, dof, p = welch_arrays(
        a.mean() if len(a) else np.nan,
        a.std(ddof=1) if len(a) > 1 else np.nan,
        len(a),
        b.mean() if len(b) else np.nan,
        b.std(ddof=1) if len(b) > 1 else np.nan,
        len(b),
    )
    return Welch(float(t), float(dof), float(p))


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


@dataclass(frozen=True)
class Verdict:
    """Best configuration vs runner-up: does the best win beyond seed noise?"""

    best: str
    runner_up: str | None
    best_mean: float
    runner_up_mean: float
    difference: float
    p: float
    beyond_noise: bool | None
    text: str


def config_labels(table: Any, by: Sequence[str]) -> list[str]:
    """``"hidden_units=64, optimizer=adam"`` per row (``"all runs"`` with nothing swept)."""
    if not by:
        return ["all runs"] * len(table)
    parts = [f"{k}=" + table[k].map(fmt_value).astype(str) for k in by]
    out = parts[0]
    for p in parts[1:]:
        out = out + ", " + p
    return list(out)


def verdict(
    table: Any, metric: str, by: Sequence[str], direction: str, label: str | None = None
) -> Verdict:
    """Plain words on whether the best of a ``describe`` table beats the runner-up."""
    label = label or metric
    rows = table[table["n"] > 0]
    if rows.empty:
        return Verdict("", None, math.nan, math.nan, math.nan, math.nan, None, "no successful runs")
    names = config_labels(rows, by)
    best = rows.iloc[0]
    head = f"best {label}: {names[0]}, {fmt_num(best['mean'])}" + _pm(best)
    if len(rows) == 1:
        return Verdict(names[0], None, best["mean"], math.nan, math.nan, math.nan, None, head)
    second = rows.iloc[1]
    diff = float(abs(best["mean"] - second["mean"]))
    p = float(second["p_vs_best"])
    vs = f"runner-up {names[1]}, {fmt_num(second['mean'])}" + _pm(second)
    if math.isnan(p):
        beyond = None
        words = "cannot tell whether this beats seed noise (fewer than two runs each)"
    elif bool(second["unstable"]):
        beyond = None
        words = (
            f"the runner-up's runs disagree wildly, so Welch's test ({p_text(p)}) settles nothing"
        )
    elif p < ALPHA:
        beyond = True
        words = f"the best wins by {fmt_num(diff)}, beyond seed noise (Welch {p_text(p)})"
    else:
        beyond = False
        words = f"the gap of {fmt_num(diff)} is within seed noise (Welch {p_text(p)})"
    text = f"{head}; {vs}; {words}."
    return Verdict(names[0], names[1], best["mean"], second["mean"], diff, p, beyond, text)


def _pm(row: Any) -> str:
    std = row["std"]
    spread = f" ± {fmt_num(std)}" if not math.isnan(std) else ""
    return f"{spread} (n={int(row['n'])})"


def failures(df: Any, by: Sequence[str] | None = None) -> Any:
    """The trials that failed or diverged, with why: listed, not dropped (pruned trials are
    not failures: see ``report.pruned``)."""
    by = list(by) if by is not None else param_columns(df)
    cols = [c for c in ("trial_id", *by, "seed", "fold", "status", "error") if c in df.columns]
    if "status" not in df:
        return df.iloc[0:0][cols]
    return df.loc[~df["status"].isin(["ok", "pruned"]), cols].reset_index(drop=True)


# -- formatting shared by captions, tables and the terminal ------------------------------


def fmt_num(x: Any) -> str:
    """A metric value to the precision that matters for comparing runs."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x) or math.isinf(x):
        return "n/a"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    if round(a, 3) >= 0.01 or a == 0:
        return f"{x:.3f}"
    return f"{x:.2g}"


def fmt_p(p: float) -> str:
    """A p-value: two significant digits, or '<0.001'."""
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def p_text(p: float) -> str:
    """``p=0.012`` or ``p<0.001``, for captions and verdicts."""
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def fmt_value(v: Any) -> str:
    """A hyperparameter value as a user wrote it (0.001, 64, adam)."""
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "None"
        x = float(v)
        return f"{int(x)}" if x.is_integer() and abs(x) < 1e15 else f"{x:.3g}"
    return str(v)
