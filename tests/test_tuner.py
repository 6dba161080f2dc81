"""Search strategies through Keras Tuner's oracles: mapping, rows per seed, resume."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from nnsweep import Choice, Float, Int, Sweep, load_history, load_results, run_sweep
from nnsweep.errors import CorruptResultsError, ResultsError, SweepDefinitionError
from nnsweep.strategies.tuner import (
    TUNER_DIR,
    hyperparameters,
    objective_value,
    params_from_values,
)


def _search(strategy: str, max_trials: int = 3, **space) -> Sweep:
    base = {
        "hidden_units": Int(8, 32, step=8),
        "depth": Int(1, 2),
        "dropout": Float(0.0, 0.5),
        "learning_rate": Float(1e-3, 3e-2, log=True),
        "epochs": 2,
        "batch_size": 128,
    }
    base.update(space)
    return Sweep(
        name=strategy,
        data="digits",
        model="mlp",
        space=base,
        seeds=2,
        strategy=strategy,
        max_trials=max_trials,
    )


def test_the_space_maps_to_keras_tuner_and_back():
    sweep = _search("random", widths=Choice([(16,), (32, 16)]), activation=["relu", "tanh"])
    hp = hyperparameters(sweep)
    names = {p.name for p in hp.space}
    # Fixed entries stay out of the tuner's space; tuples travel as an index.
    assert names == {"hidden_units", "depth", "dropout", "learning_rate", "widths__index",
                     "activation"}  # fmt: skip
    lr = next(p for p in hp.space if p.name == "learning_rate")
    assert (lr.min_value, lr.max_value, lr.sampling) == (1e-3, 3e-2, "log")
    values = {"hidden_units": 24, "depth": 2, "dropout": 0.1, "learning_rate": 0.01,
              "widths__index": 1, "activation": "tanh"}  # fmt: skip
    params = params_from_values(sweep, values)
    assert params["widths"] == (32, 16) and params["activation"] == "tanh"
    assert params["epochs"] == 2 and params["hidden_units"] == 24


def test_objective_value_is_the_mean_best_over_trained_rows():
    rows = [
        {"status": "ok", "best_val_accuracy": "0.5"},
        {"status": "ok", "best_val_accuracy": 0.7},
        {"status": "failed", "best_val_accuracy": ""},
        {"status": "diverged", "best_val_accuracy": 0.99},
    ]
    assert objective_value(rows, "val_accuracy") == pytest.approx(0.6)
    assert objective_value(rows[2:3], "val_accuracy") != objective_value(rows[2:3], "val_accuracy")


def test_hyperband_needs_a_fixed_epoch_budget_and_a_search_something_to_search():
    with pytest.raises(SweepDefinitionError, match=r"space\['epochs'\] must be fixed"):
        _search("hyperband", epochs=[2, 4])
    with pytest.raises(SweepDefinitionError, match="nothing to search for strategy 'random'"):
        Sweep(name="x", space={"hidden_units": 8}, strategy="random", max_trials=2)


@pytest.mark.parametrize("strategy", ["random", "bayesian"])
def test_a_search_runs_to_max_trials_with_one_row_per_seed(tmp_path, strategy):
    sweep = _search(strategy, max_trials=3)
    summary = run_sweep(sweep, results=tmp_path)
    df = load_results(strategy, results=tmp_path)
    assert len(df) == 3 * 2 and (df["status"] == "ok").all()
    assert all(sorted(g) == [0, 1] for _, g in df.groupby("config_id")["seed"])
    assert df["config_id"].nunique() == 3
    # Same columns as a grid sweep, and per-epoch history for every row.
    grid = Sweep(name="g", data="digits", space={"hidden_units": [8], "epochs": 2}, seeds=1)
    run_sweep(grid, results=tmp_path)
    shared = [c for c in load_results("g", results=tmp_path).columns if c != "hidden_units"]
    assert set(shared) <= set(df.columns)
    hist = load_history(strategy, results=tmp_path)
    assert len(hist) == 6 * 2
    # The oracle heard one score per configuration: the mean best validation accuracy.
    folder = tmp_path / strategy / TUNER_DIR
    states = [json.loads(p.read_text()) for p in folder.glob("*/trial.json")]
    assert len(states) == 3 and {s["status"] for s in states} == {"COMPLETED"}
    for state in states:
        values = state["hyperparameters"]["values"]
        rows = df[(df["dropout"] - values["dropout"]).abs() < 1e-12]
        assert len(rows) == 2 and (rows["hidden_units"] == values["hidden_units"]).all()
        assert state["score"] == pytest.approx(rows["best_val_accuracy"].mean())
    assert summary.remaining is None
    # Done means done: a second run trains nothing.
    assert run_sweep(sweep, results=tmp_path).rows == []


def test_a_search_draws_named_models_and_each_row_carries_its_settings(tmp_path):
    models = {
        "narrow": ("mlp", {"hidden_units": 8}),
        "conv": ("cnn", {"filters": (4,), "dense_units": 0}),
    }
    space = {"dropout": Float(0.0, 0.5), "epochs": 1, "batch_size": 128}
    sweep = Sweep(name="named", data="digits", model=models, space=space, seeds=2,
                  strategy="random", max_trials=4)  # fmt: skip
    assert {p.name for p in hyperparameters(sweep).space} == {"model", "dropout"}
    run_sweep(sweep, results=tmp_path)
    df = load_results("named", results=tmp_path)
    assert len(df) == 8 and (df["status"] == "ok").all()
    assert list(df.columns[2:7]) == ["model", "hidden_units", "filters", "dense_units", "dropout"]
    narrow, conv = df[df["model"] == "narrow"], df[df["model"] == "conv"]
    assert len(narrow) and len(conv)  # the seeded draws reach both
    assert (narrow["hidden_units"] == 8).all() and narrow["filters"].isna().all()
    assert (conv["filters"] == 4).all() and (conv["dense_units"] == 0).all()


def test_an_interrupted_search_resumes_without_duplicates_or_losses(tmp_path):
    sweep = _search("random", max_trials=3)
    # Stop in the middle of the second tuner trial: one of its two seeds is written.
    first = run_sweep(sweep, results=tmp_path, max_trials=3)
    assert len(first.rows) == 3
    oracle = json.loads((tmp_path / "random" / TUNER_DIR / "oracle.json").read_text())
    assert oracle["ongoing_trials"]  # the half-done tuner trial is still open
    second = run_sweep(sweep, results=tmp_path)
    df = load_results("random", results=tmp_path)
    assert len(second.rows) == 3 and len(df) == 6
    assert not df["trial_id"].duplicated().any()
    assert df.groupby("config_id").size().eq(2).all()
    # The interrupted configuration was finished, not replaced by a new one.
    first_ids = {r["config_id"] for r in first.rows}
    assert first_ids <= set(df["config_id"]) and df["config_id"].nunique() == 3


def test_a_failing_configuration_is_recorded_and_the_search_goes_on(tmp_path, write_sweep):
    path = write_sweep(
        """
        from nnsweep import Sweep, Choice
        from nnsweep.training.models import build_model

        def build(params, spec):
            if params["units"] == 13:
                raise ValueError("13 is unlucky")
            return build_model("mlp", {"hidden_units": params["units"]}, spec)

        sweep = Sweep(name="unlucky", data="digits", model=build, seeds=1,
                      space={"units": Choice([8, 13, 16]), "epochs": 1},
                      strategy="random", max_trials=3)
        """
    )
    from nnsweep import load_sweep

    run_sweep(load_sweep(path), results=tmp_path)
    df = load_results("unlucky", results=tmp_path)
    assert sorted(df["units"]) == [8, 13, 16]
    failed = df[df["status"] == "failed"]
    assert list(failed["units"]) == [13] and "unlucky" in failed["error"].iloc[0]
    folder = tmp_path / "unlucky" / TUNER_DIR
    states = [json.loads(p.read_text()) for p in folder.glob("*/trial.json")]
    assert sorted(s["status"] for s in states) == ["COMPLETED", "COMPLETED", "FAILED"]


def _drawn(sweep: Sweep, folder: Path, n: int = 4) -> list[dict]:
    import tempfile

    from nnsweep.strategies.tuner import make_oracle, open_local_oracle

    oracle = make_oracle(sweep, "val_accuracy", "max")
    open_local_oracle(oracle, Path(tempfile.mkdtemp(dir=folder)))
    return [oracle.create_trial(f"t{i}").hyperparameters.values for i in range(n)]


def test_search_seed_sets_the_draws_and_leaves_the_validation_split(tmp_path):
    def search(seed):
        return Sweep(name="s", space={"dropout": Float(0.0, 0.5), "hidden_units": Int(4, 64),
                                      "epochs": 1}, strategy="random", max_trials=2,
                     search_seed=seed)  # fmt: skip

    a, b, again = search(7), search(8), search(7)
    assert _drawn(a, tmp_path) == _drawn(again, tmp_path) != _drawn(b, tmp_path)
    # None keeps the seed folders were drawn with before it could be set.
    assert _drawn(search(None), tmp_path) == _drawn(search(1), tmp_path)
    # The split is split_seed's alone; the fingerprint says which draws a folder holds.
    fa, fb = a.fingerprint(), b.fingerprint()
    assert fa["split_seed"] == fb["split_seed"] == 0
    assert (fa["search_seed"], fb["search_seed"]) == (7, 8)
    assert search(None).to_json()["search_seed"] == 1
    # Trained: other configurations, each judged on the same validation rows.
    rows = {}
    for seed in (7, 8):
        run_sweep(search(seed), results=tmp_path / str(seed))
        rows[seed] = load_results("s", results=tmp_path / str(seed))
    assert set(rows[7]["config_id"]).isdisjoint(rows[8]["config_id"])
    from nnsweep.data import load_dataset

    data = load_dataset("digits")
    splits = [data.split(s.validation_split, s.split_seed, s.cv, 0) for s in (a, b)]
    assert (splits[0].fit_idx == splits[1].fit_idx).all()


def test_search_seed_seeds_hyperband_and_is_refused_for_a_grid():
    from nnsweep.strategies.hyperband import HyperbandStrategy

    def draws(seed):
        sweep = Sweep(name="h", space={"dropout": Float(0.0, 0.5), "epochs": 3},
                      strategy="hyperband", max_trials=3, search_seed=seed)  # fmt: skip
        strategy = HyperbandStrategy(sweep, Path("/nonexistent"), "val_accuracy", "max")
        return [strategy._draw() for _ in range(3)]

    assert draws(5) == draws(5) and draws(5) != draws(6)
    with pytest.raises(SweepDefinitionError, match="search_seed applies only to the search"):
        Sweep(name="g", space={"hidden_units": [8, 16]}, search_seed=3)
    for bad in (0, -1, 2**32, 1.5, True):
        with pytest.raises(SweepDefinitionError, match=r"search_seed must be an integer in \[1"):
            Sweep(name="r", space={"dropout": Float(0, 0.5)}, strategy="random", max_trials=2,
                  search_seed=bad)  # fmt: skip


def test_a_keras_tuner_style_space_searches(tmp_path):
    from nnsweep import Boolean

    sweep = Sweep(name="kt", space={"learning_rate": Float(1e-4, 1e-2, sampling="log"),
                                    "batch_norm": Boolean(), "hidden_units": 8, "epochs": 1},
                  strategy="random", max_trials=4, search_seed=3)  # fmt: skip
    lr = next(p for p in hyperparameters(sweep).space if p.name == "learning_rate")
    assert lr.sampling == "log"
    run_sweep(sweep, results=tmp_path)
    df = load_results("kt", results=tmp_path)
    assert len(df) == 4 and (df["status"] == "ok").all()
    assert set(df["batch_norm"]) <= {True, False} and df["learning_rate"].between(1e-4, 1e-2).all()


@pytest.mark.parametrize("strategy", ["bayesian", "hyperband"])
def test_the_largest_split_seed_gives_a_search_seed_the_oracles_take(tmp_path, strategy):
    from nnsweep.definition.sweep import SEED_MAX

    space = {"hidden_units": Int(4, 8), "epochs": 3 if strategy == "hyperband" else 1}
    sweep = Sweep(name="s", space=space, strategy=strategy, max_trials=2, split_seed=SEED_MAX)
    assert sweep.resolved_search_seed == 1  # split_seed + 1 would be past the oracles' seeds
    assert replace(sweep, split_seed=41).resolved_search_seed == 42  # as before, elsewhere
    summary = run_sweep(sweep, results=tmp_path)  # was a ValueError from NumPy's seeding
    statuses = {r["status"] for r in summary.rows}
    assert "ok" in statuses and statuses <= {"ok", "pruned"}  # hyperband stops some


def test_the_oracles_files_are_written_whole_so_a_failed_write_keeps_the_last_state(
    tmp_path, monkeypatch
):
    from nnsweep.strategies.tuner import make_oracle, open_local_oracle

    sweep = Sweep(name="w", space={"hidden_units": Int(4, 64), "epochs": 1},
                  strategy="random", max_trials=3)  # fmt: skip
    oracle = open_local_oracle(make_oracle(sweep, "val_accuracy", "max"), tmp_path)
    first = oracle.create_trial("t0")  # writes oracle.json and the trial's trial.json
    folder = tmp_path / TUNER_DIR
    before = {p: p.read_text() for p in folder.rglob("*.json")}
    assert folder / "oracle.json" in before and len(before) == 2

    def killed(src, dst):  # the process dies (or the disk fills) before the rename
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(ResultsError, match="oracle.json|trial.json"):
        oracle.update_trial(first.trial_id, {"val_accuracy": 0.5})
        oracle.end_trial(first)
    monkeypatch.undo()
    assert {p: p.read_text() for p in folder.rglob("*.json")} == before
    assert not list(folder.rglob("*.tmp"))
    again = open_local_oracle(make_oracle(sweep, "val_accuracy", "max"), tmp_path)
    assert first.trial_id in again.trials  # the last whole state reloads


def test_an_unreadable_oracle_state_is_a_clear_error_naming_the_folder(tmp_path):
    from nnsweep.strategies.tuner import make_oracle, open_local_oracle

    sweep = Sweep(name="c", space={"hidden_units": Int(4, 64), "epochs": 1},
                  strategy="random", max_trials=3)  # fmt: skip
    (tmp_path / TUNER_DIR).mkdir()
    (tmp_path / TUNER_DIR / "oracle.json").write_text("")  # what an in-place write left
    with pytest.raises(CorruptResultsError, match=r"tuner.*--fresh"):
        open_local_oracle(make_oracle(sweep, "val_accuracy", "max"), tmp_path)
