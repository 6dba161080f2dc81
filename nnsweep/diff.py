"""``nnsweep diff``: two sweeps compared on the configurations they share, beyond seed noise.

For a change to the code, the model or the libraries, run the same sweep before and after
(two names, or two results folders) and ask which configurations got worse. Configurations
are matched by the values of the hyperparameters both sweeps swept; each pair gets the two
means, the difference (B - A) with its 95 % interval, and Welch's test with the seeds as
replicates, the p-values corrected for the number of configurations (Holm). The statistics
come from statsmodels; nothing here imports Keras or TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnsweep.errors import ResultsError
from nnsweep.report.stats import (
    ALPHA,
    Ranking,
    check_metric,
    config_labels,
    default_metric,
    fmt_num,
    holm,
    metric_direction,
    param_columns,
    rank_configurations,
    ranked_rows,
)
from nnsweep.store.provenance import mixed_versions
from nnsweep.store.results import DEFAULT_RESULTS, load_results, load_sweep_json, results_dir_for


@dataclass(frozen=True)
class ConfigDiff:
    """One shared configuration: A's and B's runs of it, and their difference (B - A)."""

    label: str
    n_a: int
    mean_a: float
    n_b: int
    mean_b: float
    diff: float
    low: float  # 95 % interval of the difference (NaN with fewer than two runs a side)
    high: float
    p: float  # Welch's two-sided p
    p_holm: float  # corrected for the number of configurations compared
    change: str  # "worse", "better" or "same" (within seed noise)


@dataclass(frozen=True)
class SweepDiff:
    """What ``diff_sweeps`` found; ``regressions`` are the configurations worse in B."""

    a: str
    b: str
    metric: str
    direction: str
    by: list[str]
    configs: list[ConfigDiff]
    only_a: int  # configurations in one sweep only
    only_b: int
    changed: list[str]  # "setting: A -> B" for versions and settings that differ
    mixed: dict[str, list[str]]  # per sweep: libraries whose versions differ within it
    # Each sweep's chosen configuration (as ``best`` names it) and the column that chose it.
    chosen: tuple[str, str] = ("", "")
    chosen_by: tuple[str, str] = ("", "")

    @property
    def regressions(self) -> list[ConfigDiff]:
        return [c for c in self.configs if c.change == "worse"]


def diff_sweeps(
    a: str | Path,
    b: str | Path,
    *,
    results: str | Path = DEFAULT_RESULTS,
    metric: str | None = None,
) -> SweepDiff:
    """Compare sweep ``b`` with sweep ``a`` (names or folders) on their shared configurations."""
    tables: list[Any] = []
    infos: list[Mapping[str, Any]] = []
    mixed: dict[str, list[str]] = {}
    for name in (a, b):
        df = load_results(name, results)
        folder = results_dir_for(name, results)
        infos.append(load_sweep_json(folder) if (folder / "sweep.json").exists() else {})
        ranked = ranked_rows(df)  # configurations trained to the end, search rows only
        tables.append(ranked[ranked["status"] == "ok"])
        if lines := mixed_versions(df, folder):
            mixed[str(name)] = lines
    metric = metric or default_metric(tables[0], infos[0])
    for df, info in zip(tables, infos, strict=True):
        check_metric(df, metric, info)
    direction = metric_direction(metric, infos[0])
    by = _shared_swept(tables, infos)
    rankings = [
        rank_configurations(df, info, by=by) for df, info in zip(tables, infos, strict=True)
    ]
    groups = [_runs(df, by, metric) for df in tables]
    shared = [k for k in groups[0] if k in groups[1]]
    if not shared:
        raise ResultsError(
            f"{a} and {b} share no configuration with successful runs "
            f"(matched on: {', '.join(by) or 'everything fixed'})"
        )
    rows = [_compare(groups[0][k], groups[1][k]) for k in shared]
    p_holm = holm([r["p"] for r in rows])
    labels = config_labels(_key_frame(shared, by), by)
    configs = []
    for label, r, ph in zip(labels, rows, p_holm, strict=True):
        change = "same"
        if ph < ALPHA:
            higher = r["diff"] > 0
            change = "better" if higher == (direction == "max") else "worse"
        configs.append(ConfigDiff(label=label, p_holm=ph, change=change, **r))
    return SweepDiff(
        a=str(a),
        b=str(b),
        metric=metric,
        direction=direction,
        by=by,
        configs=configs,
        only_a=len(groups[0]) - len(shared),
        only_b=len(groups[1]) - len(shared),
        changed=list(_changes(infos[0], infos[1])),
        mixed=mixed,
        chosen=(_chosen(rankings[0]), _chosen(rankings[1])),
        chosen_by=(rankings[0].metric, rankings[1].metric),
    )


def _chosen(ranking: Ranking) -> str:
    """The label of the configuration a sweep chooses (``best``'s), or "none"."""
    best = ranking.table[ranking.table["n"] > 0].head(1)
    return config_labels(best, ranking.by)[0] if len(best) else "none"


def _shared_swept(tables: list[Any], infos: list[Mapping[str, Any]]) -> list[str]:
    """The hyperparameters both sweeps swept, in A's order; refused where they differ, as
    matching on some of them would pool configurations that are not the same."""
    swept = []
    for df, info in zip(tables, infos, strict=True):
        names = info.get("swept")
        swept.append([c for c in (names if names is not None else param_columns(df)) if c in df])
    if set(swept[0]) != set(swept[1]):
        a, b = (", ".join(s) or "nothing" for s in swept)
        raise ResultsError(
            f"the two sweeps vary different hyperparameters (A: {a}; B: {b}); diff compares "
            "runs of the same sweep, say before and after a change"
        )
    return swept[0]


def _runs(df: Any, by: list[str], metric: str) -> dict[tuple, np.ndarray]:
    """Each configuration's runs (seeds and folds) of ``metric``, keyed by its values as text
    (a table read back may hold 64 where the other holds 64.0)."""
    if not by:
        return {(): df[metric].dropna().to_numpy(float)}
    out: dict[tuple, np.ndarray] = {}
    for key, part in df.groupby([df[c].map(_as_key) for c in by], sort=False):
        values = part[metric].dropna().to_numpy(float)
        if len(values):
            out[key if isinstance(key, tuple) else (key,)] = values
    return out


def _as_key(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _key_frame(keys: list[tuple], by: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame([dict(zip(by, k, strict=True)) for k in keys], columns=by)


def _compare(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Means, the difference B - A with its 95 % interval, and Welch's p (statsmodels)."""
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    diff = float(b.mean() - a.mean())
    low = high = p = math.nan
    if len(a) >= 2 and len(b) >= 2:
        if a.std() == 0 and b.std() == 0:
            # Identical runs on both sides: a difference is certain, no difference is none.
            p = 1.0 if diff == 0 else 0.0
            low = high = diff
        else:
            compare = CompareMeans(DescrStatsW(b), DescrStatsW(a))
            p = float(compare.ttest_ind(usevar="unequal")[1])
            low, high = (float(x) for x in compare.tconfint_diff(usevar="unequal"))
    return {
        "n_a": len(a),
        "mean_a": float(a.mean()),
        "n_b": len(b),
        "mean_b": float(b.mean()),
        "diff": diff,
        "low": low,
        "high": high,
        "p": p,
    }


def _changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> Iterator[str]:
    """``setting: A -> B`` for the library versions and sweep settings that differ."""
    keys = ("versions", "fingerprint", "space", "seeds", "strategy", "max_trials", "objective")
    flat_a = dict(_flatten({k: a.get(k) for k in keys}))
    flat_b = dict(_flatten({k: b.get(k) for k in keys}))
    for key in sorted(set(flat_a) | set(flat_b)):
        old, new = flat_a.get(key, "(none)"), flat_b.get(key, "(none)")
        if old != new:
            yield f"{key}: {old} -> {new}"


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested settings as ``a.b.c`` keys (``versions.tensorflow``, ``fingerprint.data``)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), value


def format_diff(d: SweepDiff) -> str:
    """The terminal table: one line per shared configuration, then what differs."""
    better = "higher" if d.direction == "max" else "lower"
    lines = [
        f"{d.b} vs {d.a} on {d.metric} ({better} is better): {len(d.configs)} shared "
        f"configuration{'s' if len(d.configs) != 1 else ''} (matched on "
        f"{', '.join(d.by) or 'everything: nothing swept'})",
    ]
    width = max(len(c.label) for c in d.configs)
    head = f"  {'configuration':<{width}}  {'A':>14}  {'B':>14}  {'B - A [95% interval]':>30}"
    lines.append(head + "  Holm p   ")
    for c in d.configs:
        interval = f"[{fmt_num(c.low)}, {fmt_num(c.high)}]" if not math.isnan(c.low) else ""
        p = fmt_num(c.p_holm) if not math.isnan(c.p_holm) else "n/a"
        mark = {"worse": "  WORSE in B", "better": "  better in B", "same": ""}[c.change]
        lines.append(
            f"  {c.label:<{width}}  {_mean(c.mean_a, c.n_a):>14}  {_mean(c.mean_b, c.n_b):>14}"
            f"  {fmt_num(c.diff) + ' ' + interval:>30}  {p:<8}{mark}"
        )
    worse, better_n = len(d.regressions), sum(c.change == "better" for c in d.configs)
    lines.append(
        f"{worse} worse and {better_n} better in B beyond seed noise (Welch, Holm-corrected, "
        f"alpha {ALPHA}); the rest within it"
    )
    if d.only_a or d.only_b:
        lines.append(f"not compared: {d.only_a} configurations only in A, {d.only_b} only in B")
    for name, mixed in d.mixed.items():
        lines += [f"warning: {name}'s trials trained under different versions: {m}" for m in mixed]
    by = d.chosen_by[0] if d.chosen_by[0] == d.chosen_by[1] else " / ".join(d.chosen_by)
    same = d.chosen[0] == d.chosen[1] and d.chosen_by[0] == d.chosen_by[1]
    lines.append(
        f"chosen on {by}: {d.a} {d.chosen[0]}; {d.b} {'the same' if same else d.chosen[1]}"
    )
    if d.changed:
        lines.append("what differs between the two runs (sweep.json):")
        lines += [f"  {line}" for line in d.changed]
    else:
        lines.append("sweep.json records the same versions and settings for both")
    return "\n".join(lines)


def _mean(mean: float, n: int) -> str:
    return f"{fmt_num(mean)} (n={n})"
