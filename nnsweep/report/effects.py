"""Effects: which hyperparameters matter, beyond seed noise.

Owns the analysis behind the report's effects section. A grid sweep is a factorial design
with the seeds (and folds) as replicates, so it gets a Type II ANOVA (statsmodels): each
hyperparameter's share of the variance and F test (Holm-corrected), and the two-way
interactions whose cells all have runs. A search (random, bayesian, hyperband) is not
factorial, so it gets the permutation importance of extra trees (scikit-learn) fitted to the
configuration means, with bootstrap intervals. Either way each hyperparameter's effect is
compared with the seed noise and said in words. Nothing here imports Keras or TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from itertools import combinations
from typing import Any

import numpy as np

from nnsweep.report._effect_base import (
    Effect,
    Effects,
    _best,
    _effect,
    _exact,
    _fstat,
    _levels,
    _noise_words,
    _ratio,
    _Runs,
    _summary,
    fmt_share,
)
from nnsweep.report.stats import clipped_interval, flag_unstable, fmt_num, fmt_value, holm, p_text


def effects(
    df: Any,
    metric: str,
    params: Sequence[str],
    direction: str = "max",
    *,
    strategy: str = "grid",
    seed: int = 0,
) -> Effects | None:
    """Which of ``params`` move ``metric`` beyond seed noise: ANOVA for a grid, permutation
    importance for a search. None when nothing varies among the ok runs, when no
    configuration has two runs (no seed noise to compare with), when every run scored the
    same, or, for a search, when
    fewer than ``_importance.MIN_CONFIGS`` configurations have runs."""
    runs = _prepare(df, metric, params)
    if runs is None:
        return None
    if strategy == "grid" and _is_grid(runs):
        return _anova(runs, metric, direction)
    if strategy == "grid":
        runs.notes.append(
            "The configurations do not form a grid (fewer than half the combinations of the "
            "values have runs), so importance stands in for an analysis of variance."
        )
    from nnsweep.report._importance import importance

    return importance(runs, metric, direction, seed)


def _is_grid(r: _Runs) -> bool:
    """Whether the configurations cover at least half of the combinations of the values."""
    combos = math.prod(r.labels[p].nunique() for p in r.varying)
    return combos <= 2 * r.frame["config"].nunique()


def _prepare(df: Any, metric: str, params: Sequence[str]) -> _Runs | None:
    import pandas as pd

    ok = df[df["status"] == "ok"] if "status" in df else df
    y = pd.to_numeric(ok[metric], errors="coerce")
    ok, y = ok[y.notna()], y[y.notna()]
    labels = pd.DataFrame({p: ok[p].map(fmt_value) for p in params}, index=ok.index)
    varying = [p for p in params if labels[p].nunique() > 1]
    notes = [
        f"{p} takes one value ({labels[p].iloc[0]}) among the successful runs, so it is not "
        "analysed."
        for p in params
        if p not in varying and len(labels)
    ]
    if not varying:
        return None
    key = ok["config_id"].astype(str) if "config_id" in ok else labels.agg("|".join, axis=1)
    frame = pd.DataFrame({"y": y.to_numpy(float), "config": key.to_numpy()})
    for p in varying:
        frame[p] = ok[p].to_numpy()
    if frame.groupby("config").size().max() < 2 or frame["y"].nunique() < 2:
        return None  # no replicates, or every run scored the same: nothing to apportion
    return _Runs(frame, labels[varying].reset_index(drop=True), varying, notes)


def _within(levels: Any, noise: float, df: float, metric: str) -> Any:
    """Marginal means with 95 % intervals from seed noise over each level's runs, inside the
    metric's range. An interval over the level's runs themselves would also hold the other
    hyperparameters' effects, which the grid fixes, and look wider than the test."""
    from scipy import stats as st

    half = st.t.ppf(0.975, df) * noise / np.sqrt(levels["n"].to_numpy(float)) if df > 0 else np.nan
    low, high, _ = clipped_interval(levels["mean"], half, metric)
    return levels.assign(ci_low=low, ci_high=high)


def _bar_noise(r: _Runs, metric: str) -> tuple[float, float, list[str]]:
    """Seed noise for the bars: the within-configuration std pooled over configurations
    not flagged unstable (``flag_unstable``), its degrees of freedom, and the flagged ones.
    One configuration whose seeds disagree wildly would otherwise widen every bar."""
    table = r.frame.groupby("config")["y"].agg(["count", "mean", "std", "min", "max"])
    table = table.rename(columns={"count": "n"})
    unstable = flag_unstable(table, metric)
    kept = table[~unstable & (table["n"] >= 2)]
    dof = float((kept["n"] - 1).sum())
    pooled = float(np.sqrt(((kept["n"] - 1) * kept["std"] ** 2).sum() / dof)) if dof else math.nan
    configs = r.frame["config"].to_numpy()

    def label(config: Any) -> str:
        i = int(np.flatnonzero(configs == config)[0])
        return " ".join(f"{p}={r.labels[p].iloc[i]}" for p in r.varying)

    return pooled, dof, [label(c) for c in table.index[unstable]]


# -- ANOVA (grid) ------------------------------------------------------------------------


def _anova(r: _Runs, metric: str, direction: str) -> Effects:
    """Type II ANOVA with two-way interactions where estimable; seeds are the replicates."""
    import pandas as pd
    from statsmodels.stats.anova import anova_lm

    # Internal names keep the formula safe whatever the columns are called.
    name = {f"p{i}": p for i, p in enumerate(r.varying)}
    data = pd.DataFrame({k: r.labels[p] for k, p in name.items()}).assign(y=r.frame["y"])
    kept, notes = _estimable(data, list(name), name)
    pairs = [(a, b) for a, b in combinations(kept, 2) if _complete(data, a, b)]
    notes += [
        f"No interaction is estimated for {name[a]} × {name[b]}: some combinations of their "
        "values have no successful run, so only main effects are tested for them."
        for a, b in combinations(kept, 2)
        if (a, b) not in pairs
    ]

    model, pairs = _fit(data, kept, pairs, notes)
    table = anova_lm(model, typ=2)
    total = float(((data["y"] - data["y"].mean()) ** 2).sum())
    noise = _exact(math.sqrt(model.mse_resid), data["y"])
    bar_noise, bar_df, flagged = _bar_noise(r, metric)
    if not flagged or not bar_df:
        bar_noise, bar_df = noise, model.df_resid

    def stats(keys: list[str]) -> list[dict[str, float]]:
        return _term_stats(table, keys, total)

    rows = [
        _effect(
            name[p],
            levels=_within(_levels(r, name[p]), bar_noise, bar_df, metric),
            noise=noise,
            **term,
        )
        for p, term in zip(kept, stats([f"C({p})" for p in kept]), strict=True)
    ]
    interactions = [
        _interaction(data, a, b, name, noise, term)
        for (a, b), term in zip(pairs, stats([f"C({a}):C({b})" for a, b in pairs]), strict=True)
    ]
    text = [_anova_words(e, noise, direction, len(rows)) for e in rows]
    text += _interaction_words(interactions) + r.notes + notes
    residual = float(table.loc["Residual", "sum_sq"]) / total
    text.append(
        f"Seed noise (the residual) holds {fmt_share(residual)} of the variance; shares are of the "
        f"total sum of squares (Type II ANOVA, {len(data)} runs)"
        + (", p-values Holm-corrected across the hyperparameters." if len(rows) > 1 else ".")
    )
    if flagged:
        text.append(
            f"{len(flagged)} configuration{'s' if len(flagged) > 1 else ''} flagged unstable "
            f"({', '.join(flagged)}): the figure's bars use the seed noise pooled over the "
            f"others ({fmt_num(bar_noise)}, the within-configuration std), so that one "
            f"configuration's spread does not widen every bar; the tests use the residual "
            f"({fmt_num(noise)}), which holds it, and are the more cautious for it."
        )
    n_configs = r.frame["config"].nunique()
    mean = float(data["y"].mean())
    return Effects(
        metric, direction, "anova", noise, mean, rows, interactions, len(data), n_configs, text
    )


def _fit(
    data: Any, kept: list[str], pairs: list[tuple[str, str]], notes: list[str]
) -> tuple[Any, list[tuple[str, str]]]:
    """The OLS model with the interactions ``pairs``; main effects only (said in ``notes``)
    when they leave no residual degrees of freedom or a singular design."""
    import statsmodels.formula.api as smf

    def fit(terms: list[tuple[str, str]]) -> Any:
        rhs = [f"C({p})" for p in kept] + [f"C({a}):C({b})" for a, b in terms]
        return smf.ols("y ~ " + " + ".join(rhs), data).fit()

    model = fit(pairs)
    if pairs and (model.df_resid < 1 or _rank_deficient(model.model.exog)):
        notes.append(
            "Interactions are left out: with them the runs leave no residual degrees of "
            "freedom (or the design is singular), so only main effects are tested."
        )
        pairs, model = [], fit([])
    return model, pairs


def _term_stats(table: Any, keys: list[str], total: float) -> list[dict[str, float]]:
    """Share of the total sum of squares, F, p and Holm's p of each ANOVA term."""
    t = table.loc[keys]
    return [
        {"share": ss / total, "f": f, "p": p, "p_holm": ph}
        for ss, f, p, ph in zip(t["sum_sq"], t["F"], t["PR(>F)"], holm(t["PR(>F)"]), strict=True)
    ]


def _estimable(data: Any, keys: list[str], name: dict[str, str]) -> tuple[list[str], list[str]]:
    """Params whose main effects the runs can separate; one confounded with those before it
    (missing combinations can make two move together) is left out, and said."""
    import pandas as pd

    kept: list[str] = []
    notes: list[str] = []
    design = np.ones((len(data), 1))
    for p in keys:
        trial = np.hstack([design, pd.get_dummies(data[p], drop_first=True, dtype=float)])
        if _rank_deficient(trial):
            notes.append(
                f"{name[p]} is not analysed: in the successful runs it moves together with "
                f"{', '.join(name[k] for k in kept)}, so their effects cannot be told apart."
            )
        else:
            kept.append(p)
            design = trial
    return kept, notes


def _complete(data: Any, a: str, b: str) -> bool:
    return len(data.groupby([a, b]).size()) == data[a].nunique() * data[b].nunique()


def _rank_deficient(exog: Any) -> bool:
    return bool(np.linalg.matrix_rank(exog) < exog.shape[1])


def _interaction(
    data: Any, a: str, b: str, name: dict[str, str], noise: float, stats: dict[str, float]
) -> Effect:
    """The cell means, and how far they depart from adding the two main effects."""
    import pandas as pd

    levels = _summary(pd.DataFrame({"level": data[a] + " × " + data[b], "y": data["y"]}))
    cell = data.groupby([a, b])["y"].transform("mean")
    row, col = (data.groupby(k)["y"].transform("mean") for k in (a, b))
    departure = cell - row - col + data["y"].mean()
    e = _effect(f"{name[a]} × {name[b]}", levels=levels, noise=noise, **stats)
    size = float(departure.max() - departure.min())
    return replace(e, effect_size=size, effect_vs_noise=_ratio(size, noise))


# -- words -------------------------------------------------------------------------------


def _anova_words(e: Effect, noise: float, direction: str, n_tests: int) -> str:
    p = p_text(e.p_holm) if not math.isnan(e.p_holm) else "p n/a"
    p = f"Holm {p}" if n_tests > 1 else p
    stat = f"{_fstat(e.f)}, {p}" if e.beyond_noise else p
    best = _best(e, direction) if e.beyond_noise else ""
    words = _noise_words(e, noise, " with these runs")
    return f"{e.name}: {fmt_share(e.share)} of the variance, {stat}; {words}{best}."


def _interaction_words(interactions: list[Effect]) -> list[str]:
    beyond = [e for e in interactions if e.beyond_noise]
    if interactions and not beyond:
        names = ", ".join(e.name for e in interactions)
        return [f"No two-way interaction is beyond seed noise ({names})."]
    return [
        f"{e.name} interact: {fmt_share(e.share)} of the variance, {_fstat(e.f)}, Holm "
        f"{p_text(e.p_holm)}; the cell means depart from the sum of the two effects by up to "
        f"{fmt_num(e.effect_size)}, so the best value of one depends on the other."
        for e in beyond
    ]
