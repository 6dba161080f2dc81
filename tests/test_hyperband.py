"""Hyperband that continues: Keras Tuner's brackets, trained as packs that prune inside."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from nnsweep import Float, Int, Sweep, load_results, run_sweep
from nnsweep.definition.pruning import PRUNED, parse_rungs
from nnsweep.strategies.hyperband import bracket_plan, rungs_of


@pytest.mark.parametrize("max_epochs", [1, 2, 3, 4, 9, 10, 27, 30, 81])
def test_the_brackets_are_keras_tuners(max_epochs):
    kt = pytest.importorskip("keras_tuner")
    oracle = kt.oracles.HyperbandOracle(
        objective=kt.Objective("score", "max"), max_epochs=max_epochs, factor=3
    )
    brackets = oracle._get_num_brackets()
    expected = []
    for b in reversed(range(brackets)):
        sizes = [oracle._get_size(b, r) for r in range(b + 1)]
        budgets = [oracle._get_epochs(b, r) for r in range(b + 1)]
        expected.append((sizes[0], budgets, sizes))
    assert bracket_plan(max_epochs) == expected


def test_rungs_keep_each_rounds_size_and_scale_for_a_short_bracket():
    n, budgets, sizes = bracket_plan(9)[0]
    assert (n, budgets, sizes) == (9, [1, 3, 9], [9, 3, 1])
    assert rungs_of(budgets, sizes, 9) == {1: 3, 3: 1}
    assert rungs_of(budgets, sizes, 5) == {1: 2, 3: 1}  # a bracket cut short by max_trials


def _hyperband(**kw) -> Sweep:
    base = {
        "name": "hb",
        "data": "digits",
        "model": "mlp",
        "space": {
            "hidden_units": Int(4, 64, step=4),
            "learning_rate": Float(1e-4, 3e-2, log=True),
            "epochs": 9,
            "batch_size": 64,
        },
        "seeds": 1,
        "strategy": "hyperband",
        "max_trials": 14,
    }
    base.update(kw)
    return Sweep(**base)


def test_a_promoted_configuration_continues_from_its_own_weights(tmp_path):
    sweep = _hyperband()
    summary = run_sweep(sweep, results=tmp_path / "hb")
    df = load_results(tmp_path / "hb" / "hb")
    # Brackets of 9 and 5 configurations (Keras Tuner's for 9 epochs): 14 configurations,
    # each trained once (one row a seed), never again for a larger budget.
    assert df["config_id"].nunique() == 14 and len(df) == 14
    assert set(df["epochs"]) == {9}
    survivors = df[df["status"] == "ok"]
    stopped = df[df["status"] == "pruned"]
    assert (survivors["epochs_run"] == 9).all()
    # Bracket 1 (9 configurations) keeps 3 at epoch 1 and 1 at epoch 3; bracket 2 (5)
    # keeps 2 at epoch 3 (rank only: one seed). Each stop is at one of its rungs.
    assert set(stopped["epochs_run"]) <= {1, 3}
    assert len(survivors) == 1 + 2
    for row in stopped.itertuples():
        assert parse_rungs(row.rungs)[-1] == (row.epochs_run, PRUNED)
        assert "rank only" in row.pruned_by or "one-sided p" in row.pruned_by
    assert sum(df["epochs_run"]) < 14 * 9 / 2
    assert any("hyperband: 2 bracket(s)" in n for n in summary.notes)
    # What a survivor's row says is what training it straight through gives: it went on
    # from its own weights, as if never judged.
    straight = Sweep(
        name="alone", data="digits", model="mlp", seeds=1,
        space={k: [v] if k != "epochs" else v for k, v in _params(survivors.iloc[0]).items()},
    )  # fmt: skip
    run_sweep(straight, results=tmp_path / "alone")
    alone = load_results(tmp_path / "alone" / "alone").iloc[0]
    for key in ("val_accuracy", "val_loss", "test_accuracy", "loss"):
        assert alone[key] == pytest.approx(survivors.iloc[0][key], rel=1e-5), key


def _params(row) -> dict:
    return {
        "hidden_units": int(row["hidden_units"]),
        "learning_rate": float(row["learning_rate"]),
        "epochs": 9,
        "batch_size": 64,
    }


def test_hyperband_resumes_to_the_same_rows(tmp_path):
    sweep = _hyperband()
    run_sweep(sweep, results=tmp_path / "a")
    # Stopped after the first bracket (9 trials): the resumed run draws the same
    # configurations for the second and judges them the same.
    run_sweep(sweep, results=tmp_path / "b", max_trials=9)
    assert len(load_results(tmp_path / "b" / "hb")) == 9
    run_sweep(sweep, results=tmp_path / "b")
    cols = ["trial_id", "status", "epochs_run", "rungs", "pruned_by"]
    a = load_results(tmp_path / "a" / "hb")[cols].sort_values("trial_id").reset_index(drop=True)
    b = load_results(tmp_path / "b" / "hb")[cols].sort_values("trial_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_with_seeds_a_configuration_within_noise_is_not_stopped_on_rank(tmp_path):
    sweep = replace(_hyperband(max_trials=9), seeds=2)
    run_sweep(sweep, results=tmp_path)
    df = load_results(tmp_path / "hb")
    assert len(df) == 18 and df.groupby("config_id").size().eq(2).all()
    # Seeds of a configuration stop together, on evidence that is never rank alone.
    for _, rows in df.groupby("config_id"):
        assert rows["status"].nunique() == 1 and rows["epochs_run"].nunique() == 1
    stopped = df[df["status"] == "pruned"]
    assert len(stopped) and not stopped["pruned_by"].str.contains("rank only").any()
