"""Added metrics (``Sweep(metrics=[...])``): Keras's numbers, inside packs and through fit."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import keras_reference, train_packed, two_layers

from nnsweep import Sweep
from nnsweep.data import DataSpec
from nnsweep.errors import SweepDefinitionError
from nnsweep.training.metrics import MetricLayout, layout_for

BINARY = ["auc", "precision", "recall", "f1"]
MULTICLASS = ["f1", "top_k_accuracy"]
REGRESSION = ["mse", "rmse"]


@pytest.fixture(scope="module")
def digits():
    from nnsweep.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def values(digits):
    """Regression on digits: the digit as a number."""
    from nnsweep.data import Dataset

    spec = DataSpec("values", "regression", digits.spec.input_shape)
    y, y_test = (digits.y_train.astype("float32"), digits.y_test.astype("float32"))
    return Dataset(spec, digits.x_train, y, digits.x_test, y_test)


# -- the definition ----------------------------------------------------------------------------


def test_bad_metrics_fail_when_the_sweep_is_created_naming_field_rule_and_value():
    cases = [
        ({"metrics": ["roc"]}, "metrics", "roc"),
        ({"metrics": "auc"}, "metrics", "auc"),  # a string, not a list
        ({"metrics": ["accuracy"]}, "always recorded", "accuracy"),
        ({"metrics": ["f1", "f1"]}, "once", "f1"),
        ({"metrics": ["auc"]}, "binary tasks, and this data is multiclass", "auc"),  # digits
        ({"metrics": ["mse"]}, "regression", "mse"),
        ({"objective": "val_auc", "data": "imdb"}, "needs 'auc' in the sweep's metrics", "val_auc"),
    ]
    for kwargs, rule, value in cases:
        with pytest.raises(SweepDefinitionError) as exc:
            Sweep(name="m", **kwargs)
        assert rule in str(exc.value) and repr(value) in str(exc.value), kwargs
    ok = Sweep(name="m", data="imdb", metrics=("auc", "f1"), objective="val_auc")
    assert ok.metrics == ("auc", "f1") and ok.to_json()["metrics"] == ["auc", "f1"]
    assert "metrics" not in ok.fingerprint()  # the trials' numbers do not depend on it


def test_other_data_is_checked_against_its_task_once_loaded(tmp_path):
    from nnsweep.run.prepare import load_data

    rng = np.random.default_rng(0)
    path = tmp_path / "three.npz"
    np.savez(path, x_train=rng.random((60, 4)), y_train=rng.integers(0, 3, 60))
    with pytest.raises(SweepDefinitionError, match="auc applies to binary"):
        load_data(Sweep(name="m", data=str(path), metrics=["auc"]), None)
    assert load_data(Sweep(name="m", data=str(path), metrics=["f1"]), None).spec.n_classes == 3


def test_columns_and_objective_gain_the_added_metrics(digits, zeros):
    from nnsweep.run.prepare import checked_objective
    from nnsweep.store.results import history_columns, trial_columns
    from nnsweep.training.train import TrainContext

    columns = trial_columns(["hidden_units"], "accuracy", "val_auc", ["auc", "f1"])
    for name in ("auc", "f1", "val_auc", "val_f1", "best_val_auc", "test_auc", "test_f1"):
        assert name in columns
    assert columns.index("f1") < columns.index("val_loss") < columns.index("val_f1")
    assert history_columns("accuracy", False, ["auc"])[-2:] == ["val_accuracy", "val_auc"]
    sweep = Sweep(name="m", data="x.npz", metrics=["auc", "rmse"], objective="val_auc")
    assert checked_objective(TrainContext(sweep, zeros)) == ("val_auc", "max")
    f1 = Sweep(name="m", metrics=["f1"], objective="val_f1")
    assert checked_objective(TrainContext(f1, digits)) == ("val_f1", "max")


# -- the sums and Keras's formulas -------------------------------------------------------------


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_sums_over_batches_give_what_kerass_metric_objects_give(task):
    """Three trials' predictions in two batches: each trial's metrics from the summed
    statistics equal Keras's metric objects updated batch by batch on the same numbers."""
    import tensorflow as tf

    from nnsweep.training._metrics import slot_sums
    from nnsweep.training.models import keras_metrics

    names = {"binary": BINARY, "multiclass": MULTICLASS, "regression": REGRESSION}[task]
    classes = 7 if task == "multiclass" else 1
    spec = DataSpec("d", task, (4,), classes if task == "multiclass" else None)
    layout = layout_for(names, task, spec.n_classes)
    rng = np.random.default_rng(1)
    S, B, batches = 1, 3, [50, 37]
    sums = np.zeros((S * B, layout.width), "float32")
    preds, truths = [], []
    for n in batches:
        if task == "multiclass":
            logits = rng.normal(size=(S, n, B, classes)) * 2
            pred = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
            y = rng.integers(0, classes, (S, n, B))
        elif task == "binary":
            pred = rng.random((S, n, B))
            pred[0, :3, 0] = [0.0, 0.5, 1.0]  # the buckets' and threshold's edges
            y = (rng.random((S, n, B)) < 0.3).astype("int32")
        else:
            pred, y = rng.normal(size=(S, n, B)), rng.normal(size=(S, n, B))
        pred = pred.astype("float32")
        y = y.astype("float32" if task == "regression" else "int32")
        sums += slot_sums(layout, tf.constant(y), tf.constant(pred), S, B).numpy()
        preds.append(pred)
        truths.append(y)
    ours = layout.finalize(sums, sum(batches))
    for b in range(B):
        for metric in keras_metrics(names, spec):
            for pred, y in zip(preds, truths, strict=True):
                p, t = pred[0, :, b], y[0, :, b]
                metric.update_state(
                    t if task == "multiclass" else t[:, None],
                    p if task == "multiclass" else p[:, None],
                )
            theirs = float(metric.result())
            assert ours[metric.name][b] == pytest.approx(theirs, rel=1e-6, abs=1e-7), metric.name


def test_a_layout_keeps_each_sum_once():
    layout = MetricLayout("binary", 2, ("precision", "recall", "f1", "auc"))
    assert layout.kinds == ("buckets", "confusion") and layout.width == 403
    assert layout_for([], "binary", None) is None
    assert MetricLayout("multiclass", 10, ("f1",)).width == 30


# -- packed as alone, and as Keras's fit -------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    ["binary", "multiclass", "regression", "branches"],
)
def test_added_metrics_pack_exactly_as_alone(digits, zeros, values, kind):
    from nnsweep.training.train import TrainContext

    data = {"binary": zeros, "regression": values}.get(kind, digits)
    names = {"binary": BINARY, "regression": REGRESSION}.get(kind, MULTICLASS)
    space = {"hidden_units": [8, 24], "epochs": 3, "learning_rate": 0.02, "batch_size": [32, 64]}
    if kind == "branches":  # a branch steps by its own batch size: one per pack
        space.update(batch_norm=True, batch_size=32)
    else:
        space["dropout"] = [0.0, 0.2]
    sweep = Sweep(name="t", data="x.npz", space=space, seeds=2, metrics=names)
    ctx = TrainContext(sweep, data)
    trials = sweep.grid_trials()
    packed = train_packed(trials, ctx)
    assert {r.row["pack_size"] for r in packed.values()} == {len(trials)}
    keys = [p + m for p in ("", "val_", "test_") for m in names]
    for t in trials:
        (alone,) = train_packed([t], ctx).values()
        for key in keys:
            mine, theirs = packed[t.trial_id].row[key], alone.row[key]
            assert np.isfinite(mine) and mine == pytest.approx(theirs, rel=1e-5, abs=1e-6), key
    seen = {packed[t.trial_id].row[f"val_{names[0]}"] for t in trials}
    assert len(seen) > 1  # the trials' own numbers, not one trial's copied


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression", "custom"], ids=lambda k: k)
def test_each_trains_as_keras_fit_with_kerass_metric_objects(digits, zeros, values, kind):
    from nnsweep.training.train import TrainContext

    data = {"binary": zeros, "regression": values}.get(kind, digits)
    names = {"binary": BINARY, "regression": REGRESSION}.get(kind, MULTICLASS)
    model = two_layers if kind == "custom" else "mlp"
    space = {"epochs": 3, "batch_size": 32, "learning_rate": 0.01}
    if model == "mlp":
        space["hidden_units"] = 32
    sweep = Sweep(name="k", data="x.npz", model=model, space=space, seeds=1, metrics=names)
    ctx = TrainContext(sweep, data)
    (trial,) = sweep.grid_trials()
    (ours,) = train_packed([trial], ctx).values()
    theirs, _ = keras_reference(trial, ctx, data)
    history = ours.history
    for key in [*names, *(f"val_{m}" for m in names)]:
        for epoch in range(3):
            assert history[epoch][key] == pytest.approx(theirs[key][epoch], rel=1e-5, abs=1e-6), (
                key,
                epoch,
            )


def test_the_keras_fit_path_reports_the_added_metrics(zeros):
    import keras

    from nnsweep.training._keras_fit import fit_alone
    from nnsweep.training.train import TrainContext

    sweep = Sweep(name="k", data="x.npz", space={"hidden_units": 8, "epochs": 2}, metrics=BINARY)
    (trial,) = sweep.grid_trials()
    outcome = fit_alone(keras, trial, TrainContext(sweep, zeros), None)
    for name in BINARY:
        assert 0 <= outcome.history[-1][name] <= 1 and 0 <= outcome.history[-1][f"val_{name}"] <= 1
        assert 0 <= outcome.test[name] <= 1


# -- as a user runs it -------------------------------------------------------------------------

F1_SWEEP = '''
"""Which width gives digits the best macro F1? (a test sweep)"""
from nnsweep import Sweep

sweep = Sweep(
    name="f1s",
    space={"hidden_units": [2, 32], "epochs": 3, "patience": 1, "learning_rate": 0.01},
    seeds=2,
    metrics=["f1", "top_k_accuracy"],
    objective="val_f1",
)
'''


def test_a_run_ranks_stops_and_reports_by_an_added_metric(write_sweep, tmp_path, capsys):
    import json

    import pandas as pd

    from nnsweep.cli import main

    def cli(*args):
        with pytest.raises(SystemExit) as info:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert info.value.code == 0, err
        return out

    results = tmp_path / "results"
    cli("run", write_sweep(F1_SWEEP), "--results", results)
    folder = results / "f1s"
    info = json.loads((folder / "sweep.json").read_text())
    assert (info["objective"], info["direction"], info["metrics"]) == (
        "val_f1",
        "max",
        ["f1", "top_k_accuracy"],
    )
    df = pd.read_csv(folder / "trials.csv")
    history = pd.read_csv(folder / "history.csv")
    assert {"val_top_k_accuracy", "test_f1", "best_val_f1"} <= set(df.columns)
    assert {"f1", "val_f1", "top_k_accuracy"} <= set(history.columns)
    for _, row in df.iterrows():  # the best epoch is the one with the highest val_f1
        mine = history[history["trial_id"] == row["trial_id"]]
        assert row["best_val_f1"] == pytest.approx(mine["val_f1"].max())
    shown = cli("show", "f1s", "--results", results)
    assert "by val_f1 (higher is better)" in shown and "test_f1" in shown
    assert "by val_top_k_accuracy" in cli(
        "show", "f1s", "--results", results, "--metric", "val_top_k_accuracy"
    )
    assert "F1" in cli("report", "f1s", "--results", results)
    page = (folder / "report" / "index.html").read_text()
    assert "f1, top_k_accuracy" in page and "validation F1" in page
    best = df.groupby("hidden_units")["best_val_f1"].mean().idxmax()
    assert f"hidden_units={best}" in cli("best", "f1s", "--results", results)


def test_a_diverging_trial_leaves_its_pack_mates_metrics_alone(zeros):
    """lr 1e30 blows one trial's weights up in the steps its pack-mates share: their AUC
    buckets and counts stay their own, as alone."""
    from nnsweep.training.train import TrainContext

    space = {"hidden_units": [8, 16], "depth": 2, "optimizer": "sgd", "learning_rate": [0.05, 1e30]}
    sweep = Sweep(name="d", data="x.npz", space={**space, "epochs": 3}, seeds=1, metrics=BINARY)
    ctx = TrainContext(sweep, zeros)
    trials = sweep.grid_trials()
    packed = train_packed(trials, ctx)
    statuses = {packed[t.trial_id].row["status"] for t in trials}
    assert statuses == {"ok", "diverged"}
    for t in trials:
        if packed[t.trial_id].row["status"] != "ok":
            continue
        (alone,) = train_packed([t], ctx).values()
        for key in ("auc", "val_auc", "test_auc", "val_f1", "test_recall"):
            mine = packed[t.trial_id].row[key]
            assert mine == pytest.approx(alone.row[key], rel=1e-5, abs=1e-6), key
