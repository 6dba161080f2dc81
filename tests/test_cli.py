from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from conftest import FAILING_PACK, REPO, TINY_SWEEP

from nnsweep.cli import main
from nnsweep.store.results import trial_columns


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def _python(code, **kw):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        **kw,
    )


def test_help_list_show_and_dry_run_do_not_import_tensorflow(tmp_path, write_sweep):
    sweep_file = write_sweep(TINY_SWEEP)
    code = f"""
        import sys
        from nnsweep.cli import main
        for args in (["--help"], ["run", "--help"], ["list", "--sweeps", "sweeps"],
                     ["run", {str(sweep_file)!r}, "--dry-run"],
                     ["show", "hidden_units", "--results", "examples/results"],
                     ["diff", "hidden_units", "hidden_units", "--results", "examples/results"]):
            try:
                main(args)
            except SystemExit as exc:
                assert exc.code == 0, (args, exc.code)
        heavy = [m for m in ("tensorflow", "keras") if m in sys.modules]
        print("HEAVY", heavy)
    """
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_import_nnsweep_is_light_and_every_public_name_loads():
    code = """
        import sys
        import nnsweep
        light = not any(m in sys.modules for m in ("pandas", "nnsweep.data", "nnsweep.cli"))
        names = [getattr(nnsweep, name) for name in nnsweep.__all__]
        print("LIGHT", light, len(names), sorted(nnsweep.__all__) == sorted(nnsweep._HOME))
    """
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert "LIGHT True 36 True" in proc.stdout


def test_every_command_has_help(capsys):
    for command in ([], ["run"], ["list"], ["show"], ["diff"], ["confirm"], ["tensorboard"]):
        code, out, _ = _cli(capsys, *command, "--help")
        assert code == 0 and "Usage:" in out and len(out.splitlines()) > 4


def test_run_end_to_end_then_show(tmp_path, write_sweep, capsys):
    sweep_file = write_sweep(TINY_SWEEP)
    results = tmp_path / "results"
    code, out, err = _cli(capsys, "run", sweep_file, "--results", results)
    assert code == 0, err
    assert "trained 4 trials" in err and "4 ok" in err and "[4/4]" in err
    df = pd.read_csv(results / "tiny" / "trials.csv")
    space = ["hidden_units", "epochs", "batch_size", "learning_rate"]
    assert list(df.columns) == trial_columns(space, "accuracy", "val_accuracy")
    assert len(df) == 4 and df["trial_id"].is_unique
    assert sorted(df["hidden_units"]) == [4, 4, 8, 8] and sorted(df["seed"]) == [0, 0, 1, 1]
    assert df["test_accuracy"].between(0, 1).all() and (df["status"] == "ok").all()
    history = pd.read_csv(results / "tiny" / "history.csv")
    assert len(history) == 4 and set(history["epoch"]) == {1}

    code, out, err = _cli(capsys, "show", "tiny", "--results", results)
    assert code == 0, err
    assert "4 trials (4 ok)" in out and "test_accuracy" in out and "±" in out

    code, out, err = _cli(capsys, "run", sweep_file, "--results", results)
    assert code == 0 and "trained 0 trials" in err and "4 were already done" in err

    code, out, _ = _cli(capsys, "run", sweep_file, "--results", results, "--dry-run")
    assert code == 0 and out.count("  done  ") == 4


def test_max_trials_then_resume(tmp_path, write_sweep, capsys):
    sweep_file = write_sweep(TINY_SWEEP)
    results = tmp_path / "results"
    code, _, err = _cli(capsys, "run", sweep_file, "--results", results, "--max-models", "3")
    assert code == 0 and "1 trials remain" in err
    code, _, err = _cli(capsys, "run", sweep_file, "--results", results)
    assert code == 0 and "trained 1 trials" in err
    assert len(pd.read_csv(results / "tiny" / "trials.csv")) == 4


@pytest.mark.parametrize(
    "args, match",
    [
        (["run", "{tmp}/missing.py"], "sweep file not found"),
        (["run", "{bad}"], "space['dropout'] must be in [0, 1), got 1.5"),
        (["run", "{tiny}", "--max-models", "0"], "--max-models"),
        (["run", "{tiny}", "--max-trials", "3"], "--max-trials is now --max-models: it counts"),
        (["run", "{tiny}", "--frobnicate"], "No such option"),
        (["show", "nothing", "--results", "{tmp}"], "no results at"),
        (["frob"], "No such command"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path, write_sweep, capsys, args, match
):
    tiny = write_sweep(TINY_SWEEP)
    bad = write_sweep(
        "from nnsweep import Sweep\ns = Sweep(name='b', space={'dropout': 1.5})\n", "bad.py"
    )
    args = [a.format(tmp=tmp_path, tiny=tiny, bad=bad) for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = (
        _cli(capsys, *args, "--results", tmp_path / "results")
        if args[0] == "run"
        else _cli(capsys, *args)
    )
    assert code == 2
    assert match in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_debug_shows_the_traceback(tmp_path, capsys):
    code, _, err = _cli(capsys, "run", tmp_path / "missing.py", "--debug")
    assert code == 2 and "Traceback" in err


def test_ctrl_c_saves_finished_trials_and_exits_130(tmp_path, write_sweep):
    sweep_file = write_sweep(TINY_SWEEP.replace('"epochs": 1', '"epochs": 3'))
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnsweep", "run", str(sweep_file), "--results", str(results)]
        + ["--no-pack"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    trials = results / "tiny" / "trials.csv"
    deadline = time.monotonic() + 120
    # Wait (bounded) for the first finished trial, then interrupt the second.
    while time.monotonic() < deadline and proc.poll() is None:
        if trials.exists() and len(trials.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted:" in err and "of 4 trials done; run the same command to resume" in err
    done = pd.read_csv(trials)
    assert 1 <= len(done) < 4 and done["trial_id"].is_unique


def test_best_and_export_then_a_quick_look_with_fewer_epochs(tmp_path, write_sweep, capsys):
    sweep_file = write_sweep(TINY_SWEEP)
    results = tmp_path / "results"
    assert _cli(capsys, "run", sweep_file, "--results", results)[0] == 0
    code, out, err = _cli(capsys, "best", "tiny", "--results", results)
    assert code == 0 and out.startswith("best of tiny by val_accuracy: hidden_units=")
    model_path = tmp_path / "out" / "best.keras"
    code, out, err = _cli(
        capsys, "best", "tiny", "--results", results, "--export", model_path, "--sweep", sweep_file
    )
    assert code == 0, err
    assert model_path.exists() and "Total params" in out and f"saved: {model_path}" in out
    code, _, err = _cli(capsys, "best", "tiny", "--results", results, "--export", "x.h5")
    assert code == 2 and ".keras" in err
    code, _, err = _cli(capsys, "run", sweep_file, "--results", results, "--epochs", "2")
    assert code == 0, err
    quick = pd.read_csv(results / "tiny-epochs2" / "trials.csv")
    assert set(quick["epochs"]) == {2} and set(quick["epochs_run"]) == {2}
    assert len(pd.read_csv(results / "tiny" / "trials.csv")) == 4  # the real results untouched


def test_dry_run_shows_the_packs_and_what_keeps_them_apart(write_sweep, tmp_path, capsys):
    sweep_file = write_sweep(
        TINY_SWEEP.replace('"batch_size": 64', '"batch_size": [32, 48, 64], "depth": [1, 2]')
    )
    code, out, err = _cli(capsys, "run", sweep_file, "--dry-run", "--results", tmp_path)
    assert code == 0, err
    assert "the 24 trials to train: 2 packs (16, 8 trials)" in out
    assert "pack 1: 16 trials, micro-batch 32\n" in out
    assert "pack 2: 8 trials, micro-batch 48 (apart: batch_size 48 is not a multiple of 32)" in out
    assert "depth 2 relu adam batch 64 1 epochs: 2 seeds x 2 blocks" in out
    code, out, _ = _cli(capsys, "run", sweep_file, "--dry-run", "--no-pack", "--results", tmp_path)
    assert "24 packs" in out and "(apart: --no-pack)" in out


def test_dry_run_of_named_models_names_them_and_stacks_each_family(write_sweep, tmp_path, capsys):
    body = TINY_SWEEP.replace(
        'model="mlp"',
        'model={"wide": ("mlp", {"hidden_units": 32}), "conv": ("cnn", {"filters": (8,)})}',
    ).replace('"hidden_units": [4, 8], ', "")
    code, out, err = _cli(capsys, "run", write_sweep(body), "--dry-run", "--results", tmp_path)
    assert code == 0, err
    assert "tiny: 4 trials (0 done) on digits with named models wide (mlp), conv (cnn)" in out
    assert "model=conv  seed=1" in out
    for stack in ("cnn 1 conv 3x3 valid pool 2 dense relu", "depth 1 relu"):
        assert f"{stack} adam batch 64 1 epochs: 2 seeds x 1 blocks" in out
    assert "of their own" not in out  # no branches


def test_a_pack_that_fails_as_a_whole_says_so_and_the_run_counts_it(write_sweep, tmp_path, capsys):
    sweep_file = write_sweep(FAILING_PACK, "fails.py")
    code, _, err = _cli(capsys, "run", sweep_file, "--results", tmp_path)
    assert code == 0, err
    warning = (
        "warning: a pack of 4 trials failed as a whole (RuntimeError: cannot train this "
        "branch); training them one by one"
    )
    assert err.count(warning) == 1 and "Traceback" not in err
    assert "trained 4 trials in 1 pack in" in err
    assert "(2 failed, 2 ok); 0 were already done; 1 of them failed as a whole" in err
    df = pd.read_csv(tmp_path / "fails" / "trials.csv")
    assert set(df["pack_size"]) == {1}
    code, _, err = _cli(capsys, "run", sweep_file, "--results", tmp_path, "--fresh", "--debug")
    assert code == 0 and "Traceback" in err and err.count("warning: a pack of 4") == 1


def test_verbose_shows_every_trials_epochs(write_sweep, tmp_path, capsys):
    sweep_file = write_sweep(TINY_SWEEP.replace('"epochs": 1', '"epochs": 2'))
    code, _, err = _cli(capsys, "run", sweep_file, "--results", tmp_path, "--verbose")
    assert code == 0, err
    epochs = [line for line in err.splitlines() if line.lstrip().startswith("epoch ")]
    assert len(epochs) == 8  # 4 trials x 2 epochs
    assert "val_accuracy" in epochs[0] and "hidden_units=4 seed=0" in epochs[0]


def test_an_os_error_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    # A read-only results folder, as a non-root user meets it (root writes anyway).
    import nnsweep.report

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "report"))

    monkeypatch.setattr(nnsweep.report, "write_report", refuse)
    code, out, err = _cli(
        capsys, "report", "hidden_units", "--results", REPO / "examples" / "results"
    )
    assert code == 2
    assert err == f"error: {tmp_path / 'report'}: Permission denied\n"


def test_a_sweep_file_that_imports_keras_loads_without_tensorflow_noise(tmp_path):
    sweep_file = tmp_path / "with_keras.py"
    sweep_file.write_text("import keras\n" + textwrap.dedent(TINY_SWEEP))
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-m", "nnsweep", "run", str(sweep_file), "--dry-run"]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no oneDNN, absl or CUDA lines
    assert "trials to train" in proc.stdout


def test_dry_run_of_a_large_sweep_is_a_summary(tmp_path, write_sweep, capsys):
    path = write_sweep(
        """
        from nnsweep import Sweep
        sweep = Sweep(name="large", space={"hidden_units": list(range(1, 301))}, seeds=100)
        """
    )
    code, out, err = _cli(capsys, "run", path, "--dry-run", "--results", tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "large: 30000 trials (0 done) on digits with model mlp"
    assert "  ... and 29,800 more (300 configurations x 100 seeds x 1 folds)" in lines
    assert len(lines) < 400


def test_dry_run_of_a_search_counts_the_trials_it_trains_at_most(tmp_path, write_sweep, capsys):
    for strategy in ("random", "hyperband"):
        path = write_sweep(
            f"""
            from nnsweep import Float, Sweep
            sweep = Sweep(name="s", space={{"learning_rate": Float(1e-4, 1e-1), "epochs": 9}},
                          strategy="{strategy}", max_trials=4, seeds=3, cv=2)
            """
        )
        code, out, err = _cli(capsys, "run", path, "--dry-run", "--results", tmp_path)
        assert code == 0, err
        assert f"strategy {strategy} picks up to 4 configurations as it goes: at most 24 " in out
        assert "(4 configurations x 3 seeds x 2 folds)" in out


def test_dry_run_prints_float_values_compactly(tmp_path, write_sweep, capsys):
    path = write_sweep(TINY_SWEEP.replace('"learning_rate": 0.01', '"learning_rate": [10 ** -2.5]'))
    code, out, err = _cli(capsys, "run", path, "--dry-run", "--results", tmp_path)
    assert code == 0, err
    assert "hidden_units=4 learning_rate=0.00316228  seed=0" in out
    assert "0.0031622776601683794" not in out


def test_best_and_confirm_say_each_what_their_sweep_file_is_for(capsys):
    code, best, _ = _cli(capsys, "best", "--help")
    assert code == 0 and "With --export: the sweep file that defines NAME" in best
    code, confirm, _ = _cli(capsys, "confirm", "--help")
    assert code == 0 and "for the configurations retrained" in confirm
    assert "--export" not in confirm.split("--sweep", 1)[1].split("--data-dir")[0]


def test_run_help_counts_models_with_max_models_and_hides_max_trials(capsys):
    code, out, _ = _cli(capsys, "run", "--help")
    assert code == 0 and "--max-trials" not in out
    assert "Train at most N models (trials: configuration x seed x fold) in" in " ".join(
        out.split()
    )


def test_read_commands_print_nothing_on_stdout_before_an_error(tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(REPO / "examples" / "results" / "hidden_units", results / "hidden_units")
    for args in (
        ["show", "hidden_units", "--metric", "nope"],
        ["best", "hidden_units", "--metric", "nope"],
        ["report", "hidden_units", "--metric", "nope"],
        ["best", "hidden_units", "--export", tmp_path / "m.h5"],
        ["best", "hidden_units", "--export", tmp_path / "m.keras", "--sweep", tmp_path / "no.py"],
    ):
        code, out, err = _cli(capsys, *args, "--results", results)
        assert code == 2 and out == "" and err.count("\n") == 1, (args, out, err)


def test_read_commands_refuse_what_names_nothing_to_compare(tmp_path, write_sweep, capsys):
    """Issue 23, classes 8 and 10: a sweep overlaid with itself, bookkeeping columns as the
    metric; and the printed TensorBoard command works in a path with a space."""
    sweep_file = write_sweep(TINY_SWEEP)
    results = tmp_path / "my results"
    code, out, err = _cli(capsys, "run", sweep_file, "--results", results, "--tensorboard")
    assert code == 0, err
    quoted = f"tensorboard --logdir '{results / 'tiny' / 'tensorboard'}'"
    assert quoted in out, out
    code, out, err = _cli(capsys, "tensorboard", "tiny", "--results", results)
    assert code == 0 and quoted in out, err

    for names in (("tiny", "tiny"), ("tiny", str(results / "tiny"))):
        before = sorted(p.name for p in results.rglob("*"))
        code, out, err = _cli(capsys, "report", *names, "--results", results)
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert f"{names[0]!r} and {names[1]!r} name the same sweep" in err
        assert sorted(p.name for p in results.rglob("*")) == before
    # A second sweep that cannot be reported on: refused before the first's report is written.
    before = sorted(p.name for p in results.rglob("*"))
    for args in (("tiny", "missing"), ("tiny", "tiny-epochs3"), ("tiny", "--metric", "val_f1")):
        code, out, err = _cli(capsys, "report", *args, "--results", results)
        assert code == 2 and out == "" and err.count("\n") == 1, (args, err)
        assert sorted(p.name for p in results.rglob("*")) == before

    refused = {"seed": "not a measurement", "fold": "not a measurement",
               "error": "not a measurement", "hidden_units": "a hyperparameter"}  # fmt: skip
    for metric, what in refused.items():
        for command in ("show", "best", "report"):
            code, out, err = _cli(capsys, command, "tiny", "--results", results, "--metric", metric)
            assert code == 2 and err.count("\n") == 1, (command, metric, err)
            assert f"metric must be a metric column of trials.csv, got {metric!r} ({what})" in err
    code, out, err = _cli(capsys, "show", "tiny", "--results", results, "--metric", "fit_seconds")
    assert code == 0, err


def test_quick_look_folders_are_found_by_every_reading_command(tmp_path, write_sweep, capsys):
    """Issue 24, item 4: `run --epochs N` results are shown, listed, reported and exported
    by their name or by --epochs N, and a missing sweep's error names them."""
    sweep_file = write_sweep(TINY_SWEEP)
    results = tmp_path / "results"
    code, out, err = _cli(capsys, "run", sweep_file, "--results", results, "--epochs", "2")
    assert code == 0, err
    code, out, err = _cli(capsys, "show", "tiny", "--results", results)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "there are quick looks of it: tiny-epochs2 (use that name, or --epochs N)" in err
    for args in (("tiny-epochs2",), ("tiny", "--epochs", "2")):
        code, out, err = _cli(capsys, "show", *args, "--results", results)
        assert code == 0 and "4 trials (4 ok)" in out, err
        code, out, err = _cli(capsys, "report", *args, "--results", results)
        assert code == 0 and "tiny-epochs2" in out, err
        code, out, err = _cli(capsys, "tensorboard", *args, "--results", results)
        assert code == 0 and "wrote 4 trials' runs" in out, err
    code, out, err = _cli(capsys, "list", "--sweeps", tmp_path, "--results", results)
    assert code == 0 and "quick look, 2 epochs: tiny-epochs2: 4 trials" in out, out
    model = tmp_path / "m.keras"
    code, out, err = _cli(
        capsys, "best", "tiny", "--epochs", "2", "--results", results, "--sweep", sweep_file,
        "--export", model,
    )  # fmt: skip
    assert code == 0 and model.is_file(), err
    assert out.startswith("best of tiny-epochs2 by val_accuracy: ")


def test_a_sweep_file_given_as_rays_address_says_so(capsys, write_sweep):
    sweep_file = write_sweep(TINY_SWEEP)
    code, out, err = _cli(capsys, "run", "--ray", sweep_file)
    assert code == 2 and out == ""
    assert err.strip() == (
        f"error: --ray took {sweep_file} as the cluster's address, and SWEEP_FILE is missing: "
        f"put the sweep file first (nnsweep run {sweep_file} --ray) or write --ray=ADDRESS "
        "(see 'nnsweep run --help')"
    )
    code, _, err = _cli(capsys, "run")
    assert code == 2 and err.startswith("error: Missing argument 'SWEEP_FILE'.")
    code, out, _ = _cli(capsys, "run", "--help")
    assert code == 0 and "Usage: nnsweep run [OPTIONS] SWEEP_FILE" in out


def test_show_writes_a_swept_none_as_none(tmp_path, write_sweep, capsys):
    body = TINY_SWEEP.replace('"hidden_units": [4, 8]', '"hidden_units": 4, "patience": [None, 1]')
    assert "patience" in body
    results = tmp_path / "results"
    assert _cli(capsys, "run", write_sweep(body), "--results", results)[0] == 0
    code, out, err = _cli(capsys, "show", "tiny", "--results", results)
    assert code == 0, err
    rows = out.split("mean ± std over seeds and folds:")[1].splitlines()[2:]
    assert sorted(r.split()[0] for r in rows if r.strip()) == ["1", "None"]
    assert "NaN" not in out
