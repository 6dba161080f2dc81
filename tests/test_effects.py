"""Effects beyond seed noise: library numbers against hand computations on made-up tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from nnsweep.report._plots.effects import (
    MAX_PANELS,
    caption_effects,
    draw_effects,
    effects_figure,
    effects_figure_size,
    gather_effects,
)
from nnsweep.report.effects import Effects, effects

# Runs of a 2 x 2 grid, 3 seeds per cell: a moves the metric by about 0.1, b does not.
CELLS = {
    (1, "x"): [0.800, 0.810, 0.790],
    (1, "y"): [0.805, 0.795, 0.812],
    (2, "x"): [0.900, 0.910, 0.885],
    (2, "y"): [0.902, 0.893, 0.910],
}


def grid(cells: dict[tuple, list[float]] = CELLS, names: tuple[str, str] = ("a", "b")):
    """A trials table: one ok row per run of each cell."""
    rows = []
    for (a, b), values in cells.items():
        for seed, v in enumerate(values):
            config = f"{a}-{b}"
            rows.append({names[0]: a, names[1]: b, "config_id": config, "seed": seed})
            rows[-1].update(fold=0, status="ok", val_accuracy=v, trial_id=f"{config}-s{seed}")
    return pd.DataFrame(rows)


def hand_anova(cells: dict[tuple, list[float]]) -> dict[str, float]:
    """Sums of squares of a balanced two-way design, by hand."""
    y = np.array(list(cells.values()))  # (cells, seeds)
    a = np.array([k[0] for k in cells])
    b = np.array([k[1] for k in cells])
    grand = y.mean()
    per_level = y.size / 2
    ss = {
        "a": per_level * sum((y[a == v].mean() - grand) ** 2 for v in np.unique(a)),
        "b": per_level * sum((y[b == v].mean() - grand) ** 2 for v in np.unique(b)),
        "res": ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(),
        "total": ((y - grand) ** 2).sum(),
    }
    ss["ab"] = ss["total"] - ss["a"] - ss["b"] - ss["res"]
    ss["df_res"] = y.size - len(cells)
    return ss


def test_balanced_grid_matches_hand_anova():
    eff = effects(grid(), "val_accuracy", ["a", "b"])
    h = hand_anova(CELLS)
    mse = h["res"] / h["df_res"]
    assert eff.kind == "anova" and eff.n_runs == 12 and eff.n_configs == 4
    assert eff.noise_std == pytest.approx(math.sqrt(mse), abs=1e-12)
    by = {e.name: e for e in eff.rows}
    p = {}
    for name in ("a", "b"):
        f = h[name] / mse
        p[name] = st.f.sf(f, 1, h["df_res"])
        assert by[name].share == pytest.approx(h[name] / h["total"], abs=1e-8)
        assert by[name].f == pytest.approx(f, abs=1e-8)
        assert by[name].p == pytest.approx(p[name], abs=1e-8)
    # Holm with two tests: the smaller p doubled, the larger kept (not below the first).
    assert by["a"].p_holm == pytest.approx(2 * p["a"], abs=1e-12)
    assert by["b"].p_holm == pytest.approx(max(p["b"], 2 * p["a"]), abs=1e-12)
    (ab,) = eff.interactions
    assert ab.name == "a × b"
    assert ab.share == pytest.approx(h["ab"] / h["total"], abs=1e-8)
    assert ab.p == pytest.approx(st.f.sf(h["ab"] / mse, 1, h["df_res"]), abs=1e-8)
    assert by["a"].beyond_noise and not by["b"].beyond_noise and not ab.beyond_noise
    assert eff.beyond == ["a"] and eff.within == ["b"]
    assert by["a"].effect_vs_noise == pytest.approx(by["a"].effect_size / eff.noise_std)
    text_a, text_b = eff.text[0], eff.text[1]
    assert text_a.startswith("a: ") and "— beyond seed noise" in text_a and "F=" in text_a
    assert text_b.startswith("b: ") and "smaller than the seed noise" in text_b
    assert "not distinguishable from seed noise" in text_b
    assert any("No two-way interaction is beyond seed noise" in t for t in eff.text)
    table = eff.table()
    assert list(table["effect"]) == ["a", "b", "a × b"]
    assert {"F", "p", "p_holm"} <= set(table.columns) and "low" not in table.columns


def test_marginal_means_and_intervals_by_hand():
    eff = effects(grid(), "val_accuracy", ["a", "b"])
    levels = eff.rows[0].levels
    assert list(levels["level"]) == ["1", "2"]
    runs = np.array(CELLS[(2, "x")] + CELLS[(2, "y")])
    # The analysis's interval: seed noise (residual mean square) over the level's 6 runs,
    # not the spread of those runs, which also holds b's effect.
    h = hand_anova(CELLS)
    half = st.t.ppf(0.975, h["df_res"]) * math.sqrt(h["res"] / h["df_res"] / len(runs))
    assert half < st.t.ppf(0.975, 5) * runs.std(ddof=1) / math.sqrt(len(runs))
    two = levels.iloc[1]
    assert two["n"] == 6
    assert two["mean"] == pytest.approx(runs.mean(), abs=1e-12)
    assert two["ci_low"] == pytest.approx(runs.mean() - half, abs=1e-12)
    assert two["ci_high"] == pytest.approx(runs.mean() + half, abs=1e-12)
    assert eff.rows[0].effect_size == pytest.approx(levels["mean"].max() - levels["mean"].min())


def test_interaction_only_when_every_cell_has_runs():
    cells = {**CELLS, (3, "x"): [0.95, 0.96, 0.94], (3, "y"): [0.80, 0.81, 0.79]}
    full = effects(grid(cells), "val_accuracy", ["a", "b"])
    (ab,) = full.interactions
    assert ab.beyond_noise  # b helps at a=3 only
    assert any(t.startswith("a × b interact") for t in full.text)

    missing = {k: v for k, v in cells.items() if k != (2, "y")}
    eff = effects(grid(missing), "val_accuracy", ["a", "b"])
    assert eff.interactions == []
    assert [e.name for e in eff.rows] == ["a", "b"]
    assert any("No interaction is estimated for a × b" in t for t in eff.text)


def test_confounded_parameter_is_left_out_and_said():
    cells = {(1, "x"): CELLS[(1, "x")], (2, "y"): CELLS[(2, "y")]}
    eff = effects(grid(cells), "val_accuracy", ["a", "b"])
    assert [e.name for e in eff.rows] == ["a"]
    assert any("b is not analysed" in t and "moves together with a" in t for t in eff.text)


def test_none_without_replicates_or_variation():
    one_seed = grid({k: v[:1] for k, v in CELLS.items()})
    assert effects(one_seed, "val_accuracy", ["a", "b"]) is None
    assert effects(one_seed, "val_accuracy", ["a", "b"], strategy="random") is None
    fixed = grid().assign(a=1, b="x")
    assert effects(fixed, "val_accuracy", ["a", "b"]) is None
    # Only failed runs where a varies: among the ok runs nothing does.
    failed = grid().assign(status=lambda d: np.where(d["a"] == 2, "failed", "ok"), b="x")
    assert effects(failed, "val_accuracy", ["a", "b"]) is None


def test_failed_rows_and_missing_metrics_are_ignored():
    clean = effects(grid(), "val_accuracy", ["a", "b"])
    noisy = grid()
    junk = noisy.iloc[:3].assign(status="failed", val_accuracy=0.0)
    nan = noisy.iloc[3:6].assign(val_accuracy=np.nan)
    # A failed cell of its own: its value must not appear as a level.
    other = noisy.iloc[:2].assign(a=9, config_id="9-x", status="diverged", val_accuracy=0.1)
    eff = effects(pd.concat([noisy, junk, nan, other]), "val_accuracy", ["a", "b"])
    assert eff.n_runs == 12
    assert [list(e.levels["level"]) for e in eff.rows] == [["1", "2"], ["x", "y"]]
    for mine, ref in zip(eff.rows, clean.rows, strict=True):
        assert mine.share == pytest.approx(ref.share, abs=1e-12)
        assert mine.p == pytest.approx(ref.p, abs=1e-12)


def test_missing_values_are_a_level_of_their_own():
    cells = {(k[0], k[1]): v for k, v in CELLS.items()}
    df = grid(cells, names=("dropout", "optimizer"))
    df["dropout"] = df["dropout"].map({1: np.nan, 2: 0.2})
    eff = effects(df, "val_accuracy", ["dropout", "optimizer"])
    assert list(eff.rows[0].levels["level"]) == ["0.2", "None"]
    assert eff.rows[0].beyond_noise


def test_runs_that_repeat_exactly_have_no_seed_noise():
    eff = effects(grid({k: [v[0]] * 3 for k, v in CELLS.items()}), "val_accuracy", ["a", "b"])
    assert eff.noise_std == 0 and eff.rows[0].effect_vs_noise == math.inf
    assert "repeated runs agree exactly" in eff.text[0] and "F>10,000" in eff.text[0]
    assert "no seed-noise band" in caption_effects(gather_effects(eff))


def search(n_configs: int = 20, seeds: int = 3, data_seed: int = 0) -> pd.DataFrame:
    """A random search: the metric follows x1; x2 (numeric) and act (text) do nothing."""
    rng = np.random.default_rng(data_seed)
    rows = []
    for c in range(n_configs):
        x1, x2 = rng.uniform(0, 1), 10 ** rng.uniform(-4, -2)
        act = rng.choice(["relu", "tanh", "gelu"])
        for seed in range(seeds):
            v = 0.7 + 0.2 * x1 + rng.normal(0, 0.01)
            rows.append({"config_id": f"c{c}", "x1": x1, "x2": x2, "act": act, "seed": seed})
            rows[-1].update(fold=0, status="ok", val_accuracy=v)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def searched() -> tuple[pd.DataFrame, Effects]:
    df = search()
    return df, effects(df, "val_accuracy", ["x1", "x2", "act"], strategy="random", seed=3)


def test_importance_finds_the_parameter_that_matters(searched):
    df, eff = searched
    assert eff.kind == "importance" and eff.interactions == [] and eff.n_configs == 20
    by = {e.name: e for e in eff.rows}
    assert by["x1"].beyond_noise and by["x1"].low > 0
    for name in ("x2", "act"):
        assert not by[name].beyond_noise
        assert by[name].low <= 0 <= by[name].high
        assert math.isnan(by[name].p) and math.isnan(by[name].f)
    assert sum(e.share for e in eff.rows) == pytest.approx(1.0)
    assert by["x1"].share > 0.8
    assert len(by["x1"].levels) == 4  # continuous: binned into ranges
    assert len(by["act"].levels) == 3
    # The noise is the pooled within-configuration std, by hand.
    var = df.groupby("config_id")["val_accuracy"].var(ddof=1)
    assert eff.noise_std == pytest.approx(math.sqrt(var.mean()), abs=1e-12)
    assert "— beyond seed noise" in eff.text[0] and "reaching zero" in eff.text[1]
    table = eff.table()
    assert {"importance", "low", "high"} <= set(table.columns) and "F" not in table.columns
    again = effects(df, "val_accuracy", ["x1", "x2", "act"], strategy="random", seed=3)
    pd.testing.assert_frame_equal(table, again.table())
    assert again.text == eff.text


def test_importance_needs_enough_configurations():
    df = search(n_configs=5)
    assert effects(df, "val_accuracy", ["x1", "x2"], strategy="bayesian") is None


@pytest.mark.parametrize("kind", ["anova", "importance"])
def test_figure_draws_and_caption_names_the_verdicts(kind, searched):
    eff = effects(grid(), "val_accuracy", ["a", "b"]) if kind == "anova" else searched[1]
    data = gather_effects(eff)
    fig = effects_figure(data)
    (width, height), ncols = effects_figure_size(data)
    assert len(fig.axes) == ncols == (2 if kind == "anova" else 1)
    assert width > 0 and height > 0
    caption = caption_effects(data)
    assert "Beyond seed noise: " + ("a." if kind == "anova" else "x1.") in caption
    assert caption.endswith("Within noise: " + ("b" if kind == "anova" else "x2, act"))
    if kind == "anova":
        assert "± one seed-noise std" in caption
        assert fig.axes[0].get_title().startswith("a — ")


def test_figure_caps_panels_and_says_what_it_left_out():
    rng = np.random.default_rng(0)
    names = [f"p{i}" for i in range(MAX_PANELS + 2)]
    rows = []
    for c, values in enumerate(np.ndindex(*(2,) * len(names))):
        for seed in range(2):
            row = dict(zip(names, values, strict=True))
            row.update(config_id=f"c{c}", seed=seed, fold=0, status="ok")
            row["val_accuracy"] = 0.8 + 0.05 * values[0] + rng.normal(0, 0.01)
            rows.append(row)
    eff = effects(pd.DataFrame(rows), "val_accuracy", names)
    data = gather_effects(eff)
    assert len(data.shown) == MAX_PANELS and len(data.left_out) == 2
    from matplotlib.figure import Figure

    axes = Figure().subplots(1, MAX_PANELS)
    assert len(draw_effects(data, axes)) == MAX_PANELS
    assert "Not drawn: 2 hyperparameters with smaller shares" in caption_effects(data)


def test_a_table_that_is_not_a_grid_gets_importance_and_says_why():
    rng = np.random.default_rng(3)
    rows = []
    for i in range(30):  # 30 configurations of a 30 x 30 space: far from a grid
        x1, x2 = int(rng.integers(0, 1000)), int(rng.integers(0, 1000))
        for seed in range(2):
            v = 0.5 + 0.0004 * x1 + rng.normal(0, 0.01)
            rows.append(
                {"x1": x1, "x2": x2, "config_id": f"c{i}", "seed": seed, "status": "ok", "m": v}
            )
    eff = effects(pd.DataFrame(rows), "m", ["x1", "x2"], strategy="grid")
    assert eff.kind == "importance"
    assert any("do not form a grid" in t for t in eff.text)
    assert eff.beyond == ["x1"]


def test_many_configurations_are_subsampled_and_the_text_says_so(monkeypatch):
    import nnsweep.report._importance as module

    monkeypatch.setattr(module, "MAX_IMPORTANCE_CONFIGS", 12)
    rng = np.random.default_rng(4)
    rows = [
        {"x": float(x), "config_id": f"c{i}", "seed": s, "status": "ok", "m": x + rng.normal()}
        for i, x in enumerate(rng.uniform(0, 10, 40))
        for s in range(2)
    ]
    eff = effects(pd.DataFrame(rows), "m", ["x"], strategy="random")
    assert eff.n_configs == 12
    assert any("a random 12 of the 40 configurations" in t for t in eff.text)


def test_runs_that_all_score_the_same_have_no_effects_to_apportion():
    df = grid({k: [0.9, 0.9, 0.9] for k in CELLS})
    assert effects(df, "val_accuracy", ["a", "b"]) is None


def test_one_unstable_configuration_does_not_widen_every_bar():
    """Issue 24, item 2: the bars' seed noise is pooled over the stable configurations, the
    unstable one is named, and no interval leaves the metric's range."""
    cells = {**CELLS, (1, "x"): [0.30, 0.97, 0.60]}  # seeds that disagree wildly
    eff = effects(grid(cells), "val_accuracy", ["a", "b"])
    stable = [v for k, v in cells.items() if k != (1, "x")]
    pooled = math.sqrt(sum(np.var(v, ddof=1) * (len(v) - 1) for v in stable) / (3 * 2))
    two = eff.rows[0].levels.iloc[1]  # a=2: six runs of stable configurations
    half = st.t.ppf(0.975, 6) * pooled / math.sqrt(6)
    assert two["ci_high"] - two["mean"] == pytest.approx(half, rel=1e-9)
    assert eff.noise_std > 10 * pooled  # the residual, which the tests keep, holds the outlier
    assert any("1 configuration flagged unstable (a=1 b=x)" in t for t in eff.text), eff.text
    for row in eff.rows:
        assert (row.levels["ci_low"] >= 0).all() and (row.levels["ci_high"] <= 1).all()
