"""Fault injection (issue 5): nothing is lost on a kill, Ctrl-C, a second run or bad input.

Each test drives the real command line, either in a subprocess (kills, signals, a second
process) or in-process through ``nnsweep.cli.main`` (bad input, changed sweep files), and
checks the results folder itself: every trial exactly once, ``history.csv`` agreeing with
``trials.csv``, no temporary files, and nothing at all changed when the input is refused.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnsweep import Sweep, load_history, load_results, run_sweep
from nnsweep.cli import main
from nnsweep.definition.sweep import load_sweep
from nnsweep.run.runner import Progress

pytest.importorskip("keras")

# -- helpers ----------------------------------------------------------------------------


def _cli(capsys, *args):
    """Run ``nnsweep`` in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder under ``root``; bytecode caches aside."""
    tree: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        rel = str(path.relative_to(root))
        tree[rel] = path.read_bytes() if path.is_file() else None
    return tree


def _complete_rows(path: Path) -> int:
    """Rows of a results table that end in a newline (a torn last line is not counted)."""
    if not path.exists():
        return 0
    return max(path.read_bytes().count(b"\n") - 1, 0)


def _spawn(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(log, "w") as fh:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, *args], cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT
        )


def _stop(proc: subprocess.Popen) -> None:
    """Never leave a child behind, whatever an assertion did."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=60)


def _wait_for(proc: subprocess.Popen, deadline: float, ready) -> bool:
    """Poll until ``ready()`` is true (True) or the process ends first (False)."""
    while proc.poll() is None:
        if ready():
            return True
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for pid {proc.pid}")
        time.sleep(0.02)
    return False


def _holds_lock(folder: Path, pid: int) -> bool:
    try:
        return (folder / ".lock").read_text().startswith(f"pid {pid} ")
    except OSError:
        return False


def _check_complete(folder: Path, sweep_file: Path, epochs: int) -> pd.DataFrame:
    """The sweep is done and its folder is consistent; return trials.csv."""
    planned = {t.trial_id for t in load_sweep(sweep_file).grid_trials()}
    trials = pd.read_csv(folder / "trials.csv")
    assert trials["trial_id"].is_unique, trials["trial_id"][trials["trial_id"].duplicated()]
    assert set(trials["trial_id"]) == planned
    assert (trials["status"] == "ok").all(), trials[["trial_id", "status", "error"]]
    history = pd.read_csv(folder / "history.csv")
    assert not history.duplicated(["trial_id", "epoch"]).any()
    assert set(history["trial_id"]) == planned  # no orphans, none missing
    for trial_id, epochs_of in history.groupby("trial_id"):
        assert sorted(epochs_of["epoch"]) == list(range(1, epochs + 1)), trial_id
    # The row's final metrics are the last epoch's, for every trial.
    last = history.sort_values("epoch").groupby("trial_id").last()
    merged = trials.set_index("trial_id").join(last, rsuffix="_h")
    assert np.allclose(merged["val_loss"], merged["val_loss_h"])
    assert (merged["epochs_run"] == epochs).all()
    names = {p.name for p in folder.iterdir()}
    assert names == {"trials.csv", "history.csv", "sweep.json", "runs.jsonl", ".lock"}, names
    assert not list(folder.parent.rglob("*.tmp"))
    return trials


# -- SIGKILL and Ctrl-C at random moments -------------------------------------------------

KILL_SWEEP = '''
"""A sweep to kill: 7 widths x 4 seeds, 2 epochs each."""
from nnsweep import Sweep

sweep = Sweep(
    name="crash",
    data="digits",
    model="mlp",
    space={
        "hidden_units": [4, 6, 8, 10, 12, 14, 16],
        "epochs": 2,
        "batch_size": 64,
        "learning_rate": 0.01,
    },
    seeds=4,
)
'''
KILL_TRIALS, KILL_EPOCHS = 28, 2

# Runs nnsweep, and SIGKILLs itself right after its K-th fsync; with "torn", only part of
# what that fsync made durable survives (a random cut inside the write just made). Every
# durable write of the results store ends in an fsync, so K picks a write: a repair, the
# sweep.json, a trial's epochs or a trial's row.
INJECT = r"""
import os, random, signal, sys

k, mode, seed, folder = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
rng = random.Random(seed)
real_fsync = os.fsync
calls = 0


def sizes():
    if not os.path.isdir(folder):
        return {}
    paths = (os.path.join(folder, n) for n in os.listdir(folder))
    return {p: os.path.getsize(p) for p in paths if os.path.isfile(p)}


before = sizes()


def fsync(fd):
    global calls, before
    real_fsync(fd)
    calls += 1
    if calls == k:
        path = os.readlink(f"/proc/self/fd/{fd}")
        size, prior = os.path.getsize(path), before.get(path, 0)
        if mode == "torn" and os.path.isfile(path) and size - prior >= 2:
            os.truncate(path, rng.randrange(prior + 1, size))
        os.kill(os.getpid(), signal.SIGKILL)
    before = sizes()


os.fsync = fsync
sys.argv = ["nnsweep", *sys.argv[5:]]
from nnsweep.cli import main

main()
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_sigkill_and_ctrl_c_at_random_moments_lose_nothing(tmp_path):
    sweep_file = tmp_path / "crash.py"
    sweep_file.write_text(KILL_SWEEP)
    results = tmp_path / "results"
    folder = results / "crash"
    trials_csv, history_csv = folder / "trials.csv", folder / "history.csv"
    run_args = ["run", str(sweep_file), "--results", str(results), "--pack-size", "2"]
    rng = random.Random(20261125)
    # start: at a random time from launch (import, data loading or training);
    # open: at a random time after the run has locked the folder (training, writing);
    # inject: inside a write (see INJECT); sigint: Ctrl-C once this run has saved a trial.
    modes = ["start"] * 3 + ["open"] * 4 + ["inject"] * 4 + ["sigint"]
    rng.shuffle(modes)
    stats = {"kills": 0, "damaged": 0, "dead_holder": 0, "interrupted": 0, "rounds": 0}

    def damaged() -> bool:
        """What a resume must repair: a torn line, a temporary file, or orphan epochs."""
        if any(
            p.exists() and not p.read_bytes().endswith(b"\n") for p in (trials_csv, history_csv)
        ):
            return True
        if list(folder.glob("*.tmp")):
            return True
        done = set(pd.read_csv(trials_csv)["trial_id"]) if _complete_rows(trials_csv) else set()
        saved = set(pd.read_csv(history_csv)["trial_id"]) if _complete_rows(history_csv) else set()
        return bool(saved - done)

    i = 0
    while i < len(modes) or (stats["kills"] < 10 and i < len(modes) + 8):
        mode = modes[i] if i < len(modes) else "open"
        i += 1
        before = _complete_rows(trials_csv)
        if before == KILL_TRIALS:
            break  # finished early: nothing left to interrupt
        log = tmp_path / f"round{i:02d}-{mode}.log"
        if mode == "inject":
            k, how = rng.randint(1, 6), rng.choice(["torn", "torn", "torn", "clean"])
            args = ["-c", INJECT, str(k), how, str(rng.randrange(2**31)), str(folder)]
            proc = _spawn(args + run_args, tmp_path, log)
        else:
            proc = _spawn(["-m", "nnsweep", *run_args], tmp_path, log)
        stats["rounds"] += 1
        deadline = time.monotonic() + 180
        try:
            if mode == "inject":
                proc.wait(timeout=180)
            elif mode == "sigint":
                if _wait_for(proc, deadline, lambda b=before: _complete_rows(trials_csv) > b):
                    proc.send_signal(signal.SIGINT)
                proc.wait(timeout=120)
            else:
                if mode == "open":
                    _wait_for(proc, deadline, lambda pid=proc.pid: _holds_lock(folder, pid))
                kill_at = time.monotonic() + rng.uniform(0, 8 if mode == "start" else 3)
                # Also stop a fast run after two saved trials, so kills keep finding work.
                _wait_for(
                    proc,
                    deadline,
                    lambda b=before, at=kill_at: (
                        time.monotonic() >= at or _complete_rows(trials_csv) >= b + 2
                    ),
                )
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
        finally:
            _stop(proc)
        output = log.read_text()
        if proc.returncode == 0:
            assert _complete_rows(trials_csv) == KILL_TRIALS, output
            break
        if mode == "sigint":
            assert proc.returncode == 130, output
            last = output.strip().splitlines()[-1]
            found = re.fullmatch(
                rf"interrupted: (\d+) of {KILL_TRIALS} trials done; "
                "run the same command to resume",
                last,
            )
            assert found, output
            # Ctrl-C finishes what is complete: the count is the table's, nothing is torn,
            # and every saved epoch belongs to a saved trial.
            assert int(found.group(1)) == _complete_rows(trials_csv) > before
            assert not damaged(), output
            stats["interrupted"] += 1
            continue
        assert proc.returncode == -signal.SIGKILL, output
        stats["kills"] += 1
        stats["damaged"] += damaged()
        stats["dead_holder"] += _holds_lock(folder, proc.pid)
        if _complete_rows(trials_csv):
            # Reading after a kill skips a torn line and changes nothing.
            snapshot = _snapshot(results)
            df = load_results(folder)
            assert df["trial_id"].is_unique and len(df) == _complete_rows(trials_csv)
            assert set(load_history(folder)["trial_id"]) <= set(df["trial_id"])
            assert _snapshot(results) == snapshot

    # The last run takes over the dead holder's lock, repairs, and finishes the sweep.
    log = tmp_path / "final.log"
    proc = _spawn(["-m", "nnsweep", *run_args], tmp_path, log)
    try:
        proc.wait(timeout=300)
    finally:
        _stop(proc)
    output = log.read_text()
    assert proc.returncode == 0, output
    trained = re.search(r"trained (\d+) trials .* (\d+) were already done", output)
    assert trained and int(trained.group(1)) + int(trained.group(2)) == KILL_TRIALS, output
    _check_complete(folder, sweep_file, KILL_EPOCHS)
    print(f"\nkill test: {stats}")
    assert stats["kills"] >= 10, stats
    assert stats["interrupted"] == 1, stats
    assert stats["damaged"] >= 1 and stats["dead_holder"] >= 1, stats  # both paths were hit


def test_resume_repairs_each_thing_a_kill_can_leave(tmp_path, capsys):
    """The repairs the random kills above may or may not hit, each made to happen."""
    from nnsweep.store.results import ResultsStore, history_columns, trial_columns

    columns = trial_columns(["hidden_units"], "accuracy", "val_accuracy")
    folder = tmp_path / "s"
    folder.mkdir()
    old_header = ",".join(trial_columns(["depth"], "accuracy", "val_accuracy"))
    # A first row torn off right after the header, under columns this sweep no longer has;
    # the epochs of that unfinished trial, the last one torn; and half-written temp files.
    (folder / "trials.csv").write_text(old_header + "\nabc-s0-f0,abc,2,1,0,0,o")
    (folder / "history.csv").write_text(
        ",".join(history_columns("accuracy")) + "\nabc-s0-f0,abc,0,0,1,0.5,0.5,0.5,0.5\nabc-s0"
    )
    (folder / "sweep.json.tmp").write_text('{"half": ')
    (folder / "history.csv.tmp").write_text("trial_id,con")
    store = ResultsStore(tmp_path, "s")
    with store:
        done = store.open({"name": "s"}, columns, history_columns("accuracy"))
        assert done == set()
        store.append({"trial_id": "new-s0-f0", "config_id": "new", "hidden_units": 8}, [])
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock", "history.csv", "runs.jsonl", "sweep.json", "trials.csv"
    ]  # fmt: skip
    assert list(pd.read_csv(folder / "trials.csv").columns) == columns
    assert pd.read_csv(folder / "history.csv").empty

    # `nnsweep list` reports a sweep whose results cannot be read, and goes on.
    sweeps = tmp_path / "sweeps"
    sweeps.mkdir()
    (sweeps / "a.py").write_text('from nnsweep import Sweep\nsweep = Sweep(name="s")\n')
    (sweeps / "b.py").write_text('from nnsweep import Sweep\nsweep = Sweep(name="b")\n')
    (folder / "trials.csv").write_text("trial_id,config_id\na,b,c\n")
    code, out, _ = _cli(capsys, "list", "--sweeps", sweeps, "--results", tmp_path)
    assert code == 0
    assert "s: (cannot read results: " in out and "trials.csv:2: row has 3 fields" in out
    assert "b: 0/1 trials (not run)" in out


# -- two runs of one sweep ----------------------------------------------------------------

PAIR_SWEEP = '''
"""A sweep two runs want at once."""
from nnsweep import Sweep

sweep = Sweep(
    name="pair",
    data="digits",
    model="mlp",
    space={"hidden_units": [4, 8], "epochs": 2, "batch_size": 64},
    seeds=4,
)
'''


def test_a_second_run_is_refused_and_a_dead_holder_is_taken_over(tmp_path, capsys):
    sweep_file = tmp_path / "pair.py"
    sweep_file.write_text(PAIR_SWEEP)
    results = tmp_path / "results"
    folder = results / "pair"
    run_args = ["run", str(sweep_file), "--results", str(results)]
    first = _spawn(["-m", "nnsweep", *run_args, "--no-pack"], tmp_path, tmp_path / "first.log")
    try:
        held = _wait_for(first, time.monotonic() + 180, lambda: _holds_lock(folder, first.pid))
        assert held, (tmp_path / "first.log").read_text()
        code, out, err = _cli(capsys, *run_args)
        still_running = first.poll() is None
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        _stop(first)
    assert still_running  # the refusal above was made while the first run held the sweep
    assert code == 2 and out == ""
    assert err.strip() == (
        f"error: {folder} is in use by pid {first.pid} on {os.uname().nodename}; "
        "wait for it or stop it"
    )
    assert _holds_lock(folder, first.pid)  # the dead holder's name is still in the file
    code, out, err = _cli(capsys, *run_args)
    assert code == 0, err
    trained = re.search(r"trained (\d+) trials .* (\d+) were already done", err)
    assert trained and int(trained.group(1)) + int(trained.group(2)) == 8, err
    _check_complete(folder, sweep_file, epochs=2)


# -- Ctrl-C while the command line starts -------------------------------------------------

# Raises KeyboardInterrupt when MODULE is first imported: Ctrl-C at that exact moment.
_INTERRUPT_AT_IMPORT = """
import sys

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == MODULE:
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
sys.argv = ["nnsweep", *ARGS]
from nnsweep._entry import main
main()
"""


@pytest.mark.parametrize(
    "module", ["click", "nnsweep.cli", "nnsweep.definition.sweep", "nnsweep.store.results"]
)
def test_ctrl_c_while_the_command_line_loads_prints_no_traceback(tmp_path, module):
    args = ["list", "--sweeps", str(tmp_path), "--results", str(tmp_path)]
    (tmp_path / "a.py").write_text(BASE_SWEEP)
    code = _INTERRUPT_AT_IMPORT.replace("MODULE", repr(module)).replace("ARGS", repr(args))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "interrupted"
    assert proc.stdout == ""


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_end_a_run_as_ctrl_c_does(tmp_path, signame):
    """What Slurm sends before it kills, and what a closed terminal sends: the pack in
    flight is dropped, "interrupted", exit 130, and the same command resumes."""
    sweep_file = tmp_path / "crash.py"
    sweep_file.write_text(KILL_SWEEP)
    results = tmp_path / "results"
    folder = results / "crash"
    args = ["-m", "nnsweep", "run", str(sweep_file), "--results", str(results)]
    proc = _spawn([*args, "--pack-size", "2"], tmp_path, tmp_path / "run.log")
    try:
        _wait_for(proc, time.monotonic() + 120, lambda: _complete_rows(folder / "trials.csv"))
        proc.send_signal(getattr(signal, signame))
        assert proc.wait(timeout=120) == 130
    finally:
        _stop(proc)
    log = (tmp_path / "run.log").read_text()
    assert "interrupted:" in log and "run the same command to resume" in log, log
    assert "Traceback" not in log
    kept = _complete_rows(folder / "trials.csv")
    assert 0 < kept < KILL_TRIALS
    done = subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{kept} were already done" in done.stderr
    _check_complete(folder, sweep_file, KILL_EPOCHS)


# -- Ctrl-C inside a write ----------------------------------------------------------------


def test_ctrl_c_during_a_write_lets_the_trial_finish_writing(tmp_path, write_sweep, capsys):
    from conftest import TINY_SWEEP

    sweep_file = write_sweep(TINY_SWEEP)
    results = tmp_path / "results"
    real_fsync, sent = os.fsync, []

    def fsync(fd):
        real_fsync(fd)
        if not sent and os.readlink(f"/proc/self/fd/{fd}").endswith("history.csv"):
            sent.append(fd)  # Ctrl-C between a trial's epochs and its row
            os.kill(os.getpid(), signal.SIGINT)

    os.fsync = fsync
    try:
        code, _, err = _cli(capsys, "run", sweep_file, "--results", results, "--no-pack")
    finally:
        os.fsync = real_fsync
    assert sent and code == 130, err
    assert err.strip().splitlines()[-1] == (
        "interrupted: 1 of 4 trials done; run the same command to resume"
    )
    folder = results / "tiny"
    trials = pd.read_csv(folder / "trials.csv")
    history = pd.read_csv(folder / "history.csv")
    assert len(trials) == 1 and history["trial_id"].tolist() == trials["trial_id"].tolist()
    code, _, err = _cli(capsys, "run", sweep_file, "--results", results)
    assert code == 0 and "trained 3 trials" in err and "1 were already done" in err


# -- diverging and failing trials ---------------------------------------------------------


def test_a_diverging_trial_is_recorded_and_the_sweep_goes_on(tmp_path, write_sweep, capsys):
    # Regression: a squared error has no ceiling, so a huge step sends it to inf or NaN.
    sweep_file = write_sweep(
        """
        import numpy as np

        from nnsweep import Sweep


        def line():
            x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
            return x, x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1


        sweep = Sweep(
            name="diverge",
            data=line,
            space={"hidden_units": 16, "optimizer": "sgd", "learning_rate": [1e12, 0.01],
                   "epochs": 3, "batch_size": 64},
        )
        """
    )
    results = tmp_path / "results"
    code, out, err = _cli(capsys, "run", sweep_file, "--results", results)
    assert code == 0, err
    assert "(1 diverged, 1 ok)" in err
    assert re.search(r"learning_rate=1e\+12 seed=0 -> diverged: loss became \w+ in epoch 1", err)
    df = load_results("diverge", results).set_index("learning_rate")
    bad, good = df.loc[1e12], df.loc[0.01]
    assert bad["status"] == "diverged"
    assert re.fullmatch(r"loss became (nan|inf|-inf) in epoch 1", bad["error"])
    assert bad["epochs_run"] == 1 and pd.isna(bad["test_mae"])
    assert good["status"] == "ok" and good["epochs_run"] == 3 and np.isfinite(good["test_mae"])
    history = pd.read_csv(results / "diverge" / "history.csv")
    assert history.groupby("trial_id").size().to_dict() == {
        bad["trial_id"]: 1,
        good["trial_id"]: 3,
    }


FAILING_SWEEP = '''
"""A custom model that fails two ways: its build raises, or it cannot get the memory."""
import keras

from nnsweep import Sweep


def build(params, spec):
    if params["units"] == 0:
        raise ValueError("units must be positive")
    inputs = keras.Input(spec.input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(params["units"], activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


sweep = Sweep(
    name="failing",
    model=build,
    space={"units": UNITS, "epochs": 1, "batch_size": 64},
    seeds=SEEDS,
)
'''


def test_failing_trials_are_recorded_and_the_sweep_goes_on(tmp_path, write_sweep, capsys):
    # 2**40 units need 64 * 2**40 floats (256 TiB): more than any address space holds.
    body = FAILING_SWEEP.replace("UNITS", "[0, 8, 2**40]").replace("SEEDS", "1")
    sweep_file = write_sweep(body, "failing.py")
    results = tmp_path / "results"
    code, out, err = _cli(capsys, "run", sweep_file, "--results", results)
    assert code == 0, err
    assert "(2 failed, 1 ok)" in err
    assert "units=0 seed=0 -> failed: build() raised ValueError: units must be positive" in err
    df = load_results("failing", results).set_index("units")
    assert df.loc[0, "status"] == "failed"
    assert df.loc[0, "error"] == "build() raised ValueError: units must be positive"
    assert df.loc[2**40, "status"] == "failed"
    assert "ResourceExhaustedError" in df.loc[2**40, "error"]
    assert "OOM when allocating" in df.loc[2**40, "error"]
    assert df.loc[8, "status"] == "ok" and df.loc[8, "test_accuracy"] > 0
    assert set(pd.read_csv(results / "failing" / "history.csv")["trial_id"]) == {
        df.loc[8, "trial_id"]
    }


def test_a_sweep_whose_every_trial_fails_exits_1_with_a_summary(tmp_path, write_sweep, capsys):
    body = FAILING_SWEEP.replace("UNITS", "[0]").replace("SEEDS", "2")
    sweep_file = write_sweep(body, "failing.py")
    results = tmp_path / "results"
    code, out, err = _cli(capsys, "run", sweep_file, "--results", results)
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        "error: all 2 trials failed; the first with: build() raised ValueError: "
        f"units must be positive (rows in {results / 'failing' / 'trials.csv'})"
    )
    assert "Traceback" not in err
    df = load_results("failing", results)
    assert len(df) == 2 and (df["status"] == "failed").all()


def test_adaptive_seeds_whose_every_trial_fails_exit_1_with_the_summary(
    tmp_path, write_sweep, capsys
):
    body = FAILING_SWEEP.replace("UNITS", "[0]").replace("SEEDS", "Seeds(min=2, max=4)")
    body = body.replace("from nnsweep import Sweep", "from nnsweep import Seeds, Sweep")
    sweep_file = write_sweep(body, "failing.py")
    results = tmp_path / "results"
    code, out, err = _cli(capsys, "run", sweep_file, "--results", results)
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        "error: all 2 trials failed; the first with: build() raised ValueError: "
        f"units must be positive (rows in {results / 'failing' / 'trials.csv'})"
    )
    assert "internal error" not in err and "Traceback" not in err


# -- a sweep file changed after a partial run ---------------------------------------------

EVOLVE = '''
"""A sweep that changes between runs."""
from nnsweep import Sweep

sweep = Sweep(
    name="evolve",
    data=DATA,
    model=MODEL,
    space={"dropout": DROPOUT, "epochs": EPOCHS, "batch_size": 64},
    seeds=2,
    validation_split=SPLIT,
)
'''


def _evolve(path: Path, **changes: object) -> Path:
    values = {"DATA": '"digits"', "MODEL": '"mlp"', "DROPOUT": "[0.0, 0.25]", "EPOCHS": "1"}
    values["SPLIT"] = "0.2"
    values.update({k: str(v) for k, v in changes.items()})
    body = EVOLVE
    for key, value in values.items():
        body = body.replace(key, value)
    path.write_text(body)
    return path


def test_a_changed_sweep_file_adds_skips_or_is_refused(tmp_path, capsys):
    sweep_file = tmp_path / "evolve.py"
    results = tmp_path / "results"
    folder = results / "evolve"
    run = ("run", sweep_file, "--results", results)

    _evolve(sweep_file)
    code, _, err = _cli(capsys, *run, "--max-models", "3")  # a partial run: 3 of 4
    assert code == 0 and "1 trials remain" in err, err

    _evolve(sweep_file, DROPOUT="[0.0, 0.25, 0.5]")  # a value added: 2 more trials
    code, _, err = _cli(capsys, *run)
    assert code == 0 and "trained 3 trials" in err and "3 were already done" in err, err
    df = load_results(folder)
    assert len(df) == 6 and sorted(df["dropout"]) == [0.0, 0.0, 0.25, 0.25, 0.5, 0.5]

    _evolve(sweep_file, DROPOUT="[0.25, 0.5]")  # a value removed: its rows stay, unused
    before = _snapshot(results)
    code, out, _ = _cli(capsys, *run, "--dry-run")
    assert code == 0 and out.count("  done  ") == 4 and "  todo  " not in out
    code, _, err = _cli(capsys, *run)
    assert code == 0 and "trained 0 trials" in err and "4 were already done" in err
    after = _snapshot(results)
    # The tables are untouched; sweep.json is rewritten and runs.jsonl gains this run.
    own = ("evolve/sweep.json", "evolve/runs.jsonl")
    assert {k: v for k, v in after.items() if k not in own} == {
        k: v for k, v in before.items() if k not in own
    }
    assert after["evolve/runs.jsonl"].count(b"\n") == before["evolve/runs.jsonl"].count(b"\n") + 1

    csv_file = tmp_path / "digits.csv"
    frame = pd.DataFrame(np.random.default_rng(0).random((60, 4)), columns=list("abcd"))
    frame["target"] = np.arange(60) % 3
    frame.to_csv(csv_file, index=False)
    refused = [  # (the change, what the message says changed)
        (
            {"DATA": repr(str(csv_file))},
            f"data: 'digits' -> '{csv_file}'; data_content: "
            "'1437 rows (+360 test), blake2b …' -> '48 rows (+12 test), blake2b …'",
        ),
        ({"EPOCHS": "2"}, "space['epochs']: 1 -> 2"),
        ({"MODEL": '"cnn"'}, "model: 'mlp' -> 'cnn'"),
        ({"SPLIT": "0.3"}, "validation_split: 0.2 -> 0.3"),
    ]
    before = _snapshot(results)
    for change, says in refused:
        _evolve(sweep_file, DROPOUT="[0.25, 0.5]", **change)
        code, out, err = _cli(capsys, *run)
        assert code == 2 and out == "", err
        lines = [re.sub("blake2b [0-9a-f]{16}", "blake2b …", ln) for ln in err.strip().splitlines()]
        assert len(lines) == 1 and lines[0] == (
            f"error: the sweep changed what every trial depends on since {folder} was "
            f"written ({says}); run with --fresh to move the old results aside and start over"
        )
        assert _snapshot(results) == before, says

    # --fresh moves the old folder aside untouched and starts over with the new sweep.
    code, _, err = _cli(capsys, *run, "--fresh")
    assert code == 0 and "trained 4 trials" in err and "0 were already done" in err, err
    moved = [p for p in results.iterdir() if p.name.startswith("evolve.old-")]
    assert len(moved) == 1
    assert _snapshot(moved[0]) == {
        k.split("/", 1)[1]: v for k, v in before.items() if k.startswith("evolve/")
    }
    assert len(load_results(folder)) == 4

    # --fresh also gets past a results folder too broken to read.
    (folder / "sweep.json").write_text("{not json")
    code, _, err = _cli(capsys, *run)
    assert code == 2 and "sweep.json cannot be read" in err
    code, _, err = _cli(capsys, *run, "--fresh")
    assert code == 0 and "trained 4 trials" in err, err
    assert len([p for p in results.iterdir() if p.name.startswith("evolve.old-")]) == 2


def _table(path: Path, seed: int, rows: int) -> bytes:
    """A small two-class CSV; other seeds or sizes give other rows."""
    rng = np.random.RandomState(seed)
    x = rng.rand(rows, 3)
    lines = ["a,b,c,target"] + [f"{a:.4f},{b:.4f},{c:.4f},{int(a > 0.5)}" for a, b, c in x]
    path.write_text("\n".join(lines) + "\n")
    return path.read_bytes()


def test_what_every_trial_depends_on_is_fingerprinted_and_a_change_refused(tmp_path, capsys):
    results = tmp_path / "results"
    data = tmp_path / "data.csv"
    _table(data, 0, 60)
    grid = tmp_path / "grid.py"
    grid.write_text(_sweep_body(name='"grid"', data=f'"{data}"'))
    run = ("run", grid, "--results", results)
    code, _, err = _cli(capsys, *run, "--max-models", "1")
    assert code == 0, err

    # The same path, other rows (or one value changed): refused, naming what changed.
    for seed, rows in ((1, 60), (0, 80)):
        _table(data, seed, rows)
        before = _snapshot(results)
        code, out, err = _cli(capsys, *run)
        assert code == 2 and out == "", err
        assert err.count("\n") == 1, err
        assert "the sweep changed what every trial depends on" in err
        assert "data_content: '48 rows (+12 test), blake2b " in err, err
        assert _snapshot(results) == before
    # The same content written again (a new mtime) resumes.
    _table(data, 0, 60)
    code, _, err = _cli(capsys, *run)
    assert code == 0 and "1 were already done" in err, err

    # A search: its direction, strategy and ranges are what its oracle state means.
    search = tmp_path / "search.py"
    body = _sweep_body(
        '{"hidden_units": Int(4, 32), "epochs": 1}', name='"search"', strategy='"STRATEGY"',
        max_trials="MAX", direction='"DIRECTION"',
    )  # fmt: skip

    def write(strategy="random", max_trials=1, direction="max", space=None):
        text = body.replace("STRATEGY", strategy).replace("MAX", str(max_trials))
        text = text.replace("DIRECTION", direction)
        search.write_text(text.replace("Int(4, 32)", space) if space else text)

    write()
    code, _, err = _cli(capsys, "run", search, "--results", results)
    assert code == 0, err
    refused = {
        "direction": (dict(direction="min"), "objective: 'val_accuracy (max)' -> 'val_acc"),
        "strategy": (dict(strategy="bayesian"), "strategy: 'random' -> 'bayesian'"),
        "range": (dict(space="Int(4, 64)"), "searched['hidden_units']: {'int': [4, 32]"),
    }  # fmt: skip
    for case, (change, words) in refused.items():
        write(**change)
        before = _snapshot(results)
        code, out, err = _cli(capsys, "run", search, "--results", results)
        assert code == 2 and err.count("\n") == 1 and words in err, (case, err)
        assert _snapshot(results) == before, case
    write(max_trials=2)  # more trials continue the same search
    code, _, err = _cli(capsys, "run", search, "--results", results)
    assert code == 0 and "trained 1 trials" in err, err
    assert len(load_results("search", results)) == 2


# -- bad input ----------------------------------------------------------------------------


def _sweep_body(
    space: str = '{"hidden_units": [4, 8], "epochs": 1, "batch_size": 64}',
    head: str = "",
    **kw: str,
) -> str:
    """The base sweep's file, with some arguments of Sweep(...) replaced (as source)."""
    args = {"name": '"base"', "data": '"digits"', "model": '"mlp"', "space": space, **kw}
    call = "".join(f"    {k}={v},\n" for k, v in args.items())
    imports = "from nnsweep import Choice, Float, Int, Sweep"
    return f'"""A bad sweep."""\n{imports}\n{head}\n\nsweep = Sweep(\n{call})\n'


BASE_SWEEP = _sweep_body()
SPACE = '{"hidden_units": [4, 8], "epochs": 1, "batch_size": 64, %s}'
MAKE_DATA = """
import numpy as np


def make_data():
    x = np.zeros((ROWS, 3), dtype="float32")
    y = np.arange(LABELS) % 3
    return x, y
"""


def _corrupt(name: str, data: bytes, append: bool = True):
    def setup(folder: Path, tmp: Path) -> None:
        path = folder / name
        path.write_bytes((path.read_bytes() if append else b"") + data)

    return setup


def _trials_is_a_folder(folder: Path, tmp: Path) -> None:
    (folder / "trials.csv").unlink()
    (folder / "trials.csv").mkdir()


def _folder_is_a_file(folder: Path, tmp: Path) -> None:
    shutil.rmtree(folder)
    folder.write_text("not a folder\n")


def _blocker(folder: Path, tmp: Path) -> None:
    (tmp / "blocker").write_text("a file where a folder should be\n")


def _csv(columns: str, rows: list[str]):
    def setup(folder: Path, tmp: Path) -> None:
        (tmp / "data.csv").write_text("\n".join([columns, *rows]) + "\n")

    return setup


def _npz(folder: Path, tmp: Path) -> None:
    np.savez(tmp / "data.npz", features=np.zeros((10, 3)), labels=np.zeros(10))


def _npz_with(value: float):
    """An .npz whose inputs hold ``value`` (NaN or inf) in one cell of row 3."""

    def setup(folder: Path, tmp: Path) -> None:
        x = np.zeros((20, 3), "float32")
        x[3, 1] = value
        np.savez(tmp / "data.npz", x=x, y=np.arange(20) % 2)

    return setup


class _Planted:
    """Unpickles by running a shell command that leaves ``marker``: a hostile data file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _planted_npz(name: str, keys: tuple[str, ...]):
    """An .npz (in {tmp}, or {tmp}/dd for a built-in's file) whose first array is an
    object array holding a pickle that would create {tmp}/ran."""

    def setup(folder: Path, tmp: Path) -> None:
        target = tmp / name
        target.parent.mkdir(exist_ok=True)
        planted = np.empty(20, dtype=object)
        planted[:] = [[1, 2, 3]] * 20
        planted[3] = _Planted(tmp / "ran")
        arrays = {keys[0]: planted, **{k: np.arange(20) % 2 for k in keys[1:]}}
        np.savez(target, **arrays)

    return setup


def _text_sequences(folder: Path, tmp: Path) -> None:
    (tmp / "dd").mkdir()
    words = np.empty(20, dtype=object)
    words[:] = [["a", "b"]] * 20
    np.savez(tmp / "dd" / "reuters.npz", x=words, y=np.arange(20) % 2)


def _mnist_without_x_train(folder: Path, tmp: Path) -> None:
    (tmp / "dd").mkdir()
    np.savez(tmp / "dd" / "mnist.npz", y_train=np.zeros(10), x_test=np.zeros((10, 28, 28)))


def _duplicated_line(folder: Path, tmp: Path) -> None:
    path = folder / "trials.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines, lines[-1]]))


def _npz_of(x: np.ndarray, y: np.ndarray):
    def setup(folder: Path, tmp: Path) -> None:
        np.savez(tmp / "data.npz", x=x, y=y)

    return setup


CUSTOM_MODEL = """
import keras


def build(params, spec):
    return keras.Sequential([keras.Input(spec.input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(spec.output_units, activation="softmax")])
"""


def _data(body: str) -> str:
    """A data function ``make_data`` returning ``body`` (numpy as np)."""
    return f"import numpy as np\n\n\ndef make_data():\n    return {body}\n"


_X20 = 'np.zeros((20, 3), "float32")'


_HELD: list[int] = []


def _locked(folder: Path, tmp: Path) -> None:
    fd = os.open(folder / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held until the test ends
    os.ftruncate(fd, 0)
    os.write(fd, b"pid 4242 on elsewhere")
    _HELD.append(fd)


# (id, sweep file body or None for the base sweep, extra run arguments, setup, fragments
# that the one-line message must hold). "{tmp}" is the test's folder, "{sweep}" the file.
BAD_INPUTS = [
    ("syntax-error", "from nnsweep import Sweep\nsweep = Sweep(name='base',\n", [], None,
     ["sweep.py:2: syntax error"]),
    ("no-sweep", '"""Nothing here."""\nx = 1\n', [], None,
     ["sweep.py: defines no Sweep"]),
    ("two-sweeps", BASE_SWEEP + "other = Sweep(name='other')\n", [], None,
     ["defines 2 Sweeps (base, other)"]),
    ("import-error", "import not_a_module_anywhere\n", [], None,
     ["sweep.py:1: ModuleNotFoundError", "not_a_module_anywhere"]),
    ("raises", "raise RuntimeError('boom')\n", [], None, ["sweep.py:1: RuntimeError: boom"]),
    ("missing-sweep-file", None, ["{tmp}/nope.py"], None,
     ["sweep file not found: {tmp}/nope.py"]),
    ("sweep-file-is-a-folder", None, ["{tmp}"], None, ["'SWEEP_FILE'", "is a directory"]),
    ("unknown-hyperparameter", _sweep_body(SPACE % '"filters": 8'), [], None,
     ["sweep.py:5: space['filters'] is not a hyperparameter of model 'mlp'"]),
    ("misspelt-hyperparameter", _sweep_body(SPACE % '"hiden_units": 8'), [], None,
     ["space['hiden_units'] is not a hyperparameter"]),
    ("dropout-1.5", _sweep_body(SPACE % '"dropout": 1.5'), [], None,
     ["sweep.py:5: space['dropout'] must be in [0, 1), got 1.5"]),
    ("hidden-units-0", _sweep_body('{"hidden_units": [0, 8]}'), [], None,
     ["space['hidden_units'] must be >= 1, got 0"]),
    ("hidden-units-abc", _sweep_body('{"hidden_units": "abc"}'), [], None,
     ["space['hidden_units'] must be an integer, got 'abc'"]),
    ("negative-learning-rate", _sweep_body(SPACE % '"learning_rate": -0.1'), [], None,
     ["space['learning_rate'] must be > 0, got -0.1"]),
    ("empty-list", _sweep_body('{"hidden_units": []}'), [], None,
     ["space['hidden_units'] must not be an empty list, got []"]),
    ("unknown-optimizer", _sweep_body(SPACE % '"optimizer": "adamm"'), [], None,
     ["space['optimizer'] must be one of sgd,", "got 'adamm'"]),
    ("unknown-activation", _sweep_body(SPACE % '"activation": "relux"'), [], None,
     ["space['activation'] must be one of relu,", "got 'relux'"]),
    ("momentum-without-sgd", _sweep_body(SPACE % '"momentum": 0.9'), [], None,
     ["space['momentum'] applies only to optimizers 'sgd' and 'rmsprop', got 'adam'"]),
    ("epochs-0", _sweep_body('{"hidden_units": 4, "epochs": 0}'), [], None,
     ["space['epochs'] must be in [1, 100,000], got 0"]),
    ("unknown-dataset", _sweep_body(data='"cifar"'), [], None,
     ["data must be one of digits,", "got 'cifar'"]),
    ("unknown-strategy", _sweep_body(strategy='"evolution"'), [], None,
     ["strategy must be one of grid,", "got 'evolution'"]),
    ("search-over-nothing", _sweep_body('{"hidden_units": 4}', strategy='"random"',
     max_trials="3"), [], None, ["space has nothing to search for strategy 'random'"]),
    ("hyperband-swept-epochs", _sweep_body(SPACE % '"epochs": [1, 2]', strategy='"hyperband"',
     max_trials="3"), [], None, ["space['epochs'] must be fixed for hyperband"]),
    ("grid-over-a-continuous-range",
     _sweep_body(SPACE % '"learning_rate": Float(1e-4, 1e-1, log=True)'), [], None,
     ["space['learning_rate'] is a range without a step, which a grid cannot enumerate"]),
    ("seeds-0", _sweep_body(seeds="0"), [], None, ["seeds must be >= 1, got 0"]),
    ("validation-split-1", _sweep_body(validation_split="1.0"), [], None,
     ["validation_split must be in (0, 1), got 1.0"]),
    ("bad-name", _sweep_body(name='"my sweep"'), [], None,
     ["name must be letters, digits", "got 'my sweep'"]),
    ("unknown-objective", _sweep_body(objective='"val_f2"'), [], None,
     ["objective must be one of loss, accuracy, val_loss, val_accuracy, got 'val_f2'"]),
    ("objective-not-recorded", _sweep_body(objective='"val_auc"'), [], None,
     ["objective needs 'auc' in the sweep's metrics to be recorded, got 'val_auc'"]),
    ("metric-of-another-task", _sweep_body(metrics='["auc"]'), [], None,
     ["metrics auc applies to binary tasks, and this data is multiclass, got 'auc'"]),
    ("missing-data-file", _sweep_body(data='"{tmp}/missing.csv"'), [], None,
     ["data file not found: {tmp}/missing.csv"]),
    ("csv-without-target", _sweep_body(data='"{tmp}/data.csv"'), [],
     _csv("a,b,label", ["1,2,0", "3,4,1", "5,6,0"]),
     ["{tmp}/data.csv has no target column 'target' (columns: a, b, label)"]),
    ("csv-with-text-features", _sweep_body(data='"{tmp}/data.csv"'), [],
     _csv("a,b,target", ["1,x,0", "3,y,1", "5,z,0"]),
     ["{tmp}/data.csv: feature columns must be numeric, not b"]),
    ("npz-without-arrays", _sweep_body(data='"{tmp}/data.npz"'), [], _npz,
     ["{tmp}/data.npz: expected arrays x, y"]),
    ("arrays-of-mismatched-lengths",
     _sweep_body(data="make_data", head=MAKE_DATA.replace("ROWS", "10").replace("LABELS", "9")),
     [], None, ["make_data: train inputs have 10 rows but targets have 9"]),
    ("data-function-raises",
     _sweep_body(data="make_data", head="def make_data():\n    return 1 / 0\n"), [], None,
     ["data function make_data() raised ZeroDivisionError: division by zero"]),
    ("cnn-on-tabular-data",
     _sweep_body('{"epochs": 1}', model='"cnn"', data="make_data",
                 head=MAKE_DATA.replace("ROWS", "30").replace("LABELS", "30")), [], None,
     ["model 'cnn' needs image inputs", "input shape (3,)"]),
    ("unknown-task", _sweep_body(data_options='{"task": "ranking"}'), [], None,
     ["data_options['task'] must be one of multiclass, binary, regression, got 'ranking'"]),
    ("results-under-a-file", None, ["--results", "{tmp}/blocker/results"], _blocker,
     ["results path {tmp}/blocker is not a folder"]),
    ("results-is-a-file", None, ["--results", "{tmp}/blocker"], _blocker,
     ["'--results'", "{tmp}/blocker", "is a file"]),
    ("sweep-folder-is-a-file", None, [], _folder_is_a_file,
     ["results path {tmp}/results/base is not a folder"]),
    ("trials-csv-ragged-row", None, [], _corrupt("trials.csv", b"x,y,z\n"),
     ["{tmp}/results/base/trials.csv:4: row has 3 fields, header has 28"]),
    ("trials-csv-ragged-row-and-torn-line", None, [],
     _corrupt("trials.csv", b"x,y,z\nhalf,a,li"),
     ["{tmp}/results/base/trials.csv:4: row has 3 fields, header has 28"]),
    ("trials-csv-extra-fields", None, [], _corrupt("trials.csv", b"a," * 30 + b"a\n"),
     ["trials.csv:4: row has 31 fields, header has 28"]),
    ("trials-csv-not-text", None, [], _corrupt("trials.csv", b"\xff\xfe\x00garbage\n"),
     ["{tmp}/results/base/trials.csv cannot be parsed: not UTF-8 text"]),
    ("trials-csv-foreign", None, [], _corrupt("trials.csv", b"foo,bar\n1,2\n", append=False),
     ["{tmp}/results/base/trials.csv has no trial_id column"]),
    ("trials-csv-is-a-folder", None, [], _trials_is_a_folder,
     ["{tmp}/results/base/trials.csv is not a file"]),
    ("history-csv-ragged-row", None, [], _corrupt("history.csv", b"1,2\n"),
     ["{tmp}/results/base/history.csv:4: row has 2 fields, header has 9"]),
    ("sweep-json-corrupt", None, [], _corrupt("sweep.json", b"{not json", append=False),
     ["{tmp}/results/base/sweep.json cannot be read", "--fresh"]),
    ("sweep-json-not-an-object", None, [], _corrupt("sweep.json", b"[1, 2]\n", append=False),
     ["{tmp}/results/base/sweep.json does not hold a sweep"]),
    ("fixed-parameter-changed", _sweep_body('{"hidden_units": [4, 8], "epochs": 2, '
                                            '"batch_size": 64}'), [], None,
     ["the sweep changed what every trial depends on", "(space['epochs']: 1 -> 2)",
      "--fresh"]),
    ("swept-parameter-added", _sweep_body(SPACE % '"dropout": [0.0, 0.1]'), [], None,
     ["trials.csv has other columns than this sweep writes (missing: dropout", "--fresh"]),
    ("sweep-held-by-another-run", None, [], _locked,
     ["{tmp}/results/base is in use by pid 4242 on elsewhere"]),
    ("unknown-flag", None, ["--frobnicate"], None,
     ["No such option '--frobnicate'", "nnsweep run --help"]),
    ("max-trials-0", None, ["--max-models", "0"], None,
     ["Invalid value for '--max-models': 0 is not in the range x>=1"]),
    ("pack-size-not-a-number", None, ["--pack-size", "abc"], None,
     ["Invalid value for '--pack-size': 'abc' is not a valid integer"]),
    # Issue 15, class 2: what validation let through, then every trial failed on.
    ("seed-2**32", _sweep_body(seeds="[2**32]"), [], None,
     ["seeds must hold integers <= 2**32 - 1 (4294967295), got 4294967296"]),
    ("seed-huge-count", _sweep_body(seeds="2**40"), [], None,
     ["seeds must be at most 1,000,000, got 1099511627776"]),
    ("split-seed-negative", _sweep_body(split_seed="-1"), [], None,
     ["split_seed must be an integer in [0, 4294967295], got -1"]),
    ("validation-split-leaves-nothing",
     _sweep_body(data="make_data", validation_split="0.95",
                 head=_data(f"{_X20}, np.arange(20) % 3")),
     [], None, ["make_data: validation_split=0.95 leaves 1 of its 16 rows to train on",
                "(at least 2 needed)"]),
    ("cv-larger-than-rows",
     _sweep_body(data="make_data", cv="50", head=_data(f"{_X20}, np.arange(20) % 3")), [], None,
     ["make_data: cv=50 folds need at least 50 rows, it has 16"]),
    # Class 3: bad data values.
    ("npz-with-nan", _sweep_body(data='"{tmp}/data.npz"'), [], _npz_with(float("nan")),
     ["data: train inputs hold missing or infinite values in 1 rows (the first: row 3)"]),
    ("npz-with-inf", _sweep_body(data='"{tmp}/data.npz"'), [], _npz_with(float("inf")),
     ["data: train inputs hold missing or infinite values in 1 rows (the first: row 3)"]),
    ("csv-blank-target", _sweep_body(data='"{tmp}/data.csv"'), [],
     _csv("a,b,target", ["1,2,0", "3,4,", "5,6,1", "7,8,0"]),
     ["data: train targets hold missing or infinite values in 1 rows (the first: row 1)"]),
    ("csv-inf-feature", _sweep_body(data='"{tmp}/data.csv"'), [],
     _csv("a,b,target", ["1,2,0", "3,inf,1", "5,6,1", "7,8,0"]),
     ["data: train inputs hold missing or infinite values in 1 rows (the first: row 1)"]),
    ("huge-labels",
     _sweep_body(data="make_data", head=_data(f"{_X20}, (np.arange(20) % 3) * 10**8")), [], None,
     ["make_data: the largest label 2e+08 would make 200,000,001 classes (at most 10,000)",
      "np.unique(y, return_inverse=True)[1]"]),
    ("labels-not-class-indices",
     _sweep_body(data="make_data", head=_data(f"{_X20}, (np.arange(20) % 3) * 10")), [], None,
     ["make_data: labels 0, 10, 20 use 3 of the 21 classes that 0..20 would make"]),
    ("negative-labels",
     _sweep_body(data="make_data", data_options='{"task": "multiclass"}',
                 head=_data(f"{_X20}, np.arange(20) % 3 - 1")), [], None,
     ["make_data: class labels must be >= 0, got -1"]),
    ("binary-task-on-ten-classes", _sweep_body(data_options='{"task": "binary"}'), [], None,
     ["digits: task 'binary' needs labels 0 and 1, got 10 distinct labels (0, 1, 2, 3, 4, ...)"]),
    # Class 4: sizes counted before anything is built.
    ("grid-of-ten-20-value-lists",
     _sweep_body("{" + ", ".join(f'"{n}": list(range(1, 21))' for n in
                 ("hidden_units", "epochs", "batch_size", "depth")) + ', "dropout": '
                 "[i / 40 for i in range(20)], " + ", ".join(
                     f'"{n}": [10.0 ** -i for i in range(1, 21)]' for n in
                     ("learning_rate", "l1", "l2", "weight_decay", "clipnorm")) + "}"),
     [], None, ["space makes 10,240,000,000,000 trials (configurations x seeds x folds), more "
                "than the 1,000,000 a grid may have"]),
    ("cv-a-million", _sweep_body(cv="10**6"), [], None,
     ["space makes 2,000,000 trials (configurations x seeds x folds)"]),
    # Class 5: user mistakes that were internal errors.
    ("data-dict-without-y-test",
     _sweep_body(data="make_data", head=_data(
         f'{{"x_train": {_X20}, "y_train": np.arange(20) % 2, "x_test": {_X20}}}')), [], None,
     ["data function make_data() returned a dict with x_test but not y_test"]),
    ("data-test-pair-of-one",
     _sweep_body(data="make_data", head=_data(f"({_X20}, np.arange(20) % 2), ({_X20},)")), [],
     None, ["data function make_data() returned pairs of 2 and 1 arrays"]),
    ("mnist-npz-without-x-train", _sweep_body(data='"mnist"'), ["--data-dir", "{tmp}/dd"],
     _mnist_without_x_train,
     ["{tmp}/dd/mnist.npz lacks the arrays x_train, y_test (it has: y_train, x_test)"]),
    # Issue 23, class 1: a data file that would run code (the table's snapshot of {tmp}
    # shows that no marker file appeared).
    ("npz-object-array-planted-pickle", _sweep_body(data='"{tmp}/data.npz"'), [],
     _planted_npz("data.npz", ("x", "y")),
     ["{tmp}/data.npz: array 'x' is an object array, which nnsweep never loads"]),
    ("imdb-file-planted-pickle", _sweep_body(data='"imdb"'), ["--data-dir", "{tmp}/dd"],
     _planted_npz("dd/imdb.npz", ("x_train", "y_train", "x_test", "y_test")),
     ["{tmp}/dd/imdb.npz: array 'x_train' is not a plain array of word sequences",
      "refused global posix.system"]),
    ("reuters-file-planted-pickle", _sweep_body(data='"reuters"'), ["--data-dir", "{tmp}/dd"],
     _planted_npz("dd/reuters.npz", ("x", "y")),
     ["{tmp}/dd/reuters.npz: array 'x' is not a plain array of word sequences"]),
    ("reuters-file-of-text-sequences", _sweep_body(data='"reuters"'),
     ["--data-dir", "{tmp}/dd"], _text_sequences,
     ["{tmp}/dd/reuters.npz: array 'x' row 0 is not a sequence of integer word indices"]),
    ("name-300-characters", _sweep_body(name='"' + "a" * 300 + '"'), [], None,
     ["name must be at most 100 characters (it names a folder)"]),
    ("ray-address-without-port", None, ["--ray", "notahost"], None,
     ["--ray must be auto, HOST:PORT (a port in 1-65535) or empty, got 'notahost'"]),
    ("retired-worker-option", None, ["--worker", "host:8000"], None,
     ["--chief and --worker are gone", "--ray"]),
    ("ray-cpus-without-ray", None, ["--ray-cpus", "2"], None,
     ["--ray-cpus and --ray-gpus go with --ray"]),
    # Class 6: input that was accepted and should not be.
    ("name-with-trailing-newline", _sweep_body(name='"trailing\\n"'), [], None,
     ["name must be letters, digits", "got 'trailing\\n'"]),
    ("repeated-swept-value", _sweep_body('{"hidden_units": [8, 8], "epochs": 1}'), [], None,
     ["space['hidden_units'] must not repeat a value (each is one model; repeated: [8])"]),
    ("repeated-choice-value", _sweep_body('{"dropout": Choice([0.0, 0.1, 0.0])}'), [], None,
     ["space['dropout'] must not repeat a value"]),
    ("trials-csv-duplicated-line", None, [], _duplicated_line,
     ["{tmp}/results/base/trials.csv:4: trial", "is already on line 3"]),
    # Class 7: a sweep file that exits or interrupts while it loads.
    ("sweep-file-calls-sys-exit", "import sys\nsys.exit(0)\n", [], None,
     ["sweep.py:2: the sweep file called sys.exit(0)"]),
    ("sweep-file-raises-keyboard-interrupt", "raise KeyboardInterrupt\n", [], None,
     ["sweep.py:1: loading the sweep file was interrupted (KeyboardInterrupt)"]),
    # Issue 23, class 2: what the table would hold and then refuse.
    ("hyperparameter-named-seed", _sweep_body('{"seed": [1, 2], "epochs": 1}', model="build",
                                              head=CUSTOM_MODEL), [], None,
     ["sweep.py:", "space['seed'] must not be named like a column nnsweep writes"]),
    ("hyperparameter-named-status", _sweep_body('{"status": "x", "epochs": 1}', model="build",
                                                head=CUSTOM_MODEL), [], None,
     ["space['status'] must not be named like a column nnsweep writes"]),
    ("hyperparameter-named-val_loss", _sweep_body('{"val_loss": 0.1, "epochs": 1}',
                                                  model="build", head=CUSTOM_MODEL), [], None,
     ["space['val_loss'] must not be named like a column nnsweep writes"]),
    ("hyperparameter-named-test_accuracy",
     _sweep_body('{"test_accuracy": Choice([1, 2])}', model="build", head=CUSTOM_MODEL,
                 strategy='"random"', max_trials="2"), [], None,
     ["space['test_accuracy'] must not be named like a column nnsweep writes"]),
    ("int-fractional-step-grid", _sweep_body('{"hidden_units": Int(4, 6, step=0.5)}'), [], None,
     ["Int.step must be an integer (values are rounded to integers), got 0.5"]),
    ("int-fractional-step-search",
     _sweep_body('{"hidden_units": Int(4, 16, step=1.5)}', strategy='"random"', max_trials="2"),
     [], None, ["Int.step must be an integer (values are rounded to integers), got 1.5"]),
    ("int-log-fractional-step",
     _sweep_body('{"hidden_units": Int(1, 10, step=1.5, log=True)}'), [], None,
     ["Int.step must be an integer", "got 1.5"]),
    ("log-float-step-below-1",
     _sweep_body('{"learning_rate": Float(1e-3, 1e-1, step=0.5, log=True)}',
                 strategy='"random"', max_trials="2"), [], None,
     ["Float.step must be > 1 when log=True (it multiplies), got 0.5"]),
    # Class 4: data that means nothing.
    ("npz-zero-feature-columns", _sweep_body(data='"{tmp}/data.npz"'), [],
     _npz_of(np.zeros((20, 0)), np.arange(20) % 2),
     ["data: train inputs have no features (shape (20, 0))"]),
    ("images-of-zero-width", _sweep_body(data='"{tmp}/data.npz"'), [], _npz_of(
        np.zeros((20, 4, 0)), np.arange(20) % 2), ["data: train inputs have no features"]),
    ("one-class-only", _sweep_body(data="make_data", head=_data(f"{_X20}, np.zeros(20)")), [],
     None, ["make_data: the training targets hold one class only (0)"]),
    ("one-class-declared-multiclass",
     _sweep_body(data="make_data", data_options='{"task": "multiclass"}',
                 head=_data(f"{_X20}, np.full(20, 3)")), [], None,
     ["make_data: the training targets hold one class only (3)"]),
    ("constant-regression-target",
     _sweep_body(data="make_data", data_options='{"task": "regression"}',
                 head=_data(f"{_X20}, np.full(20, 0.5)")), [], None,
     ["make_data: the training targets hold one value only (0.5)"]),
    ("complex-inputs", _sweep_body(data="make_data", head=_data(
        f"{_X20} + 1j, np.arange(20) % 2")), [], None,
     ["make_data: train inputs are complex numbers; give real values"]),
    ("complex-targets", _sweep_body(data="make_data", head=_data(
        f"{_X20}, np.arange(20) % 2 + 0j")), [], None,
     ["make_data: train targets are complex numbers"]),
    ("complex-npz", _sweep_body(data='"{tmp}/data.npz"'), [], _npz_of(
        np.ones((20, 3), complex), np.arange(20) % 2), ["data: train inputs are complex"]),
    ("csv-column-named-twice", _sweep_body(data='"{tmp}/data.csv"'), [],
     _csv("a,target,target", ["1,0,1", "3,1,0", "5,0,1", "7,1,0"]),
     ["{tmp}/data.csv: the header names a column twice: target"]),
    ("csv-feature-named-twice", _sweep_body(data='"{tmp}/data.csv"'), [],
     _csv("a,a,target", ["1,2,0", "3,4,1", "5,6,0", "7,8,1"]),
     ["{tmp}/data.csv: the header names a column twice: a"]),
    # Class 7: bounds, and ranges counted without being built.
    ("grid-over-a-billion-ints", _sweep_body('{"hidden_units": Int(1, 10**9, step=1)}'), [],
     None, ["space makes 1,000,000,000 trials"]),
    ("grid-over-a-fine-float-range", _sweep_body('{"dropout": Float(0.0, 0.9, step=1e-12)}'),
     [], None, ["space makes", "more than the 1,000,000 a grid may have"]),
    ("threads-100000", None, ["--threads", "100000"], None,
     ["Invalid value for '--threads': 100000 is not in the range 1<=x<=1024"]),
    ("quick-look-of-a-billion-epochs", None, ["--epochs", str(10**9)], None,
     ["Invalid value for '--epochs'", "1<=x<=100000"]),
    ("epochs-a-billion", _sweep_body('{"hidden_units": 4, "epochs": 10**9}'), [], None,
     ["space['epochs'] must be in [1, 100,000], got 1000000000"]),
    # Class 8: user mistakes that were internal errors (others: their own tests).
    ("unknown-objective-says-where", _sweep_body(objective='"val_f2"'), [], None,
     ["{tmp}/sweep.py:5: objective must be one of loss, accuracy, val_loss, val_accuracy"]),
    # Class 10: options that do nothing together, data with nothing in it.
    ("no-pack-with-a-pack-size", None, ["--no-pack", "--pack-size", "4"], None,
     ["--no-pack trains trials one by one: leave out --pack-size"]),
    ("dry-run-with-fresh", None, ["--dry-run", "--fresh"], None,
     ["--dry-run trains nothing and writes nothing: --fresh would do nothing"]),
    ("dry-run-with-max-trials-and-ray", None, ["--dry-run", "--max-models", "2", "--ray"], None,
     ["--max-models, --ray would do nothing"]),
    ("csv-header-only", _sweep_body(data='"{tmp}/data.csv"'), [], _csv("a,b,target", []),
     ["{tmp}/data.csv: has a header but no rows of data"]),
    # Kept models: settings that cannot keep anything.
    ("keep-models-0", None, ["--keep-models", "0"], None,
     ["Invalid value for '--keep-models': '0' is not a count of configurations >= 1 or 'all'"]),
    ("keep-models-best", None, ["--keep-models", "best"], None,
     ["Invalid value for '--keep-models': 'best' is not a count"]),
    ("max-model-disk-not-a-size", None, ["--keep-models", "2", "--max-model-disk", "5XB"], None,
     ["Invalid value for '--max-model-disk': '5XB' is not a size"]),
    ("max-model-disk-without-keeping", None, ["--max-model-disk", "1GB"], None,
     ["--max-model-disk goes with --keep-models (or Sweep(keep_models=...)), got 1000000000"]),
    ("keep-models-in-the-sweep-0", _sweep_body('{"hidden_units": 4}', keep_models="0"), [], None,
     ["keep_models must be a count of configurations >= 1 or 'all', got 0"]),
    ("dry-run-with-keep-models", None, ["--dry-run", "--keep-models", "2"], None,
     ["--dry-run trains nothing and writes nothing: --keep-models would do nothing"]),
]  # fmt: skip
CLICK_ERRORS = {"sweep-file-is-a-folder", "results-is-a-file", "unknown-flag", "max-trials-0",
                "pack-size-not-a-number", "retired-worker-option",
                "ray-cpus-without-ray", "threads-100000", "quick-look-of-a-billion-epochs",
                "no-pack-with-a-pack-size", "dry-run-with-fresh",
                "dry-run-with-max-trials-and-ray", "keep-models-0", "keep-models-best",
                "max-model-disk-not-a-size", "dry-run-with-keep-models"}  # fmt: skip


@pytest.fixture(scope="module")
def partial_results(tmp_path_factory) -> Path:
    """A results folder from a real, partial run of the base sweep (2 of its 4 trials)."""
    root = tmp_path_factory.mktemp("base")
    sweep_file = root / "sweep.py"
    sweep_file.write_text(BASE_SWEEP)
    run_sweep(load_sweep(sweep_file), results=root / "results", max_trials=2, pack_size=1)
    assert len(pd.read_csv(root / "results" / "base" / "trials.csv")) == 2
    # As a run in another process leaves it, so that a refused run rewriting it shows.
    (root / "results" / "base" / ".lock").write_text("pid 999999 on previous-host")
    return root / "results"


@pytest.mark.parametrize(
    "body, extra, setup, fragments",
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    request, tmp_path, capsys, partial_results, body, extra, setup, fragments
):
    case = request.node.callspec.id
    results = tmp_path / "results"
    shutil.copytree(partial_results, results)
    if setup is not None:
        setup(results / "base", tmp_path)
    sweep_file = tmp_path / "sweep.py"
    sweep_file.write_text((body or BASE_SWEEP).replace("{tmp}", str(tmp_path)))
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    if not args or args[0].startswith("--"):
        args = [str(sweep_file), *args]
    if "--results" not in args:
        args += ["--results", str(results)]
    before = _snapshot(tmp_path)
    try:
        code, out, err = _cli(capsys, "run", *args)
        assert code == 2, err
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        for fragment in fragments:
            assert fragment.replace("{tmp}", str(tmp_path)) in lines[0]
        assert "Traceback" not in err
        assert _snapshot(tmp_path) == before

        code, out, err = _cli(capsys, "run", *args, "--debug")
        assert code == 2, err
        assert err.strip().splitlines()[-1] == lines[0]
        if case not in CLICK_ERRORS:  # click's own usage errors have no traceback to show
            assert "Traceback" in err
        assert _snapshot(tmp_path) == before
    finally:
        while _HELD:
            os.close(_HELD.pop())


def test_the_bad_input_corpus_covers_the_issue():
    assert len(BAD_INPUTS) >= 110 and len({c[0] for c in BAD_INPUTS}) == len(BAD_INPUTS)


# -- memory -------------------------------------------------------------------------------


def _three_classes():
    """200 rows of 8 features and 3 classes: the smallest data that still trains."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)


class _Memory(Progress):
    def __init__(self) -> None:
        self.rss_mb: list[float] = []

    def trial_end(self, trial, row) -> None:
        assert row["status"] == "ok", row
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                self.rss_mb.append(int(line.split()[1]) / 1024)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
@pytest.mark.parametrize(
    "pack_size, trials, limit_mb",
    [
        # The issue's case: 200 trials, as a run packs them by default.
        (32, 200, 150),
        # A model and a fit per trial, where Keras and TensorFlow state piles up (before the
        # fix in training._release, 4-5 MB per trial). Each fit costs a second or two of
        # tracing, so 60 trials, held to the same rate: 150 MB per 190 trials.
        (1, 60, 40),
    ],
    ids=["200-trials-packed", "60-trials-one-model-each"],
)
def test_memory_stays_flat(tmp_path, pack_size, trials, limit_mb):
    sweep = Sweep(
        name="memory",
        data=_three_classes,
        space={"hidden_units": 4, "epochs": 1, "batch_size": 64},
        seeds=trials,
    )
    memory = _Memory()
    t0 = time.perf_counter()
    summary = run_sweep(sweep, results=tmp_path, pack_size=pack_size, progress=memory)
    seconds = time.perf_counter() - t0
    assert len(summary.rows) == trials and len(memory.rss_mb) == trials
    base = memory.rss_mb[9]  # after the first 10 trials
    growth = max(memory.rss_mb[10:]) - base
    print(
        f"\nmemory, pack size {pack_size}: {base:.0f} MB after 10 trials, "
        f"{memory.rss_mb[-1]:.0f} MB after {trials} (max growth {growth:+.1f} MB), {seconds:.0f} s"
    )
    assert growth < limit_mb


# -- sweeps built from functions resume in any process ------------------------------------

FUNCTION_SWEEP = '''
"""Functions as data, model and hyperparameter values (issue 15, class 1)."""
import numpy as np
from nnsweep import Sweep


def make_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def relu(x):
    import keras

    return keras.activations.relu(x)


def tanh(x):
    import keras

    return keras.activations.tanh(x)


def build(params, spec):
    import keras

    inputs = keras.Input(spec.input_shape)
    hidden = keras.layers.Dense(4, activation=params["act"])(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))


sweep = Sweep(
    name="functions",
    data=make_data,
    model=build,
    space={"act": [relu, tanh], "epochs": 1, "batch_size": 32},
    seeds=2,
)
'''


def test_a_sweep_of_functions_resumes_in_a_process_with_another_hash_seed(tmp_path):
    sweep_file = tmp_path / "functions.py"
    sweep_file.write_text(FUNCTION_SWEEP)
    results = tmp_path / "results"

    def run(hash_seed: str, *extra: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        args = ["run", str(sweep_file), "--results", str(results), *extra]
        command = [sys.executable, "-m", "nnsweep", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)

    first = run("1", "--max-models", "2")
    assert first.returncode == 0, first.stderr
    rows = pd.read_csv(results / "functions" / "trials.csv")
    assert len(rows) == 2
    second = run("2")  # Python's str hash differs from the first process's
    assert second.returncode == 0, second.stderr
    rows = pd.read_csv(results / "functions" / "trials.csv")
    assert len(rows) == 4 and rows["trial_id"].is_unique
    assert rows["config_id"].nunique() == 2
    assert set(rows["act"]) == {"functions.py.relu", "functions.py.tanh"}
    third = run("3")  # nothing left: every trial is found done, none trained twice
    assert third.returncode == 0, third.stderr
    assert len(pd.read_csv(results / "functions" / "trials.csv")) == 4


def test_reordered_space_keys_resume(tmp_path, capsys):
    results = tmp_path / "results"
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    first.write_text(BASE_SWEEP)
    # The base sweep's space, its keys in another order: the same sweep.
    second.write_text(_sweep_body('{"batch_size": 64, "epochs": 1, "hidden_units": [4, 8]}'))
    code, out, err = _cli(capsys, "run", first, "--results", results, "--max-models", "1")
    assert code == 0, err
    assert len(pd.read_csv(results / "base" / "trials.csv")) == 1
    code, out, err = _cli(capsys, "run", second, "--results", results)
    assert code == 0, err
    assert "1 were already done" in err
    rows = pd.read_csv(results / "base" / "trials.csv")
    assert len(rows) == 2 and rows["trial_id"].is_unique


def test_show_refuses_a_text_column_as_the_metric(capsys, partial_results):
    args = ["show", "base", "--results", partial_results, "--metric", "status"]
    code, out, err = _cli(capsys, *args)
    assert code == 2
    assert err.strip().splitlines() == [
        "error: metric must be a metric column of trials.csv, got 'status' (not a "
        "measurement); try one of: " + err.split("try one of: ")[1].strip()
    ]
    assert "val_accuracy" in err and "Traceback" not in err


def test_list_reports_a_sweep_file_that_exits_and_goes_on(tmp_path, capsys):
    sweeps = tmp_path / "sweeps"
    sweeps.mkdir()
    (sweeps / "a_exits.py").write_text("import sys\nsys.exit(0)\n")
    (sweeps / "b_interrupts.py").write_text("raise KeyboardInterrupt\n")
    (sweeps / "c_base.py").write_text(BASE_SWEEP)
    code, out, err = _cli(capsys, "list", "--sweeps", sweeps, "--results", tmp_path / "r")
    assert code == 0, err
    lines = out.splitlines()
    assert "a_exits.py:2: the sweep file called sys.exit(0)" in lines[0]
    assert "b_interrupts.py:1: loading the sweep file was interrupted" in lines[1]
    assert lines[2].endswith("base: 0/2 trials (not run)")


# 200 digits trials in 25 packs of 8, each pack its own widths: the issue's case, with
# TensorFlow's defaults. Its oneDNN kernels keep a compiled primitive per matrix shape (about
# 9 MB a shape here), so stacks pad hidden widths to shared shapes (4..76 units: 5 shapes,
# which the first sweep meets once); then packs of new widths must not grow memory at all.
_VARYING_SHAPES = """
from pathlib import Path
from nnsweep import Sweep, run_sweep
from nnsweep.run.runner import Progress

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

class Memory(Progress):
    def __init__(self):
        self.rss = []
    def trial_end(self, trial, row):
        assert row["status"] == "ok", row
        self.rss.append(rss())

fixed = {"epochs": 2, "batch_size": 64}
shapes = Sweep(name="shapes", data="digits", seeds=8,
               space={"hidden_units": [16, 32, 48, 64, 80], **fixed})
run_sweep(shapes, results=RESULTS, pack_size=8)
before = rss()
sweep = Sweep(name="widths", data="digits", seeds=8,
              space={"hidden_units": list(range(4, 79, 3)), **fixed})
memory = Memory()
run_sweep(sweep, results=RESULTS, pack_size=8, progress=memory)
print(len(memory.rss), before, max(memory.rss))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_memory_stays_flat_over_packs_of_varying_shapes(tmp_path):
    code = _VARYING_SHAPES.replace("RESULTS", repr(str(tmp_path)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)  # TensorFlow's default: oneDNN on
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    trials, before, most = proc.stdout.split()
    growth = float(most) - float(before)
    print(f"\n200 trials in 25 widths: {before} MB before, max {most} MB")
    assert int(trials) == 200 and growth < 15, growth
