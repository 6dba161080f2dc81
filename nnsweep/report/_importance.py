"""Permutation importance for searches: which hyperparameters move the metric, with
intervals from resampling, where the configurations are not a grid an ANOVA could read.

Serves ``nnsweep.report.effects``; the trees come from scikit-learn.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from nnsweep.report._effect_base import (
    _CONFOUNDED,
    N_BINS,
    Effect,
    Effects,
    _best,
    _continuous,
    _effect,
    _exact,
    _levels,
    _noise_words,
    _Runs,
    fmt_share,
)
from nnsweep.report.stats import fmt_num, fmt_value

N_BOOT = 50  # bootstrap replicates of the importance
N_REPEATS = 5  # shuffles per hyperparameter and replicate
MIN_CONFIGS = 8  # fewer configurations cannot both train and test a model of the metric
# The importance refits its trees 50 times; beyond this many configurations a random subset
# keeps a 10,000-trial report at seconds (about 3 s for 400 here), and the text says so.
MAX_IMPORTANCE_CONFIGS = 400


def importance(r: _Runs, metric: str, direction: str, seed: int) -> Effects | None:
    """The importance of each varying hyperparameter (None with too few configurations)."""
    return _fit(_subsample(r, MAX_IMPORTANCE_CONFIGS, seed), metric, direction, seed)


def _subsample(r: _Runs, limit: int, seed: int) -> _Runs:
    """At most ``limit`` configurations (all their runs), drawn at random; said in words."""
    configs = r.frame["config"].unique()
    if len(configs) <= limit:
        return r
    keep = np.random.default_rng(seed).choice(configs, limit, replace=False)
    mask = r.frame["config"].isin(keep).to_numpy()
    note = (
        f"Importance is estimated on a random {limit} of the {len(configs):,} configurations "
        "(for speed); the marginal means use them too."
    )
    return _Runs(
        r.frame[mask].reset_index(drop=True),
        r.labels[mask].reset_index(drop=True),
        r.varying,
        [*r.notes, note],
    )


def _fit(r: _Runs, metric: str, direction: str, seed: int) -> Effects | None:
    """Permutation importance of extra trees fitted to configuration means, with intervals
    from resampling configurations and, within each, its runs. It is measured on the
    configurations each resample leaves out: on the training ones, trees that memorise the
    seed noise make an irrelevant hyperparameter look important."""
    frame = r.frame.sort_values("config", kind="stable").reset_index(drop=True)
    configs = frame.drop_duplicates("config").reset_index(drop=True)
    if len(configs) < MIN_CONFIGS:
        return None
    grouped = frame.groupby("config", sort=True)["y"]
    counts, var = grouped.size().to_numpy(), grouped.var(ddof=1).to_numpy()
    noise = _exact(math.sqrt(np.nansum((counts - 1) * var) / (counts - 1).sum()), frame["y"])
    x, groups = _encode(configs, r.varying)
    imps, skipped = _bootstrap(x, groups, frame["y"].to_numpy(float), counts, seed)
    point = np.median(imps, axis=0)
    low, high = np.percentile(imps, [2.5, 97.5], axis=0)
    total = point[point > 0].sum() or 1.0
    rows = []
    for j, p in enumerate(r.varying):
        e = _effect(p, max(point[j], 0) / total, _levels(r, p, binned=True), noise)
        rows.append(
            replace(
                e,
                importance=float(point[j]),
                low=float(low[j]),
                high=float(high[j]),
                beyond_noise=bool(low[j] > 0),
            )
        )
    text = [_importance_words(e, noise, direction) for e in rows] + r.notes
    text += _importance_notes(r, skipped)
    mean = float(frame["y"].mean())
    return Effects(
        metric, direction, "importance", noise, mean, rows, [], len(frame), len(configs), text
    )


def _encode(configs: Any, params: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Numeric params as they are (a missing value stays NaN: the trees handle it), the rest
    one-hot; per param, the columns that encode it (shuffled together)."""
    import pandas as pd

    blocks, groups, start = [], [], 0
    for p in params:
        v = configs[p]
        numeric = pd.to_numeric(v, errors="coerce")
        if numeric.notna().sum() == v.notna().sum() and not pd.api.types.is_bool_dtype(v):
            block = numeric.to_numpy(float)[:, None]
        else:
            block = pd.get_dummies(v.map(fmt_value), dtype=float).to_numpy()
        blocks.append(block)
        groups.append(np.arange(start, start + block.shape[1]))
        start += block.shape[1]
    return np.hstack(blocks), groups


def _bootstrap(
    x: np.ndarray, groups: list[np.ndarray], y: np.ndarray, counts: np.ndarray, seed: int
) -> tuple[np.ndarray, int]:
    """(replicates, params) importances; also how many replicates left < 2 configs out.
    ``y`` holds the runs grouped by configuration, ``counts`` runs per configuration."""
    from sklearn.ensemble import ExtraTreesRegressor

    rng = np.random.default_rng(seed)
    n = len(counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)  # each run's configuration's first
    sizes, owner = np.repeat(counts, counts), np.repeat(np.arange(n), counts)
    out, skipped = [], 0
    for _ in range(N_BOOT):
        pick = first + (rng.random(len(y)) * sizes).astype(int)
        means = np.bincount(owner, weights=y[pick], minlength=n) / counts
        drawn = rng.integers(0, n, n)
        left = np.setdiff1d(np.arange(n), drawn)
        if len(left) < 2:
            skipped += 1
            continue
        model = ExtraTreesRegressor(n_estimators=100, random_state=seed, n_jobs=1)
        model.fit(x[drawn], means[drawn])
        out.append(_drops(model, x[left], means[left], groups, rng))
    return np.array(out), skipped


def _drops(
    model: Any, x: np.ndarray, y: np.ndarray, groups: list[np.ndarray], rng: Any
) -> np.ndarray:
    """Drop in R² when each param's columns are shuffled: sklearn's permutation_importance,
    but with a param's one-hot columns shuffled together and every shuffle predicted in one
    call (rather than params x repeats calls: the bootstrap stays within seconds)."""
    from sklearn.metrics import r2_score

    m = len(y)
    copies = [x]
    for cols in groups:
        for _ in range(N_REPEATS):
            shuffled = x.copy()
            shuffled[:, cols] = x[rng.permutation(m)][:, cols]
            copies.append(shuffled)
    pred = model.predict(np.vstack(copies)).reshape(len(copies), m).T
    scores = r2_score(np.repeat(y[:, None], len(copies), axis=1), pred, multioutput="raw_values")
    return scores[0] - scores[1:].reshape(len(groups), N_REPEATS).mean(axis=1)


def _importance_words(e: Effect, noise: float, direction: str) -> str:
    interval = f"95 % interval {fmt_num(e.low)} to {fmt_num(e.high)}"
    interval += "" if e.beyond_noise else ", reaching zero"
    best = _best(e, direction) if e.beyond_noise else ""
    return (
        f"{e.name}: {fmt_share(e.share)} of the importance (shuffling it costs "
        f"{fmt_num(e.importance)} of R², {interval}); {_noise_words(e, noise, _CONFOUNDED)}"
        f"{best}."
    )


def _importance_notes(r: _Runs, skipped: int) -> list[str]:
    notes = [
        "Importance is the drop in R² of extra trees predicting each configuration's mean when "
        f"a hyperparameter is shuffled, on the configurations left out of each of {N_BOOT} "
        "bootstrap resamples (of configurations, and of runs within each); intervals are "
        "their 2.5–97.5 percentiles, shares are of the summed positive importances."
    ]
    if skipped:
        notes.append(
            f"{skipped} of {N_BOOT} resamples left fewer than two configurations out and "
            "were skipped."
        )
    binned = [p for p in r.varying if _continuous(r.frame[p])]
    if binned:
        notes.append(
            f"Marginal means of {', '.join(binned)} are over {N_BINS} ranges of values; "
            "in a search the other hyperparameters vary within each, so their spans are rough."
        )
    return notes
