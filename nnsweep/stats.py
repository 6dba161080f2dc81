"""Aggregation over seeds and folds: per-configuration mean, spread and intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

NON_PARAM_COLUMNS = frozenset(
    {
        "trial_id",
        "config_id",
        "seed",
        "fold",
        "status",
        "error",
        "epochs_run",
        "n_params",
        "fit_seconds",
        "started_at",
        "finished_at",
        "backend",
        "pack_size",
        "worker",
        "best_epoch",
    }
)
_METRIC_PREFIXES = ("loss", "accuracy", "mae", "val_", "test_", "best_")


def param_columns(df: Any) -> list[str]:
    """The hyperparameter columns of a trials table, in table order."""
    return [
        c for c in df.columns if c not in NON_PARAM_COLUMNS and not c.startswith(_METRIC_PREFIXES)
    ]


def _t_critical(dof: int) -> float:
    """Two-sided 95 % Student t quantile (scipy when present, else a close approximation)."""
    try:
        from scipy import stats as st

        return float(st.t.ppf(0.975, dof))
    except ImportError:  # pragma: no cover - scipy ships with scikit-learn
        z = 1.959964
        return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def summarize(df: Any, metric: str, by: Sequence[str] | None = None) -> Any:
    """Per configuration: n, mean, std and 95 % interval of ``metric`` over ok trials."""
    import pandas as pd

    by = list(by) if by is not None else param_columns(df)
    ok = df[df["status"] == "ok"] if "status" in df else df
    keys = ["config_id", *by] if "config_id" in df else by
    rows = []
    for key, group in ok.groupby(keys, dropna=False, sort=False):
        values = group[metric].dropna().astype(float)
        n = len(values)
        mean = float(values.mean()) if n else math.nan
        std = float(values.std(ddof=1)) if n > 1 else math.nan
        half = _t_critical(n - 1) * std / math.sqrt(n) if n > 1 else math.nan
        rows.append(
            {
                **dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)),
                "n": n,
                "mean": mean,
                "std": std,
                "ci_low": mean - half,
                "ci_high": mean + half,
            }
        )
    return pd.DataFrame(rows)
