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
from dataclasses import dataclass, replace
from itertools import combinations
from typing import Any

import numpy as np

from nnsweep.stats import ALPHA, fmt_num, fmt_value, p_text, summarize

N_BINS = 4  # a continuous hyperparameter's marginal means are over this many ranges
_MAX_LEVELS = 6  # more distinct numeric values than this are binned
# In a search, a value's runs also differ in the other hyperparameters.
_CONFOUNDED = " once the other hyperparameters are accounted for"


@dataclass(frozen=True, eq=False)
class Effect:
    """One hyperparameter (or an ``a × b`` interaction) against the seed noise.

    ``share``: ANOVA, the term's sum of squares over the total sum of squares; importance,
    the median ``importance`` over the sum of the positive ones (a negative one counts as
    0), so the shares sum to 1. ``importance`` (drop in R² when the hyperparameter is
    shuffled) and its 95 % interval ``low``/``high`` are NaN for ANOVA; ``f``, ``p`` and
    ``p_holm`` (Holm-corrected across the main effects, or across the interactions) are
    NaN for importance. ``effect_size``: the range of the marginal means (interaction: of
    the cell means' departures from the sum of the two main effects). ``levels``: a
    DataFrame of level, n, mean, ci_low, ci_high (95 % t-interval over the runs).
    """

    name: str
    share: float
    beyond_noise: bool
    effect_size: float
    effect_vs_noise: float
    levels: Any
    f: float = math.nan
    p: float = math.nan
    p_holm: float = math.nan
    importance: float = math.nan
    low: float = math.nan
    high: float = math.nan


@dataclass(frozen=True, eq=False)
class Effects:
    """The effects of a sweep's hyperparameters on ``metric``; ``text`` says them in words."""

    metric: str
    direction: str
    kind: str  # "anova" or "importance"
    noise_std: float  # seed noise: residual std (anova) or pooled within-configuration std
    grand_mean: float
    rows: list[Effect]
    interactions: list[Effect]  # two-way, anova only
    n_runs: int
    n_configs: int
    text: list[str]

    @property
    def beyond(self) -> list[str]:
        return [e.name for e in self.rows if e.beyond_noise]

    @property
    def within(self) -> list[str]:
        return [e.name for e in self.rows if not e.beyond_noise]

    def table(self) -> Any:
        """One row per effect (main effects, then interactions), for the HTML page."""
        import pandas as pd

        keep = ["f", "p", "p_holm"] if self.kind == "anova" else ["importance", "low", "high"]
        cols = ["name", "share", *keep, "beyond_noise", "effect_size", "effect_vs_noise"]
        table = pd.DataFrame(
            [[getattr(e, c) for c in cols] for e in [*self.rows, *self.interactions]],
            columns=cols,
        )
        table["levels"] = [len(e.levels) for e in [*self.rows, *self.interactions]]
        return table.rename(columns={"name": "effect", "f": "F"})


@dataclass
class _Runs:
    """The ok runs with a value: ``frame`` holds y, config and each varying param's raw value;
    ``labels`` the same params as text (categorical)."""

    frame: Any
    labels: Any
    varying: list[str]
    notes: list[str]


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
    from nnsweep._importance import importance

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


# -- ANOVA (grid) ------------------------------------------------------------------------


def _anova(r: _Runs, metric: str, direction: str) -> Effects:
    """Type II ANOVA with two-way interactions where estimable; seeds are the replicates."""
    import pandas as pd
    import statsmodels.formula.api as smf
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
    table = anova_lm(model, typ=2)
    total = float(((data["y"] - data["y"].mean()) ** 2).sum())
    noise = _exact(math.sqrt(model.mse_resid), data["y"])

    def stats(keys: list[str]) -> list[dict[str, float]]:
        t = table.loc[keys]
        return [
            {"share": ss / total, "f": f, "p": p, "p_holm": ph}
            for ss, f, p, ph in zip(
                t["sum_sq"], t["F"], t["PR(>F)"], _holm(t["PR(>F)"]), strict=True
            )
        ]

    rows = [
        _effect(name[p], levels=_levels(r, name[p]), noise=noise, **term)
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
    n_configs = r.frame["config"].nunique()
    mean = float(data["y"].mean())
    return Effects(
        metric, direction, "anova", noise, mean, rows, interactions, len(data), n_configs, text
    )


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


def _holm(p: Any) -> list[float]:
    """Holm's step-down correction (statsmodels) over the known p-values; NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests

    out = np.asarray(p, dtype=float).copy()
    known = ~np.isnan(out)
    if known.any():
        out[known] = multipletests(out[known], alpha=ALPHA, method="holm")[1]
    return [float(x) for x in out]


def _effect(name: str, share: float, levels: Any, noise: float, **stats: Any) -> Effect:
    """An effect whose size is the range of its ``levels``' means; beyond noise as Holm says."""
    size = float(levels["mean"].max() - levels["mean"].min())
    beyond = bool(stats.get("p_holm", math.nan) < ALPHA)
    return Effect(name, float(share), beyond, size, _ratio(size, noise), levels, **stats)


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


def _levels(r: _Runs, param: str, binned: bool = False) -> Any:
    """Marginal means of the runs at each value of ``param``; with ``binned``, a continuous
    one (a search's draws) over ``N_BINS`` ranges of its values instead."""
    import pandas as pd

    text = r.labels[param]
    order = {t: _sort_key(v) for t, v in zip(text, r.frame[param], strict=True)}
    if binned and _continuous(r.frame[param]):
        numeric = pd.to_numeric(r.frame[param], errors="coerce")
        codes = pd.qcut(numeric, N_BINS, duplicates="drop").cat.codes  # a missing value: -1
        span = numeric.groupby(codes).agg(["min", "max"])
        ranges = codes.map(lambda c: _range(span["min"][c], span["max"][c]))
        text = text.where(codes < 0, ranges)
        order = {t: (c < 0, c, "") for t, c in zip(text, codes, strict=True)}
    table = _summary(pd.DataFrame({"level": text.to_numpy(), "y": r.frame["y"].to_numpy()}))
    table["_order"] = table["level"].map(order)
    return table.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def _range(low: Any, high: Any) -> str:
    """``8–64``, or one value where a range holds only one."""
    return fmt_value(low) if low == high else f"{fmt_value(low)}–{fmt_value(high)}"


def _continuous(raw: Any) -> bool:
    """Numbers (missing allowed) with more distinct values than a figure can show one by one."""
    import pandas as pd

    numeric = pd.to_numeric(raw, errors="coerce")
    return numeric.notna().sum() == raw.notna().sum() and numeric.nunique() > _MAX_LEVELS


def _summary(frame: Any) -> Any:
    return summarize(frame, "y", by=["level"])[["level", "n", "mean", "ci_low", "ci_high"]]


def _sort_key(v: Any) -> tuple:
    """Numbers by value, then text; a missing value last."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return (2, 0.0, "")
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return (0, float(v), "")
    return (1, 0.0, str(v))


def _exact(noise: float, y: Any) -> float:
    """0 where repeated runs agree to rounding (deterministic training), not 3.7e-16."""
    return 0.0 if noise <= 1e-12 * max(1.0, float(np.abs(y).max())) else noise


def _ratio(size: float, noise: float) -> float:
    if noise > 0:
        return size / noise
    return math.inf if size > 0 else math.nan


# -- words -------------------------------------------------------------------------------


def fmt_share(share: float) -> str:
    """A share as a percentage: ``62 %``, ``0.4 %``."""
    v = 100 * share
    return f"{v:.0f} %" if abs(v) >= 10 else f"{v:.1f} %"


def _fstat(f: float) -> str:
    return "F>10,000" if f > 1e4 else f"F={f:,.0f}" if f >= 1000 else f"F={f:.3g}"


def _noise_words(e: Effect, noise: float, unclear: str) -> str:
    """'its marginal means span 0.045, 9.1× the seed noise (std 0.005) — beyond seed noise';
    ``unclear`` says why a span larger than the noise can still be within it."""
    words = f"its marginal means span {fmt_num(e.effect_size)}"
    ratio = e.effect_vs_noise
    if not noise > 0:
        words += ", and repeated runs agree exactly (no seed noise)"
    elif ratio >= 1:
        words += f", {ratio:.1f}" if ratio < 10 else f", {min(ratio, 1e4):,.0f}"
        words += f"{'+' * (ratio > 1e4)}× the seed noise (std {fmt_num(noise)})"
    else:
        words += f", smaller than the seed noise (std {fmt_num(noise)})"
    if e.beyond_noise and ratio < 1:
        return words + " — beyond seed noise, though smaller than one run's noise"
    if e.beyond_noise:
        return words + " — beyond seed noise"
    return words + " — not distinguishable from seed noise" + (unclear if ratio >= 1 else "")


def _best(e: Effect, direction: str) -> str:
    t = e.levels
    i = int(t["mean"].idxmax() if direction == "max" else t["mean"].idxmin())
    return f"; best at {e.name}={t['level'][i]} ({fmt_num(t['mean'][i])})"


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
