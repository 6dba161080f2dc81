"""Why the report leaves a section out: one line each, so that a missing section is never
mistaken for one that was forgotten (``_page`` gathers them, ``_html`` shows them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

EFFECTS = "Effects"
CONFIRMATION = "Confirmation on fresh seeds"
PRUNED = "Pruned configurations"
SEEDS = "Adaptive seeds"
CURVES = "Learning curves"
HEATMAPS = "Heatmaps"
PARALLEL = "Parallel coordinates"


def effects_reason(df: Any, metric: str, varied: Sequence[str], info: Mapping[str, Any]) -> str:
    """Why ``effects`` found nothing to say, in the order its own rules refuse."""
    import pandas as pd

    from nnsweep.report._importance import MIN_CONFIGS

    if not varied:
        return "no swept hyperparameter takes two values among the successful runs"
    ok = df[df["status"] == "ok"] if "status" in df else df
    ok = ok[pd.to_numeric(ok[metric], errors="coerce").notna()]
    key = (
        ok["config_id"].astype(str)
        if "config_id" in ok
        else ok[list(varied)].astype(str).agg("|".join, axis=1)
    )
    runs = key.value_counts()
    if runs.empty or runs.max() < 2:
        return (
            "seed noise needs two successful runs (seeds or folds) of a configuration, and "
            "each has at most one"
        )
    if pd.to_numeric(ok[metric]).nunique() < 2:
        return f"every successful run scored the same {metric}"
    n = len(runs)
    if n < MIN_CONFIGS:
        kind = (
            "a search"
            if (info.get("strategy") or "grid") != "grid"
            else ("importance (used where the configurations do not form a grid)")
        )
        return f"{kind} needs at least {MIN_CONFIGS} configurations (this one has {n})"
    return "the successful runs leave nothing to apportion"


def pair_reasons(varied: Sequence[str]) -> list[tuple[str, str]]:
    """Heatmaps need two varied hyperparameters, parallel coordinates three."""
    n = len(varied)
    which = f" ({', '.join(varied)})" if varied else ""
    out = []
    if n < 2:
        out.append((HEATMAPS, f"they need two swept hyperparameters that vary (this sweep "
                              f"varies {n}{which})"))  # fmt: skip
    if n < 3:
        out.append((PARALLEL, f"it needs three swept hyperparameters that vary (this sweep "
                              f"varies {n}{which})"))  # fmt: skip
    return out


def section_reasons(
    info: Mapping[str, Any], *, confirmation: Any, seeds: Any, pruned: Any
) -> list[tuple[str, str]]:
    """The sections that depend on how the sweep was run rather than on its numbers."""
    out = []
    if pruned is None:
        prunes = bool(info.get("prune")) or info.get("strategy") == "hyperband"
        out.append(
            (PRUNED, "pruning stopped no configuration")
            if prunes
            else (PRUNED, "the sweep does not prune (Sweep(prune=...) or hyperband would)")
        )
    if seeds is None:
        out.append((SEEDS, "every configuration trains on the same fixed seeds"))
    if confirmation is None:
        out.append(
            (
                CONFIRMATION,
                "no rows of nnsweep confirm (it retrains the top configurations on fresh seeds)",
            )  # fmt: skip
        )
    return out
