"""Executors: packs as Ray tasks give a local run's rows; faults lose nothing, twice nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import FAILING_PACK, REPO

from nnsweep import Prune, Sweep, load_results, run_sweep
from nnsweep.cli import main
from nnsweep.definition.sweep import load_sweep
from nnsweep.errors import ClusterError, SweepDefinitionError
from nnsweep.run.executors import RayOptions

ray = pytest.importorskip("ray")

KEYS = ["trial_id", "config_id", "seed", "fold", "status", "epochs_run"]
METRICS = ["loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for this module's tests (2 CPUs, no dashboard)."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)  # fmt: skip
    yield ray
    ray.shutdown()


def _grid(name: str = "g", **kw) -> Sweep:
    space = {"hidden_units": [4, 8, 16], "learning_rate": [1e-3, 1e-2], "epochs": 3,
             "batch_size": 64}  # fmt: skip
    return Sweep(name=name, data="digits", model="mlp", space=space, seeds=2, **kw)


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = (d.sort_values("trial_id").reset_index(drop=True) for d in (a, b))
    pd.testing.assert_frame_equal(a[KEYS], b[KEYS])
    for m in METRICS:
        assert (a[m] - b[m]).abs().max() <= 1e-5 * b[m].abs().max() + 1e-6, m


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_a_sweep_on_ray_gives_a_local_runs_rows(local_ray, tmp_path):
    here = run_sweep(_grid(), results=tmp_path / "here", pack_size=4)
    there = run_sweep(_grid(), results=tmp_path / "ray", pack_size=4, ray=RayOptions())
    assert there.packs == here.packs == 3
    _same_rows(load_results(tmp_path / "ray" / "g"), load_results(tmp_path / "here" / "g"))
    rows = load_results(tmp_path / "ray" / "g")
    # Ray's workers trained the rows, and runs.jsonl says which processes they are.
    runs = (tmp_path / "ray" / "g" / "runs.jsonl").read_text()
    assert all(w in runs for w in rows["worker"].unique())
    assert os.getpid() not in {int(w.rsplit(":", 1)[1]) for w in rows["worker"]}
    # Done means done: a second run trains nothing.
    assert run_sweep(_grid(), results=tmp_path / "ray", ray=RayOptions()).rows == []


def test_the_pool_paths_ray_workers_take_reach_the_drivers_summary(local_ray, tmp_path):
    space = {"filters": [(4,), (8,)], "epochs": 1}
    sweep = Sweep(name="c", data="digits", model="cnn", space=space, seeds=1)
    summary = run_sweep(sweep, results=tmp_path, ray=RayOptions())
    assert summary.counts == {"ok": 2}
    notes = [n for n in summary.notes if n.startswith("cnn pool (")]
    assert notes and all("measured on " in n and "ms a step" in n for n in notes)


def test_sweep_files_with_functions_train_on_the_workers(local_ray, tmp_path, write_sweep):
    sweep_file = write_sweep(FAILING_PACK, "fails.py")
    sweep = load_sweep(sweep_file)
    summary = run_sweep(sweep, results=tmp_path, ray=RayOptions())
    df = load_results(tmp_path / "fails")
    # The build function came from the sweep file (by value); a trial that raises is a
    # failed row, not retried, and its pack-mates train on.
    broken = df[df["broken"] == "True"] if df["broken"].dtype == object else df[df["broken"]]
    assert (broken["status"] == "failed").all()
    assert broken["error"].str.contains("cannot train this branch").all()
    assert (df.loc[~df.index.isin(broken.index), "status"] == "ok").all()
    assert summary.fallbacks == 1  # the pack failed as a whole and trained one by one
    ids = {t.trial_id for t in sweep.grid_trials()}
    assert set(df["trial_id"]) == ids


def test_pruning_on_ray_decides_the_same_every_time(local_ray, tmp_path):
    """Two packs in flight: waves of two, each pack judged on the waves before it."""
    space = {"learning_rate": [3e-2, 1e-4], "hidden_units": [4, 32], "epochs": 5,
             "batch_size": 32}  # fmt: skip
    sweep = Sweep(name="g", data="digits", space=space, seeds=2, prune=Prune())
    a = run_sweep(sweep, results=tmp_path / "a", pack_size=2, ray=RayOptions())
    run_sweep(sweep, results=tmp_path / "b", pack_size=2, ray=RayOptions())
    cols = ["trial_id", "config_id", "status", "epochs_run", "rungs", "pruned_by"]
    da, db = (
        load_results(p / "g")[cols].sort_values("trial_id").reset_index(drop=True)
        for p in (tmp_path / "a", tmp_path / "b")
    )
    pd.testing.assert_frame_equal(da, db)
    # The second wave (learning rate 1e-4) is judged against the first and pruned; the
    # first wave's packs, judged apart from each other, pass.
    first = list(dict.fromkeys(t.config_id for t in sweep.grid_trials()))[:2]
    assert (da.loc[da.config_id.isin(first), "status"] == "ok").all()
    assert (da.loc[~da.config_id.isin(first), "status"] == "pruned").all()
    assert a.packs == 4


def _pack_tasks() -> list[int]:
    """Pids of Ray worker processes running a pack now (Ray names them by the task)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"ray::_pack_task" in cmd:
            out.append(int(pid))
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_a_worker_killed_mid_pack_trains_its_pack_again(local_ray, tmp_path):
    sweep = Sweep(
        name="k", data="digits", model="mlp", seeds=2,
        space={"hidden_units": [8, 16], "epochs": 150, "batch_size": 32},
    )  # fmt: skip
    killed: list[int] = []

    def kill_one() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            pids = _pack_tasks()
            if pids:
                time.sleep(1)  # into its training (a wait on another process, not a timing)
                for pid in _pack_tasks()[:1]:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.1)

    watcher = threading.Thread(target=kill_one, daemon=True)
    watcher.start()
    summary = run_sweep(sweep, results=tmp_path, pack_size=2, ray=RayOptions())
    watcher.join(timeout=5)
    assert killed, "no pack task was seen to kill"
    df = load_results(tmp_path / "k")
    assert sorted(df["trial_id"]) == sorted(t.trial_id for t in sweep.grid_trials())
    assert df["trial_id"].is_unique and (df["status"] == "ok").all()
    assert not summary.lost


def test_bad_addresses_and_missing_resources_are_one_line(local_ray, tmp_path, capsys):
    sweep_file = tmp_path / "g.py"
    sweep_file.write_text(
        "from nnsweep import Sweep\n"
        "sweep = Sweep(name='g', data='digits', space={'hidden_units': [4], 'epochs': 1})\n"
    )
    results = tmp_path / "results"
    code, _, err = _cli(capsys, "run", sweep_file, "--results", results, "--ray", "nohost")
    assert code == 2 and "--ray must be auto, HOST:PORT" in err
    code, _, err = _cli(capsys, "run", sweep_file, "--results", results, "--ray-gpus", "1")
    assert code == 2 and "--ray-cpus and --ray-gpus go with --ray" in err
    code, _, err = _cli(capsys, "run", sweep_file, "--results", results, "--ray", "--ray-gpus",
                        "1")  # fmt: skip
    assert code == 1 and "the Ray cluster has 0 GPUs" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, _, err = _cli(capsys, "run", sweep_file, "--chief")
    assert code == 2 and "--chief and --worker are gone" in err and "--ray" in err
    assert not results.exists()  # nothing written by any of them


def test_an_unreachable_cluster_is_one_line_and_nothing_written(tmp_path, capsys):
    was = ray.is_initialized()
    if was:
        ray.shutdown()
    with pytest.raises(ClusterError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        run_sweep(_grid(), results=tmp_path, ray=RayOptions(address="127.0.0.1:1"))
    assert not (tmp_path / "g").exists()
    with pytest.raises(SweepDefinitionError, match="--ray-cpus must be > 0"):
        RayOptions(cpus=0)


# -- whole processes: a driver killed, a node removed --------------------------------------

BAYES = """
from nnsweep import Float, Int, Sweep

sweep = Sweep(
    name="bayes", data="digits", model="mlp", seeds=2, strategy="bayesian", max_trials=6,
    space={"hidden_units": Int(4, 32, step=4), "learning_rate": Float(1e-3, 3e-2, log=True),
           "epochs": 4, "batch_size": 32},
)
"""


def _ray_env(folder: Path) -> dict[str, str]:
    """The environment of a driver process whose local Ray lives under ``folder`` (short:
    Ray's sockets live there, and a socket's path has at most 107 bytes)."""
    return {**os.environ, "PYTHONPATH": str(REPO), "RAY_TMPDIR": str(folder)}


def _stop_ray_under(folder: Path) -> None:
    """End what a SIGKILLed driver's local Ray left running (its processes outlive it)."""
    mark = str(folder).encode()
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and mark in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            continue


def _rows_in(path: Path) -> int:
    return max(len(path.read_text().splitlines()) - 1, 0) if path.exists() else 0


def test_a_bayesian_search_whose_driver_is_killed_resumes(tmp_path):
    sweep_file = tmp_path / "bayes.py"
    sweep_file.write_text(BAYES)
    results = tmp_path / "results"
    args = [sys.executable, "-m", "nnsweep", "run", str(sweep_file), "--results", str(results),
            "--ray"]  # fmt: skip
    import tempfile

    ray_dir = Path(tempfile.mkdtemp(prefix="nnr", dir="/tmp"))
    env = _ray_env(ray_dir)
    trials = results / "bayes" / "trials.csv"
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while _rows_in(trials) < 4 and proc.poll() is None:
            assert time.monotonic() < deadline, "the run wrote no rows"
            time.sleep(0.05)  # polling a file another process writes, not timing a result
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    _stop_ray_under(ray_dir)
    killed_at = _rows_in(trials)
    assert 4 <= killed_at < 12
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    _stop_ray_under(ray_dir)
    __import__("shutil").rmtree(ray_dir, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    df = load_results(results / "bayes")
    assert df["trial_id"].is_unique
    assert df["config_id"].nunique() == 6 and df.groupby("config_id").size().eq(2).all()


TWO_NODES = r"""
import sys, threading, time
import ray
from ray.cluster_utils import Cluster
from nnsweep import Sweep, load_results, run_sweep
from nnsweep.run.executors import RayOptions

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
second = cluster.add_node(num_cpus=1)
ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
sweep = Sweep(name="two", data="digits", model="mlp", seeds=2,
              space={"hidden_units": [4, 8, 12, 16], "epochs": 80, "batch_size": 32})
removed = []
trials = sys.argv[1] + "/two/trials.csv"

def remove():
    # Once the first pack is back, both nodes train the next two: take one away.
    import os
    while not (os.path.exists(trials) and len(open(trials).read().splitlines()) >= 3):
        time.sleep(0.05)
    time.sleep(float(sys.argv[2]))
    cluster.remove_node(second)
    removed.append(time.monotonic())

threading.Thread(target=remove, daemon=True).start()
summary = run_sweep(sweep, results=sys.argv[1], pack_size=2, ray=RayOptions(address="auto"))
df = load_results(sys.argv[1] + "/two")
print("ROWS", len(df), df["trial_id"].is_unique, bool(removed), len(summary.lost))
"""


def test_a_node_removed_mid_run_loses_nothing(tmp_path):
    script = tmp_path / "two.py"
    script.write_text(TWO_NODES)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "r"), "1"], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ROWS 8 True True 0" in proc.stdout, proc.stdout + proc.stderr[-2000:]


LONG = """
from nnsweep import Sweep

sweep = Sweep(name="long", data="digits", model="mlp", seeds=2,
              space={"hidden_units": [4, 8, 12, 16], "epochs": 60, "batch_size": 32})
"""


def test_ctrl_c_on_ray_cancels_the_packs_in_flight_and_exits_130(tmp_path):
    sweep_file = tmp_path / "long.py"
    sweep_file.write_text(LONG)
    results = tmp_path / "results"
    args = [sys.executable, "-m", "nnsweep", "run", str(sweep_file), "--results", str(results),
            "--ray", "--pack-size", "2"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    trials = results / "long" / "trials.csv"
    try:
        deadline = time.monotonic() + 240
        while _rows_in(trials) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "the run wrote no rows"
            time.sleep(0.05)  # polling a file another process writes, not timing a result
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    done = _rows_in(trials)
    assert 2 <= done < 8
    assert err.strip().splitlines()[-1] == (
        f"interrupted: {done} of 8 trials done; run the same command to resume"
    )
    assert not _pack_tasks()  # the local Ray went with its driver: nothing trains on


def test_ray_not_installed_says_how_to_install_it(monkeypatch, tmp_path):
    from nnsweep.run.executors import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what Python does for a missing package
    with pytest.raises(SweepDefinitionError, match=r"needs Ray: pip install 'nnsweep\[ray\]'"):
        import_ray()
    assert SweepDefinitionError.exit_code == 2


def test_models_trained_on_ray_are_kept_by_the_driver(local_ray, tmp_path):
    import keras

    from nnsweep.data import load_dataset
    from nnsweep.run.keep import kept_of

    summary = run_sweep(_grid(), results=tmp_path, pack_size=4, ray=RayOptions(), keep_models=2)
    assert any(n.startswith("kept models: 4 files of 2 configurations") for n in summary.notes)
    (best, *_) = kept_of(tmp_path / "g")
    model = keras.models.load_model(best.path)
    data = load_dataset("digits")
    scores = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
    assert scores["accuracy"] == pytest.approx(best.row["test_accuracy"], rel=1e-6)
