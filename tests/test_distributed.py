"""A chief and workers on loopback: every trial exactly once, even when a worker dies.

The end-to-end tests start real processes (`nnsweep run --chief` / `--worker`); every wait
is bounded, and a test that fails kills what it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nnsweep import Sweep, run_sweep
from nnsweep._compat import set_project_dir
from nnsweep.distributed import ChiefOracle, Worker, parse_address
from nnsweep.errors import ChiefError, ResultsLockedError, SweepDefinitionError
from nnsweep.results import ResultsStore, load_results

DEADLINE = 240  # seconds any one end-to-end test may take, start-up included


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "nnsweep", *args], cwd=cwd, env=env, stdout=fh,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _kill_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


def _wait(proc: subprocess.Popen, deadline: float) -> int:
    return proc.wait(timeout=max(1.0, deadline - time.monotonic()))


GRID = """
from nnsweep import Sweep, run_sweep
sweep = Sweep(name="dist", data="digits", model="mlp", seeds=2, strategy="grid",
              space={"hidden_units": [8, 16, 32, 64], "epochs": EPOCHS, "batch_size": 32})
"""
RANDOM = """
from nnsweep import Sweep, Int, Float
sweep = Sweep(name="dist", data="digits", model="mlp", seeds=2, strategy="random",
              max_trials=4, space={"hidden_units": Int(8, 64, step=8), "depth": Int(1, 2),
              "dropout": Float(0.0, 0.5), "learning_rate": Float(1e-3, 1e-2, log=True),
              "epochs": EPOCHS, "batch_size": 32})
"""


def _run_distributed(tmp_path: Path, body: str, epochs: int, kill_after: float | None = None):
    """A chief and workers w1, w2; with ``kill_after``, w1 is SIGKILLed that many seconds
    into its first trial. Returns the table and the chief's log."""
    sweep_file = tmp_path / "dist.py"
    sweep_file.write_text(body.replace("EPOCHS", str(epochs)))
    port = _free_port()
    common = ["--results", str(tmp_path / "results")]
    deadline = time.monotonic() + DEADLINE
    chief_log = tmp_path / "chief.log"
    procs = [
        _spawn(["run", str(sweep_file), "--chief", "--host", "127.0.0.1", "--port", str(port),
                "--worker-timeout", "6", *common], tmp_path, chief_log)
    ]  # fmt: skip
    try:
        for name in ("w1", "w2"):
            args = ["run", str(sweep_file), "--worker", f"127.0.0.1:{port}", "--worker-id", name,
                    "--threads", "1", *common]  # fmt: skip
            procs.append(_spawn(args, tmp_path, tmp_path / f"{name}.log"))
        if kill_after is not None:
            while "-> w1" not in chief_log.read_text():
                assert time.monotonic() < deadline and procs[1].poll() is None, "w1 got no trial"
                time.sleep(0.2)
            time.sleep(kill_after)
            os.killpg(procs[1].pid, signal.SIGKILL)
            procs[1].wait(timeout=10)
        codes = [_wait(p, deadline) for p in procs if p is not procs[1] or kill_after is None]
    except BaseException:
        for log in ("chief", "w1", "w2"):
            print(f"--- {log}\n{(tmp_path / f'{log}.log').read_text()}")
        raise
    finally:
        _kill_all(procs)
    logs = {n: (tmp_path / f"{n}.log").read_text() for n in ("chief", "w1", "w2")}
    assert codes == [0] * len(codes), logs
    return load_results("dist", results=tmp_path / "results"), logs


def test_grid_on_a_chief_and_two_workers_has_every_trial_once(tmp_path):
    df, logs = _run_distributed(tmp_path, GRID, epochs=2)
    assert len(df) == 8 and not df["trial_id"].duplicated().any()
    assert sorted(df["hidden_units"]) == [8, 8, 16, 16, 32, 32, 64, 64]
    assert (df["status"] == "ok").all()
    # Both workers trained, and the rows say which process wrote them.
    assert "trained" in logs["w1"] and "trained" in logs["w2"]
    assert df["worker"].nunique() == 2


def test_random_search_on_a_chief_and_two_workers_has_every_trial_once(tmp_path):
    df, logs = _run_distributed(tmp_path, RANDOM, epochs=2)
    assert len(df) == 4 * 2 and not df["trial_id"].duplicated().any()
    assert df.groupby("config_id").size().eq(2).all() and df["config_id"].nunique() == 4
    assert "search done: 4 tuner trials ended" in logs["chief"]


def test_a_worker_killed_mid_trial_leaves_its_trial_to_the_other(tmp_path):
    # 40 epochs on digits keep a trial busy for seconds: the kill lands inside it.
    df, logs = _run_distributed(tmp_path, GRID, epochs=40, kill_after=1.5)
    assert "w1 silent" in logs["chief"] and "handed to w2" in logs["chief"]
    assert len(df) == 8 and not df["trial_id"].duplicated().any()
    assert sorted(df["hidden_units"]) == [8, 8, 16, 16, 32, 32, 64, 64]


# -- the chief's bookkeeping, in process ------------------------------------------------


def _oracle(max_trials: int):
    import keras_tuner as kt

    hp = kt.HyperParameters()
    hp.Int("units", 1, 100)
    oracle = kt.oracles.RandomSearchOracle(
        objective=kt.Objective("score", "max"), max_trials=max_trials, hyperparameters=hp, seed=1
    )
    oracle.verbose = 0
    return oracle


def test_the_chief_hands_a_silent_workers_trial_to_the_next_that_asks(tmp_path):
    oracle = _oracle(max_trials=2)
    set_project_dir(oracle, str(tmp_path), "tuner")
    lines: list[str] = []
    chief = ChiefOracle(oracle, worker_timeout=30, log=lines.append)
    a = chief.create_trial("a")
    b = chief.create_trial("b")
    assert a.status == b.status == "RUNNING" and a.trial_id != b.trial_id
    chief.update_trial(b.trial_id, {"score": 1.0})
    b.status = "COMPLETED"
    chief.end_trial(b)
    # The search is used up but a's trial runs: b waits instead of leaving.
    assert chief.create_trial("b").status == "IDLE" and not chief.done()
    chief.get_trial(a.trial_id)  # a's heartbeat
    assert chief.create_trial("b").status == "IDLE"
    chief.seen["a"] -= 31  # a falls silent
    taken = chief.create_trial("b")
    assert taken.trial_id == a.trial_id and any("a silent" in line for line in lines)
    chief.update_trial(a.trial_id, {"score": 2.0})
    taken.status = "COMPLETED"
    chief.end_trial(taken)
    late = oracle.trials[a.trial_id]
    chief.end_trial(late)  # a was only slow after all: its late report changes nothing
    assert oracle.end_order.count(a.trial_id) == 1
    assert chief.create_trial("b").status == "STOPPED"
    chief.seen["a"] -= 100
    assert chief.done()


def test_shared_results_take_each_trial_once_and_refuse_a_plain_run(tmp_path):
    columns = ["trial_id", "config_id", "status"]
    stores = [ResultsStore(tmp_path, "s", shared=True) for _ in range(2)]
    for store in stores:
        store.open({"name": "s"}, columns, ["trial_id", "epoch"])
    row = {"trial_id": "t1", "config_id": "c", "status": "ok"}
    assert stores[0].append(row, [{"trial_id": "t1", "epoch": 1}])
    assert not stores[1].append(row, [{"trial_id": "t1", "epoch": 1}])
    # A worker killed mid-write leaves a torn line; the next writer cuts it first.
    with open(tmp_path / "s" / "trials.csv", "a") as fh:
        fh.write("t2,c,o")
    assert stores[1].append({**row, "trial_id": "t3"}, [])
    table = pd.read_csv(tmp_path / "s" / "trials.csv")
    assert list(table["trial_id"]) == ["t1", "t3"]
    with pytest.raises(ResultsLockedError, match="distributed run"):
        ResultsStore(tmp_path, "s").open({"name": "s"}, columns, ["trial_id", "epoch"])
    for store in stores:
        store.close()


def test_a_worker_that_cannot_reach_the_chief_says_so_in_bounded_time():
    sweep = Sweep(name="x", data="digits", space={"hidden_units": [8]})
    t0 = time.monotonic()
    with pytest.raises(ChiefError, match=r"cannot reach the chief at 127.0.0.1:\d+ after"):
        Worker(f"127.0.0.1:{_free_port()}", "w", connect_timeout=2).connect(sweep)
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize("address", ["host", "host:", "host:99999", "host:http"])
def test_a_bad_chief_address_is_refused(address):
    with pytest.raises(SweepDefinitionError, match="HOST:PORT"):
        parse_address(address)


def test_a_worker_started_after_the_sweep_finished_exits_at_once(tmp_path):
    sweep = Sweep(name="done", data="digits", space={"hidden_units": [4, 8], "epochs": 1})
    run_sweep(sweep, results=tmp_path)  # the whole sweep, as a chief and its workers left it
    heard: list[str] = []
    # Nothing listens at this port: a worker that waited for a chief would take 120 s.
    worker = Worker(f"127.0.0.1:{_free_port()}", "late", connect_timeout=120, log=heard.append)
    t0 = time.monotonic()
    summary = run_sweep(sweep, results=tmp_path, worker=worker)
    assert time.monotonic() - t0 < 30
    assert summary.rows == [] and summary.done_before == 2 and summary.remaining == 0
    assert heard == [f"every trial of done is already in {tmp_path / 'done'}; nothing to do"]
    assert len(load_results("done", results=tmp_path)) == 2


def test_a_chief_whose_port_is_taken_is_refused_before_writing(tmp_path, capsys):
    from nnsweep.cli import main

    sweep_file = tmp_path / "dist.py"
    sweep_file.write_text(GRID.replace("EPOCHS", "1"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["run", str(sweep_file), "--chief", "--host", "127.0.0.1", "--port", str(port),
                "--results", str(tmp_path / "results")]  # fmt: skip
        with pytest.raises(SystemExit) as info:
            main(args)
    out, err = capsys.readouterr()
    assert info.value.code == 2
    assert err.startswith("error: --port cannot be listened on at 127.0.0.1 ("), err
    assert err.count("\n") == 1, err
    assert f"got {port}" in err
    assert not (tmp_path / "results").exists()
