"""The parts of the effects analysis both of its kinds share: the result types, the
marginal means of a hyperparameter's values, and the words that compare an effect with
the seed noise. ``effects`` (ANOVA over a grid) and ``_importance`` (searches) build on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsweep.report.stats import ALPHA, fmt_num, fmt_value, summarize

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


def _effect(name: str, share: float, levels: Any, noise: float, **stats: Any) -> Effect:
    """An effect whose size is the range of its ``levels``' means; beyond noise as Holm says."""
    size = float(levels["mean"].max() - levels["mean"].min())
    beyond = bool(stats.get("p_holm", math.nan) < ALPHA)
    return Effect(name, float(share), beyond, size, _ratio(size, noise), levels, **stats)


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
