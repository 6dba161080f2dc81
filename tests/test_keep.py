"""Kept models (``run --keep-models``): plain Keras files that give their rows' numbers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nnsweep import Sweep
from nnsweep.cli import main
from nnsweep.errors import ResultsError, SweepDefinitionError
from nnsweep.report.stats import rank_configurations
from nnsweep.run.runner import run_sweep
from nnsweep.store.kept import kept_models, model_file, remove_temporary
from nnsweep.store.results import load_results, load_sweep_json

keras = pytest.importorskip("keras")

STACKS = """
from nnsweep import Sweep
sweep = Sweep(
    name="stacks",
    space={
        "widths": [(5,), (37, 12), (16, 16, 16)],  # depths 1-3; 5, 37 and 12 are padded
        "dropout": [0.0, 0.3],
        "patience": [None, 0],  # early-stopped trials restore their best epoch's weights
        "epochs": 3,
        "learning_rate": 0.03,
    },
    seeds=2,
)
"""
# No hidden layer, an activation that is not padded, penalties, another optimizer.
STACKS_TOO = """
from nnsweep import Sweep
sweep = Sweep(
    name="more",
    space={"depth": [0, 2], "hidden_units": 20, "activation": ["relu", "sigmoid"],
           "l2": [0.0, 1e-3], "optimizer": "rmsprop", "epochs": 3},
)
"""
CNN = """
from nnsweep import Sweep
sweep = Sweep(
    name="cnn",
    model="cnn",
    space={"filters": [(4,), (8,)], "batch_norm": [False, True], "epochs": 3,
           "patience": 1, "dense_units": 8},
)
"""
CUSTOM = """
import keras
from nnsweep import Sweep

def build(params, spec):
    inputs = keras.Input(spec.input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(params["units"], activation="tanh")(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))

sweep = Sweep(name="custom", model=build, space={"units": [6, 12], "epochs": 3}, seeds=2)
"""

# Run in a fresh process: every kept file of each folder, loaded and evaluated by Keras on
# the rows it was judged on, against its row (the validation metrics of the epoch whose
# weights were kept: the best with early stopping, else the last).
CHECK = """
import json, math, sys
import keras
from nnsweep.definition.sweep import load_sweep
from nnsweep.run.prepare import load_data
from nnsweep.store.kept import kept_models
from nnsweep.store.results import load_history, load_results

out = {}
for sweep_file, folder in json.loads(sys.argv[1]):
    sweep = load_sweep(sweep_file)
    data = load_data(sweep, None)
    rows = load_results(folder + "/trials.csv").set_index("trial_id")
    history = load_history(folder + "/trials.csv")
    m = data.spec.metric
    y = data.y_train if data.spec.task == "multiclass" else data.y_train[:, None]
    worst, n = 0.0, 0
    for config, files in kept_models(folder).items():
        for tid, path in files.items():
            model = keras.models.load_model(path)
            row = rows.loc[tid]
            mine = history[history["trial_id"] == tid]
            patience = row.get("patience")
            early = patience == patience and str(patience) not in ("", "None")
            epoch = int(row["best_epoch"]) if early else int(row["epochs_run"])
            at = mine[mine["epoch"] == epoch].iloc[0]
            split = data.split(sweep.validation_split, sweep.split_seed, sweep.cv, int(row["fold"]))
            val = model.evaluate(data.x_train[split.val_idx], y[split.val_idx],
                                 batch_size=4096, verbose=0, return_dict=True)
            test = model.evaluate(data.x_test, data.y_test, batch_size=4096, verbose=0,
                                  return_dict=True)
            # Keras adds the L1/L2 penalty to its loss; the table's loss is the data loss.
            penalty = float(sum(float(l) for l in model.losses)) if model.losses else 0.0
            pairs = [(val["loss"] - penalty, at["val_loss"]), (val[m], at["val_" + m]),
                     (test["loss"] - penalty, row["test_loss"]), (test[m], row["test_" + m])]
            for got, want in pairs:
                worst = max(worst, abs(got - want) / max(abs(want), 1e-12))
            n += 1
    out[folder] = {"worst": worst, "files": n}
print("RESULT " + json.dumps(out))
"""


def _cli(capsys, *args) -> tuple[int, str]:
    """Exit code and what it printed (stdout and stderr), as from the command line."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out + err


def _check_in_fresh_process(pairs: list[tuple[Path, Path]]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps([[str(a), str(b)] for a, b in pairs])],
        capture_output=True,
        text=True,
        timeout=600,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, done.stderr[-3000:]
    return json.loads(line.removeprefix("RESULT "))


def test_kept_models_give_their_rows_numbers_in_a_fresh_process(tmp_path, write_sweep):
    from nnsweep.definition.sweep import load_sweep

    pairs = []
    for body, name in ((STACKS, "stacks"), (STACKS_TOO, "more"), (CNN, "cnn"), (CUSTOM, "custom")):
        path = write_sweep(body, f"{name}.py")
        summary = run_sweep(load_sweep(path), results=tmp_path / "r", keep_models="all")
        ok = [r for r in summary.rows if r["status"] == "ok"]
        assert ok and len(ok) == len(summary.rows)
        kept = kept_models(tmp_path / "r" / name)
        assert sum(len(f) for f in kept.values()) == len(ok)  # every trial, as asked
        assert any(n.startswith("kept models: ") for n in summary.notes)
        pairs.append((path, tmp_path / "r" / name))
    rows = load_results(tmp_path / "r" / "stacks")
    assert (rows["epochs_run"] < 3).any()  # early stopping really restored earlier weights
    checked = _check_in_fresh_process(pairs)
    for folder, result in checked.items():
        assert result["files"] > 0, folder
        assert result["worst"] <= 1e-6, (folder, result)


def test_keeping_models_changes_no_number(tmp_path, write_sweep):
    from nnsweep.definition.sweep import load_sweep

    sweep = load_sweep(write_sweep(STACKS))
    run_sweep(sweep, results=tmp_path / "kept", keep_models=2)
    run_sweep(sweep, results=tmp_path / "plain")
    kept = load_results(tmp_path / "kept" / "stacks").set_index("trial_id")
    plain = load_results(tmp_path / "plain" / "stacks").set_index("trial_id")
    columns = [c for c in kept.columns if c.startswith(("val_", "test_", "best_")) or c == "loss"]
    assert kept[columns].equals(plain[columns])
    assert not (tmp_path / "plain" / "stacks" / "models").exists()


def _widths_sweep(**kw) -> Sweep:
    # Grid order trains the 4-unit MLPs first, the far better 64-unit ones after them.
    return Sweep(
        name="w",
        space={"hidden_units": [4, 64], "epochs": 2, "learning_rate": 0.01},
        seeds=2,
        **kw,
    )


def test_only_the_top_configurations_keep_files_and_those_that_fall_out_are_removed(tmp_path):
    summary = run_sweep(_widths_sweep(keep_models=1), results=tmp_path, pack_size=2)
    assert summary.packs == 2
    folder = tmp_path / "w"
    df = load_results(folder)
    best = rank_configurations(df, load_sweep_json(folder)).best["config_id"]
    assert df.set_index("config_id").loc[best, "hidden_units"].iloc[0] == 64
    assert list(kept_models(folder)) == [best]
    assert len(kept_models(folder)[best]) == 2  # both seeds
    note = next(n for n in summary.notes if n.startswith("kept models: "))
    assert "4 saved, 2 removed" in note  # the 4-unit pair was kept, then removed


def test_the_disk_bound_leaves_out_the_lowest_ranked(tmp_path):
    from nnsweep.store.kept import kept_bytes

    run_sweep(_widths_sweep(), results=tmp_path / "all", keep_models="all")
    sizes = kept_bytes(tmp_path / "all" / "w")
    assert len(sizes) == 2
    best = max(sizes, key=sizes.get)  # the 64-unit configuration, also the larger files
    bound = sum(sizes.values()) - 1
    summary = run_sweep(
        _widths_sweep(), results=tmp_path / "bound", keep_models="all", max_model_disk=bound
    )
    assert list(kept_models(tmp_path / "bound" / "w")) == [best]
    assert any("--max-model-disk" in n and "1 configuration " in n for n in summary.notes)


def test_bad_keep_settings_fail_before_anything_is_written(tmp_path):
    with pytest.raises(SweepDefinitionError, match="keep_models"):
        Sweep(name="x", keep_models=0)
    with pytest.raises(SweepDefinitionError, match="keep_models"):
        Sweep(name="x", keep_models="best")
    with pytest.raises(SweepDefinitionError, match="--max-model-disk"):
        run_sweep(_widths_sweep(), results=tmp_path, max_model_disk=10**6)
    with pytest.raises(SweepDefinitionError, match="--keep-models"):
        run_sweep(_widths_sweep(), results=tmp_path, keep_models=-1)
    assert not (tmp_path / "w").exists()


def test_a_kill_while_saving_leaves_no_file_that_fails_to_load(tmp_path):
    # A child saves one model after another under new names; it is killed just after it
    # says it starts a save, so the kill lands inside the write.
    child = textwrap.dedent(
        f"""
        import sys
        import keras
        from pathlib import Path
        from nnsweep.store.kept import write_atomic
        inputs = keras.Input((400,))
        model = keras.Model(inputs, keras.layers.Dense(2000)(keras.layers.Dense(2000)(inputs)))
        for i in range(1000):
            print("saving", i, flush=True)
            write_atomic(Path({str(tmp_path)!r}) / "models" / "c" / f"t{{i}}.keras",
                         lambda temp: model.save(temp))
        """
    )
    for kill_at in (1, 3):
        proc = subprocess.Popen(
            [sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == f"saving {kill_at}":
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    names = sorted(p.name for p in (tmp_path / "models" / "c").iterdir())
    files = kept_models(tmp_path)["c"]
    assert 1 <= len(files) <= 4 and all(n.startswith(("t", ".")) for n in names)
    for path in files.values():
        keras.models.load_model(path)  # whole, or not under a model's name at all
    left = len(names) - len(files)
    assert remove_temporary(tmp_path) == left
    assert sorted(p.name for p in (tmp_path / "models" / "c").iterdir()) == sorted(
        f"{t}.keras" for t in files
    )


def _kept_run(tmp_path, write_sweep, monkeypatch, capsys):
    sweep_file = write_sweep(
        """
        from nnsweep import Sweep
        sweep = Sweep(name="e", space={"hidden_units": [8, 32], "epochs": 2,
                                       "learning_rate": 0.01}, seeds=3)
        """,
        "e.py",
    )
    results = tmp_path / "results"
    monkeypatch.chdir(tmp_path)
    code, out = _cli(capsys, "run", sweep_file, "--results", results, "--keep-models", "1")
    assert code == 0, out
    assert "kept models: 3 files of 1 configuration " in out
    return sweep_file, results


def _no_training(monkeypatch):
    """Any fit, or the retraining path, fails the test."""
    import nnsweep.run.best as best

    def refuse(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(keras.Model, "fit", refuse)
    monkeypatch.setattr(best, "train_best", refuse)
    monkeypatch.setattr("nnsweep.training.train.train_pack", refuse)


def test_best_export_uses_the_kept_model_and_trains_nothing(
    tmp_path, write_sweep, monkeypatch, capsys
):
    sweep_file, results = _kept_run(tmp_path, write_sweep, monkeypatch, capsys)
    _no_training(monkeypatch)
    export = tmp_path / "model.keras"
    args = ["best", "e", "--results", str(results), "--sweep", str(sweep_file)]
    code, out = _cli(capsys, *args, "--export", export)
    assert code == 0, out
    assert "nothing trained now" in out and "its row's" in out
    df = load_results(results / "e").set_index("trial_id")
    (config,) = kept_models(results / "e")
    chosen = max(kept_models(results / "e")[config], key=lambda t: df.loc[t, "val_accuracy"])
    assert f"trial {chosen}" in out
    assert export.read_bytes() == model_file(results / "e", config, chosen).read_bytes()
    # The ensemble: the mean of the seeds' predictions, its test metric beside theirs.
    ensemble = tmp_path / "ensemble.keras"
    code, out = _cli(capsys, *args, "--export", ensemble, "--ensemble")
    assert code == 0, out
    assert "the ensemble of 3 kept models" in out and "each alone" in out
    import numpy as np

    from nnsweep.data import load_dataset

    x = load_dataset("digits").x_test[:50]
    members = [keras.models.load_model(p) for p in kept_models(results / "e")[config].values()]
    mean = np.mean([m.predict(x, verbose=0) for m in members], 0)
    np.testing.assert_allclose(
        keras.models.load_model(ensemble).predict(x, verbose=0), mean, rtol=1e-5, atol=1e-7
    )


def test_best_export_without_kept_models_trains_and_says_so(
    tmp_path, write_sweep, monkeypatch, capsys
):
    import shutil

    sweep_file, results = _kept_run(tmp_path, write_sweep, monkeypatch, capsys)
    shutil.rmtree(results / "e" / "models")  # a user cleared them
    args = ["best", "e", "--results", str(results), "--sweep", str(sweep_file)]
    code, out = _cli(capsys, *args, "--export", "y.keras", "--ensemble")
    assert code == 2 and "--keep-models" in out
    assert not (tmp_path / "y.keras").exists()
    code, out = _cli(capsys, *args, "--export", "x.keras")
    assert code == 0, out
    assert "no kept model of it" in out and "training it" in out
    assert (tmp_path / "x.keras").exists()


def test_load_model_gives_the_best_kept_model(tmp_path, write_sweep, monkeypatch, capsys):
    import nnsweep

    _, results = _kept_run(tmp_path, write_sweep, monkeypatch, capsys)
    (config,) = kept_models(results / "e")
    model = nnsweep.load_model("e", results=results)
    assert isinstance(model, keras.Model)
    seeded = nnsweep.load_model("e", config_id=config, seed=2, results=results)
    assert seeded.count_params() == model.count_params()
    with pytest.raises(ResultsError, match="no kept models"):
        nnsweep.load_model("e", config_id="0000000000", results=results)
    with pytest.raises(ResultsError, match="seed=9"):
        nnsweep.load_model("e", seed=9, results=results)
    from nnsweep.report import write_report

    report = write_report("e", results=results)
    assert "Kept models: 3 files of 1 configuration (" in report.summary_text
    assert f"{config} (#1)" in report.html_path.read_text()
    code, shown = _cli(capsys, "show", "e", "--results", results)
    assert code == 0 and "kept models: 3 files of 1 configuration " in shown and " kept" in shown


def test_pruned_trials_are_never_kept(tmp_path):
    space = {
        "learning_rate": [1e-4, 3e-3, 3e-2],
        "hidden_units": [4, 32],
        "epochs": 5,
        "batch_size": 32,
    }  # fmt: skip (the pruning tests' grid: it prunes)
    sweep = Sweep(name="p", space=space, seeds=2, prune=True)
    run_sweep(sweep, results=tmp_path, keep_models="all")
    df = load_results(tmp_path / "p")
    assert (df["status"] == "pruned").any() and (df["status"] == "ok").any()
    files = {t for f in kept_models(tmp_path / "p").values() for t in f}
    assert files == set(df.loc[df["status"] == "ok", "trial_id"])


def test_resume_keeps_the_files_and_fresh_moves_them_aside(tmp_path):
    sweep = _widths_sweep(keep_models=1)
    run_sweep(sweep, results=tmp_path, max_trials=2)  # the 4-unit pair only
    first = kept_models(tmp_path / "w")
    assert len(first) == 1 and len(next(iter(first.values()))) == 2
    (tmp_path / "w" / "models" / next(iter(first)) / ".x.9.tmp.keras").write_text("torn")
    summary = run_sweep(sweep, results=tmp_path)  # resumed: the 64-unit pair, far better
    assert summary.done_before == 2
    now = kept_models(tmp_path / "w")
    assert len(now) == 1 and set(now) != set(first)  # the leader changed: its files moved in
    assert not list((tmp_path / "w" / "models").glob("*/.*"))  # what a kill left is cleared
    run_sweep(sweep, results=tmp_path, fresh=True, max_trials=1)
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("w.old-")]
    assert kept_models(aside) == {c: {t: aside / "models" / c / p.name for t, p in f.items()}
                                  for c, f in now.items()}  # fmt: skip
    assert len(kept_models(tmp_path / "w")) == 1  # the new run keeps its own


def test_confirmation_keeps_its_fresh_seeds_of_the_kept_configurations(tmp_path):
    from nnsweep.run.confirm import Confirm

    run_sweep(_widths_sweep(), results=tmp_path, keep_models=1)
    (config,) = kept_models(tmp_path / "w")
    run_sweep(_widths_sweep(), results=tmp_path, confirm=Confirm(top=2, seeds=2), keep_models=1)
    df = load_results(tmp_path / "w").set_index("trial_id")
    kept = kept_models(tmp_path / "w")
    assert list(kept) == [config]
    phases = sorted(df.loc[list(kept[config]), "phase"])
    assert phases == ["confirm", "confirm", "search", "search"]


def test_a_model_that_cannot_be_written_is_counted_and_its_row_kept(tmp_path, monkeypatch):
    import errno

    import nnsweep.store.kept as kept

    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(kept, "write_atomic", full)
    summary = run_sweep(_widths_sweep(), results=tmp_path, keep_models="all")
    assert len(load_results(tmp_path / "w")) == 4 and summary.counts == {"ok": 4}
    (warning,) = [n for n in summary.notes if "could not be saved" in n]
    assert warning.startswith("warning: 4 models could not be saved (the first: ")
    assert "No space left on device" in warning and kept_models(tmp_path / "w") == {}


def test_a_smoothed_and_weighted_trials_file_loads_in_plain_keras(tmp_path):
    import keras

    from nnsweep.data import load_dataset

    space = {"hidden_units": 8, "epochs": 1, "label_smoothing": 0.1, "class_weight": "balanced"}
    sweep = Sweep(name="ls", space=space, seeds=1)
    (row,) = run_sweep(sweep, results=tmp_path, keep_models="all").rows
    ((path,),) = (files.values() for files in kept_models(tmp_path / "ls").values())
    model = keras.saving.load_model(path)  # no nnsweep class named in the file
    data = load_dataset("digits")
    hits = model.predict(data.x_test, verbose=0).argmax(1) == data.y_test
    assert float(hits.mean()) == pytest.approx(row["test_accuracy"], abs=1e-6)
