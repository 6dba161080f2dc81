"""Aggregation over seeds: exact numbers on hand-made tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nnsweep.errors import ResultsError
from nnsweep.report.stats import (
    check_metric,
    default_metric,
    describe,
    failures,
    flag_unstable,
    fmt_num,
    fmt_value,
    metric_direction,
    p_text,
    param_columns,
    summarize,
    verdict,
    welch,
    welch_arrays,
)

T975_DOF2 = 4.302652729749462  # Student t, 97.5 % quantile, 2 degrees of freedom


def trials(rows: list[tuple]) -> pd.DataFrame:
    """(config_id, hidden_units, seed, status, test_accuracy) rows as a trials table."""
    df = pd.DataFrame(
        rows, columns=["config_id", "hidden_units", "seed", "status", "test_accuracy"]
    )
    df.insert(0, "trial_id", df["config_id"] + "-s" + df["seed"].astype(str))
    df["fold"] = 0
    df["error"] = np.where(df["status"] == "ok", "", "ValueError: boom")
    return df


@pytest.fixture
def table() -> pd.DataFrame:
    return trials(
        [
            ("a", 4, 0, "ok", 0.80),
            ("a", 4, 1, "ok", 0.90),
            ("a", 4, 2, "ok", 1.00),
            ("b", 16, 0, "ok", 0.95),
            ("b", 16, 1, "failed", np.nan),
            ("b", 16, 2, "diverged", np.nan),
            ("c", 64, 0, "ok", 0.50),
            ("c", 64, 1, "ok", 0.60),
            ("c", 64, 2, "ok", np.nan),  # an ok row without the value is not counted
        ]
    )


def test_summarize_mean_std_and_t_interval_exactly(table: pd.DataFrame) -> None:
    s = summarize(table, "test_accuracy", by=["hidden_units"])
    assert list(s.columns) == [
        "config_id",
        "hidden_units",
        "n",
        "mean",
        "std",
        "ci_low",
        "ci_high",
        "ci_clipped",
    ]
    a = s.set_index("config_id").loc["a"]
    assert a["n"] == 3
    assert a["mean"] == pytest.approx(0.9, abs=1e-12)
    assert a["std"] == pytest.approx(0.1, abs=1e-12)
    half = T975_DOF2 * 0.1 / math.sqrt(3)
    assert a["ci_low"] == pytest.approx(0.9 - half, abs=1e-9)
    assert 0.9 + half > 1 and a["ci_high"] == 1.0 and a["ci_clipped"]  # an accuracy's range


def test_summarize_counts_only_ok_runs_with_a_value(table: pd.DataFrame) -> None:
    s = summarize(table, "test_accuracy", by=["hidden_units"]).set_index("config_id")
    assert s.loc["b", "n"] == 1 and s.loc["b", "mean"] == pytest.approx(0.95)
    assert math.isnan(s.loc["b", "std"]) and math.isnan(s.loc["b", "ci_low"])
    assert s.loc["c", "n"] == 2 and s.loc["c", "mean"] == pytest.approx(0.55)
    assert list(s.index) == ["a", "b", "c"]  # first appearance, as in the table


def test_summarize_default_by_uses_param_columns(table: pd.DataFrame) -> None:
    assert param_columns(table) == ["hidden_units"]
    pd.testing.assert_frame_equal(
        summarize(table, "test_accuracy"),
        summarize(table, "test_accuracy", by=["hidden_units"]),
    )


def test_summarize_without_keys_is_one_group() -> None:
    df = pd.DataFrame({"status": ["ok", "ok"], "val_loss": [1.0, 3.0]})
    s = summarize(df, "val_loss", by=[])
    assert len(s) == 1 and s["n"].iloc[0] == 2 and s["mean"].iloc[0] == 2.0


def test_welch_matches_hand_computation() -> None:
    r = welch([1, 2, 3], [4, 5, 6, 7])
    # se^2 = 1/3 + (5/3)/4 = 0.75; t = -3.5 / sqrt(0.75)
    assert r.t == pytest.approx(-3.5 / math.sqrt(0.75), rel=1e-12)
    dof = 0.75**2 / ((1 / 3) ** 2 / 2 + (5 / 12) ** 2 / 3)
    assert r.dof == pytest.approx(dof, rel=1e-12)
    assert r.p == pytest.approx(0.01007694334798886, rel=1e-9)


def test_welch_edge_cases() -> None:
    assert welch([1, 1], [1, 1]).p == 1.0  # identical runs: no difference
    assert welch([1, 1], [2, 2]).p == 0.0  # no spread, different means: certain
    assert math.isnan(welch([1.0], [2.0, 3.0]).p)  # one run: cannot tell
    _, _, p = welch_arrays([1.0, 1.0], [0.0, 0.1], [3, 3], 1.0, 0.1, 3)
    assert p[0] == pytest.approx(1.0)


def test_describe_ranks_and_tests_against_the_best() -> None:
    df = trials(
        [
            ("a", 4, 0, "ok", 0.80),
            ("a", 4, 1, "ok", 0.81),
            ("a", 4, 2, "ok", 0.82),
            ("b", 16, 0, "ok", 0.95),
            ("b", 16, 1, "ok", 0.96),
            ("b", 16, 2, "ok", 0.97),
            ("c", 64, 0, "ok", 0.96),
            ("c", 64, 1, "ok", 0.97),
            ("c", 64, 2, "ok", 0.98),
            ("d", 128, 0, "ok", 0.5),
        ]
    )
    t = describe(df, "test_accuracy", ["hidden_units"], "max")
    assert list(t["config_id"]) == ["c", "b", "a", "d"]
    assert list(t["rank"]) == [1, 2, 3, 4]
    # b vs c: equal std 0.01, n=3: t = 0.01 / sqrt(2e-4/3), dof = 4
    expected = welch([0.95, 0.96, 0.97], [0.96, 0.97, 0.98]).p
    assert t["p_vs_best"].iloc[1] == pytest.approx(expected, rel=1e-9)
    assert t["within_noise"].tolist()[:3] == [True, True, False]
    assert t["within_noise"].iloc[3] is pd.NA  # one run
    assert t["min"].iloc[0] == 0.96 and t["max"].iloc[0] == 0.98
    low = describe(df, "test_accuracy", ["hidden_units"], "min")
    assert list(low["config_id"]) == ["d", "a", "b", "c"]


def test_unstable_flags_seeds_that_disagree_wildly() -> None:
    df = trials(
        [
            ("a", 4, 0, "ok", 0.77),
            ("a", 4, 1, "ok", 0.96),
            ("a", 4, 2, "ok", 0.95),
            ("b", 16, 0, "ok", 0.90),
            ("b", 16, 1, "ok", 0.91),
            ("b", 16, 2, "ok", 0.905),
        ]
    )
    t = describe(df, "test_accuracy", ["hidden_units"], "max")
    assert dict(zip(t["config_id"], t["unstable"], strict=True)) == {"a": True, "b": False}
    # An unstable configuration is neither within nor beyond noise of the best.
    assert t.set_index("config_id").loc["a", "within_noise"] is pd.NA
    assert not describe(df, "test_accuracy", ["hidden_units"], flag=False)["unstable"].any()


def test_unstable_relative_rule_for_unbounded_metrics() -> None:
    t = pd.DataFrame(
        {
            "n": [3, 3, 3, 3, 3, 1],
            "mean": [2.5, 2.6, 2.7, 2.5, 2.6, 9.0],
            "std": [0.1, 0.1, 0.1, 0.35, 0.41, np.nan],
            "min": [2.4, 2.5, 2.6, 2.2, 2.2, 9.0],
            "max": [2.6, 2.7, 2.8, 2.8, 3.0, 9.0],
        }
    )
    # median std 0.1: 0.41 > 4 x 0.1 is flagged, 0.35 is not, a single run never is.
    assert flag_unstable(t, "test_mae").tolist() == [False, False, False, False, True, False]
    # A span of 0.8 in MAE is no absolute problem: that rule is for [0, 1] metrics.
    t2 = t.assign(std=[0.1, 0.1, 0.1, 0.1, 0.1, np.nan])
    assert not flag_unstable(t2, "test_mae").any()


def test_unstable_ignores_rounding_in_near_deterministic_sweeps() -> None:
    t = pd.DataFrame(
        {
            "n": [3, 3, 3],
            "mean": [1.0, 1.0, 1.0],
            "std": [0.0, 0.0, 1e-7],
            "min": [1.0, 1.0, 1.0],
            "max": [1.0, 1.0, 1.0 + 2e-7],
        }
    )
    assert not flag_unstable(t, "val_loss").any()


def test_verdict_in_plain_words() -> None:
    beyond = trials(
        [("a", 4, s, "ok", v) for s, v in enumerate([0.80, 0.81, 0.82])]
        + [("b", 16, s, "ok", v) for s, v in enumerate([0.95, 0.96, 0.97])]
    )
    v = verdict(
        describe(beyond, "test_accuracy", ["hidden_units"]),
        "test_accuracy",
        ["hidden_units"],
        "max",
        "test accuracy",
    )
    assert v.best == "hidden_units=16" and v.runner_up == "hidden_units=4"
    assert v.difference == pytest.approx(0.15)
    assert v.p == pytest.approx(welch([0.80, 0.81, 0.82], [0.95, 0.96, 0.97]).p)
    assert v.beyond_noise is True
    assert "beyond seed noise" in v.text and "hidden_units=16, 0.960" in v.text

    within = trials(
        [("a", 4, s, "ok", v) for s, v in enumerate([0.95, 0.96, 0.97])]
        + [("b", 16, s, "ok", v) for s, v in enumerate([0.955, 0.965, 0.975])]
    )
    v = verdict(
        describe(within, "test_accuracy", ["hidden_units"]),
        "test_accuracy",
        ["hidden_units"],
        "max",
    )
    assert v.beyond_noise is False and "within seed noise" in v.text

    single = trials([("a", 4, 0, "ok", 0.9), ("b", 16, 0, "ok", 0.8)])
    v = verdict(
        describe(single, "test_accuracy", ["hidden_units"]),
        "test_accuracy",
        ["hidden_units"],
        "max",
    )
    assert v.beyond_noise is None and "cannot tell" in v.text

    none = trials([("a", 4, 0, "failed", np.nan)])
    v = verdict(
        describe(none, "test_accuracy", ["hidden_units"]), "test_accuracy", ["hidden_units"], "max"
    )
    assert v.text == "no successful runs"


def test_failures_are_listed_not_dropped(table: pd.DataFrame) -> None:
    f = failures(table, ["hidden_units"])
    assert list(f["trial_id"]) == ["b-s1", "b-s2"]
    assert list(f["status"]) == ["failed", "diverged"]
    assert list(f.columns) == ["trial_id", "hidden_units", "seed", "fold", "status", "error"]


def test_metric_choice_and_direction() -> None:
    df = pd.DataFrame(columns=["val_loss", "val_mae", "best_val_loss", "test_loss", "test_mae"])
    info = {"objective": "val_loss", "direction": "min", "metric": "mae"}
    assert default_metric(df, info) == "test_mae"
    no_test = df.drop(columns=["test_mae", "test_loss"])
    assert default_metric(no_test, info) == "val_loss"
    assert (
        metric_direction("val_accuracy", {"objective": "val_accuracy", "direction": "max"}) == "max"
    )
    assert metric_direction("test_mae") == "min"
    assert metric_direction("test_accuracy") == "max"
    assert metric_direction("fit_seconds") == "min"
    with pytest.raises(ResultsError, match=r"'test_f1'.*val_loss, val_mae, best_val_loss"):
        check_metric(df, "test_f1")


def test_formatting_helpers() -> None:
    assert fmt_num(0.95999) == "0.960"
    assert fmt_num(2.534) == "2.53"
    assert fmt_num(1234.4) == "1,234"
    assert fmt_num(0.00321) == "0.0032"
    assert fmt_num(float("nan")) == "n/a"
    assert fmt_value(64.0) == "64" and fmt_value(0.001) == "0.001" and fmt_value("adam") == "adam"
    assert p_text(0.0004) == "p<0.001" and p_text(0.0123) == "p=0.012"


# -- choosing: one rule for report, overlay, show, best, diff and confirm ---------------

# (hidden_units, optimizer) -> (validation, test) means of the search seeds. The validation
# objective chooses (32, sgd) overall and adam, adam, sgd at 8, 16, 32 units; the test split
# would choose (32, adam) and sgd, sgd, adam.
CHOICE = {
    (8, "adam"): (0.80, 0.70),
    (8, "sgd"): (0.70, 0.80),
    (16, "adam"): (0.85, 0.75),
    (16, "sgd"): (0.84, 0.86),
    (32, "adam"): (0.88, 0.95),
    (32, "sgd"): (0.90, 0.85),
}
# nnsweep confirm's fresh seeds, pooled with the search rows, would put (16, sgd) first
# overall (0.93) and at 16 units, and (32, sgd) behind (32, adam).
CONFIRMED = [(16, "sgd", 0.99), (32, "sgd", 0.50)]


def write_choice(root, name: str, *, shift: float = 0.0, sweep_json: bool = True):
    """A sweep folder whose test-best, pooled-best and validation-best configurations differ."""
    import json

    rows = []
    for (units, opt), (val, test) in CHOICE.items():
        for seed, noise in enumerate((-0.01, 0.0, 0.01)):
            rows.append((units, opt, seed, "search", val + noise + shift, test + noise + shift))
    for units, opt, val in CONFIRMED:
        rows += [(units, opt, seed, "confirm", val, val) for seed in range(3, 8)]
    df = pd.DataFrame(
        rows,
        columns=["hidden_units", "optimizer", "seed", "phase", "val_accuracy", "test_accuracy"],
    )
    df.insert(0, "config_id", "c" + df["hidden_units"].astype(str) + df["optimizer"])
    df.insert(0, "trial_id", df["config_id"] + "-s" + df["seed"].astype(str) + "-f0")
    df.insert(5, "fold", 0)
    df.insert(7, "status", "ok")
    df.insert(8, "error", "")
    folder = root / name
    folder.mkdir()
    df.to_csv(folder / "trials.csv", index=False)
    if sweep_json:
        info = {
            "name": name,
            "swept": ["hidden_units", "optimizer"],
            "objective": "val_accuracy",
            "direction": "max",
            "metric": "accuracy",
            "seeds": [0, 1, 2],
        }
        (folder / "sweep.json").write_text(json.dumps(info))
    return folder


@pytest.mark.parametrize("sweep_json", [True, False], ids=["sweep.json", "table-only"])
def test_every_command_chooses_on_validation_over_the_search_rows(tmp_path, capsys, sweep_json):
    from nnsweep.cli import main
    from nnsweep.diff import diff_sweeps, format_diff
    from nnsweep.report import write_comparison, write_report
    from nnsweep.report._plots.comparison import gather_comparison
    from nnsweep.report.stats import rank_configurations
    from nnsweep.run.best import best_configuration
    from nnsweep.run.confirm import top_configs
    from nnsweep.store.results import load_results, read_rows

    folder = write_choice(tmp_path, "mlp", sweep_json=sweep_json)
    write_choice(tmp_path, "cnn", shift=0.02, sweep_json=sweep_json)
    df = load_results(folder)
    ranking = rank_configurations(df)  # the one rule; without sweep.json too
    assert ranking.metric == "val_accuracy" and ranking.direction == "max"
    assert list(ranking.table["config_id"][:3]) == ["c32sgd", "c32adam", "c16adam"]
    assert ranking.best["config_id"] == "c32sgd"

    assert best_configuration("mlp", results=tmp_path).config_id == "c32sgd"
    assert top_configs(read_rows(folder / "trials.csv"), "val_accuracy", "max", 1) == ["c32sgd"]
    result = write_report("mlp", results=tmp_path)
    assert result.metric == "val_accuracy"
    assert result.verdict.best == "hidden_units=32, optimizer=sgd"
    with pytest.raises(SystemExit) as done:
        main(["show", "mlp", "--results", str(tmp_path)])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "best configurations by val_accuracy" in out
    first = out.split("over seeds and folds:\n")[1].splitlines()[1].split()
    assert first[:2] == ["32", "sgd"]
    with pytest.raises(SystemExit) as done:
        main(["best", "mlp", "--results", str(tmp_path)])
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("best of mlp by val_accuracy: ")
    assert "hidden_units=32, optimizer=sgd" in out

    d = diff_sweeps("mlp", "cnn", results=tmp_path)
    assert d.chosen == ("hidden_units=32, optimizer=sgd", "hidden_units=32, optimizer=sgd")
    assert "chosen on val_accuracy: mlp hidden_units=32, optimizer=sgd; cnn the same" in (
        format_diff(d)
    )

    # The overlay: at each width, the configuration the validation objective ranks first
    # (its test accuracy is what is drawn); the headline is each sweep's chosen one.
    frames = {n: load_results(tmp_path / n) for n in ("mlp", "cnn")}
    data = gather_comparison(frames, "hidden_units", "test_accuracy")
    kept = data.runs.drop_duplicates(["sweep", "hidden_units"])
    where = kept["sweep"] + kept["hidden_units"].astype(str)
    assert dict(zip(where, kept["config"], strict=True)) == {
        "mlp8": "c8adam", "mlp16": "c16adam", "mlp32": "c32sgd",
        "cnn8": "c8adam", "cnn16": "c16adam", "cnn32": "c32sgd",
    }  # fmt: skip
    assert len(data.runs) == 2 * 3 * 3  # the search seeds only
    path = write_comparison(["mlp", "cnn"], results=tmp_path)
    assert path.name == "mlp_vs_cnn_test_accuracy_vs_hidden_units.png"
    caption = path.with_suffix(".txt").read_text()
    assert caption.startswith(
        "test accuracy of the configuration chosen on validation accuracy: "
        "cnn 0.870 at 32 units; mlp 0.850 at 32 units"
    ), caption


def test_intervals_stay_inside_the_metrics_range_and_say_where_they_were_cut():
    """Issue 24, item 2: the quickstart's 4-unit row read [0.306, 1.05] for an accuracy."""
    from nnsweep.report.stats import metric_bounds, summarize

    rows = [
        {"config_id": c, "u": u, "seed": s, "status": "ok", "val_accuracy": v, "val_loss": loss}
        for c, u, vals in (("a", 4, [0.40, 0.95]), ("b", 8, [0.951, 0.952]))
        for s, (v, loss) in enumerate(zip(vals, (0.01, 3.0), strict=True))
    ]
    df = pd.DataFrame(rows)
    acc = summarize(df, "val_accuracy", by=["u"]).set_index("u")
    assert acc.loc[4, "ci_high"] == 1.0 and acc.loc[4, "ci_low"] == 0.0
    assert acc["ci_clipped"].tolist() == [True, False]
    loss = summarize(df, "val_loss", by=["u"]).set_index("u")
    assert (loss["ci_low"] >= 0).all() and loss["ci_clipped"].all()
    assert metric_bounds("best_val_accuracy") == (0.0, 1.0)
    assert metric_bounds("test_mae") == (0.0, math.inf)
    assert metric_bounds("val_custom") == (-math.inf, math.inf)


def test_the_report_table_says_where_an_interval_was_cut():
    from nnsweep.report._html import _formatted
    from nnsweep.report.stats import describe

    rows = [
        {"config_id": c, "u": u, "seed": s, "status": "ok", "val_accuracy": v}
        for c, u, vals in (("a", 4, [0.40, 0.95]), ("b", 8, [0.951, 0.952]))
        for s, v in enumerate(vals)
    ]
    shown = _formatted(
        describe(pd.DataFrame(rows), "val_accuracy", by=["u"]), ["u"], "val_accuracy"
    )
    cut = dict(zip(shown["u"], shown["95% CI"], strict=True))
    assert cut["4"] == "[0.000, 1.00] (cut at the range)" and "cut" not in cut["8"]
