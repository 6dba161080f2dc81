"""TensorBoard logs, read back with TensorBoard's own reader: live from a run, rebuilt from
the CSVs, and consistent with trials.csv across resumes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from conftest import REPO

from nnsweep.cli import main
from nnsweep.tensorboard import TensorBoardLog, log_dir

pytest.importorskip("tensorboard")

TWO_EPOCHS = '''
"""Does width matter on digits? (a test sweep)"""
from nnsweep import Sweep

sweep = Sweep(
    name="tiny",
    data="digits",
    space={"hidden_units": [4, 8], "epochs": 2, "batch_size": 64, "learning_rate": 0.01},
    seeds=2,
)
'''
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def read_run(folder):
    """What TensorBoard sees of one run: hparams, session ends, and scalar steps per tag."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    ea = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    ea.Reload()
    out = {"hparams": None, "ends": [], "steps": {}, "experiment": None}
    for tag in ea.Tags()["tensors"]:
        if tag.startswith("_hparams_/"):
            continue
        out["steps"][tag] = [e.step for e in ea.Tensors(tag)]
    for content in ea.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        kind = data.WhichOneof("data")
        if kind == "session_start_info":
            assert out["hparams"] is None, "one session start per run"
            out["hparams"] = {
                k: v.number_value if v.HasField("number_value") else v.string_value
                for k, v in data.session_start_info.hparams.items()
            }
        elif kind == "session_end_info":
            out["ends"].append(data.session_end_info.status)
        elif kind == "experiment":
            out["experiment"] = {
                h.name: [v.number_value for v in h.domain_discrete.values]
                for h in data.experiment.hparam_infos
            }
    return out


def check_logs(results, epochs=2):
    """Every trial in trials.csv has one completed run with its values and epochs."""
    from tensorboard.plugins.hparams import api_pb2

    df = pd.read_csv(results / "tiny" / "trials.csv")
    logs = log_dir(results / "tiny")
    runs = sorted(p.name for p in logs.iterdir() if p.is_dir() and p.name != "_experiment")
    assert runs == sorted(df["trial_id"])
    experiment = read_run(logs / "_experiment")["experiment"]
    assert experiment == {"hidden_units": [4.0, 8.0], "seed": [0.0, 1.0], "fold": [0.0]}
    for row in df.itertuples():
        run = read_run(logs / row.trial_id)
        assert run["hparams"] == {"hidden_units": row.hidden_units, "seed": row.seed, "fold": 0}
        assert run["ends"] == [api_pb2.STATUS_SUCCESS]
        for m in METRICS:
            assert run["steps"][m] == list(range(1, epochs + 1)), (row.trial_id, m)
        assert run["steps"]["test_accuracy"] == [epochs]
    return df


def test_a_run_with_tensorboard_logs_every_trial_as_it_trains(write_sweep, tmp_path, capsys):
    sweep_file = write_sweep(TWO_EPOCHS)
    results = tmp_path / "results"
    code, out, err = _cli(capsys, "run", sweep_file, "--results", results, "--tensorboard")
    assert code == 0, err
    assert f"tensorboard --logdir {results / 'tiny' / 'tensorboard'}" in out
    check_logs(results)


def test_logs_from_the_csvs_are_the_same_and_writing_twice_duplicates_nothing(
    write_sweep, tmp_path, capsys
):
    sweep_file = write_sweep(TWO_EPOCHS)
    results = tmp_path / "results"
    code, _, err = _cli(capsys, "run", sweep_file, "--results", results)
    assert code == 0, err
    assert not log_dir(results / "tiny").exists()
    # A run of a trial that is not in the table (a kill before its row): removed.
    (log_dir(results / "tiny") / "deadbeef00-s9-f0").mkdir(parents=True)
    for _ in range(2):
        code, out, err = _cli(capsys, "tensorboard", "tiny", "--results", results)
        assert code == 0, err
        assert out.startswith("wrote 4 trials' runs to ")
    df = check_logs(results)
    # The figures match the table: the last epoch's val_accuracy is the row's.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    row = df.iloc[0]
    ea = EventAccumulator(str(log_dir(results / "tiny") / row.trial_id))
    ea.Reload()
    last = ea.Tensors("val_accuracy")[-1].tensor_proto.float_val[0]
    assert last == pytest.approx(row.val_accuracy, rel=1e-6)


def test_writing_logs_from_the_csvs_never_imports_tensorflow(write_sweep, tmp_path, capsys):
    sweep_file = write_sweep(TWO_EPOCHS)
    results = tmp_path / "results"
    assert _cli(capsys, "run", sweep_file, "--results", results)[0] == 0
    code = f"""
        import sys
        from nnsweep.cli import main
        try:
            main(["tensorboard", "tiny", "--results", {str(results)!r}])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        print("HEAVY", [m for m in ("tensorflow", "keras") if m in sys.modules])
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_a_resumed_run_restarts_the_logs_of_trials_it_trains_again(write_sweep, tmp_path, capsys):
    sweep_file = write_sweep(TWO_EPOCHS)
    results = tmp_path / "results"
    args = ("run", sweep_file, "--results", results, "--tensorboard")
    code, _, err = _cli(capsys, *args, "--max-models", "2")
    assert code == 0, err
    done = set(pd.read_csv(results / "tiny" / "trials.csv")["trial_id"])
    # What a kill leaves of a trial in flight: its start and an epoch, no end, no row.
    from nnsweep.definition.sweep import load_sweep
    from nnsweep.store.results import load_sweep_json

    pending = next(t for t in load_sweep(sweep_file).grid_trials() if t.trial_id not in done)
    log = TensorBoardLog(results / "tiny", load_sweep_json(results / "tiny"))
    values = {"hidden_units": pending.params["hidden_units"], "seed": pending.seed, "fold": 0}
    log.start(pending.trial_id, values)
    log.epoch(pending.trial_id, 1, {"loss": 9.0})
    log.close()
    code, _, err = _cli(capsys, *args)
    assert code == 0, err
    check_logs(results)  # every run once, ended, with each epoch once


def test_a_pruned_trial_ends_unknown_with_the_epoch_it_stopped_at(tmp_path, capsys):
    """TensorBoard has no 'pruned': the session ends Unknown and pruned_at_epoch says where."""
    from tensorboard.plugins.hparams import api_pb2
    from test_report import make_pruned

    folder = make_pruned(tmp_path)
    assert _cli(capsys, "tensorboard", "grid", "--results", tmp_path)[0] == 0
    pruned = read_run(log_dir(folder) / "mlp-4-sgd-s0-f0")
    assert pruned["ends"] == [api_pb2.Status.Value("STATUS_UNKNOWN")]
    assert pruned["steps"]["pruned_at_epoch"] == [1]
    assert "test_accuracy" not in pruned["steps"]
    ok = read_run(log_dir(folder) / "mlp-64-adam-s0-f0")
    assert ok["ends"] == [api_pb2.Status.Value("STATUS_SUCCESS")]
    assert "pruned_at_epoch" not in ok["steps"]


# -- nnsweep tensorboard while a run writes the logs --------------------------------------

LIVE_EPOCHS = 40  # a trial trains for a second or so: long enough to be caught in flight
LIVE = TWO_EPOCHS.replace('"epochs": 2', f'"epochs": {LIVE_EPOCHS}')


def _live_trial(folder, pid):
    """A trial the run holding ``folder`` is training: its run is logged, its row not yet
    written (None until the run holds the lock, has a row, and trains the next trial)."""
    try:
        if not (folder / ".lock").read_text().startswith(f"pid {pid} "):
            return None
        done = {line.split(",")[0] for line in (folder / "trials.csv").read_text().splitlines()}
    except OSError:
        return None
    logs = log_dir(folder)
    runs = [p for p in logs.iterdir() if p.is_dir()] if logs.exists() and len(done) > 1 else []
    live = [p for p in runs if p.name not in done and p.name != "_experiment" and any(p.iterdir())]
    return live[0] if live else None


def test_rebuilding_the_logs_of_a_live_run_is_refused_and_changes_nothing(
    write_sweep, tmp_path, capsys
):
    sweep_file = write_sweep(LIVE)
    results = tmp_path / "results"
    folder = results / "tiny"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = ["-m", "nnsweep", "run", str(sweep_file), "--results", str(results)]
    with open(tmp_path / "run.log", "w") as log:  # one trial a pack: trials start in turn
        run = subprocess.Popen(
            [sys.executable, *args, "--tensorboard", "--no-pack"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline, live = time.monotonic() + 300, None
        while live is None:  # polled: the run holds the folder and trains its second trial
            assert run.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "timed out waiting for a live trial"
            time.sleep(0.02)
            live = _live_trial(folder, run.pid)
        events = sorted(live.iterdir())
        table = (folder / "trials.csv").read_bytes()
        code, out, err = _cli(capsys, "tensorboard", "tiny", "--results", results)
        still_running = run.poll() is None
        after = (folder / "trials.csv").read_bytes()
        mine = [p for p in log_dir(folder).rglob("*") if f".{os.getpid()}." in p.name]
        kept = all(p.exists() for p in events)
        holder = (folder / ".lock").read_text()
        assert run.wait(timeout=300) == 0, (tmp_path / "run.log").read_text()
    finally:
        if run.poll() is None:
            run.kill()
        run.wait(timeout=60)
    assert still_running  # refused while the run held the folder
    assert (code, out) == (2, "")
    assert err == (
        f"error: {folder} is in use by pid {run.pid} on {os.uname().nodename}; try again "
        "when it ends (nnsweep tensorboard rewrites the logs, and a run with --tensorboard "
        "writes them as it trains)\n"
    )
    # Nothing written or removed: the live trial's run is whole, the table only grew.
    assert kept and mine == [] and after.startswith(table)
    assert holder.startswith(f"pid {run.pid} ")
    check_logs(results, epochs=LIVE_EPOCHS)  # every trial's run, complete, once
    # Once the run has ended, the same command rebuilds the logs.
    code, out, err = _cli(capsys, "tensorboard", "tiny", "--results", results)
    assert code == 0 and out.startswith("wrote 4 trials' runs to "), err
    check_logs(results, epochs=LIVE_EPOCHS)


def test_added_metrics_are_logged_live_and_from_the_csvs_alike(write_sweep, tmp_path, capsys):
    body = TWO_EPOCHS.replace("seeds=2,", 'seeds=1,\n    metrics=["f1", "top_k_accuracy"],')
    assert "metrics=" in body
    results = tmp_path / "results"
    code, _, err = _cli(capsys, "run", write_sweep(body), "--results", results, "--tensorboard")
    assert code == 0, err
    logs = log_dir(results / "tiny")
    df = pd.read_csv(results / "tiny" / "trials.csv")
    added = ("f1", "val_f1", "top_k_accuracy", "val_top_k_accuracy")
    live = {}
    for trial_id in df["trial_id"]:
        live[trial_id] = read_run(logs / trial_id)["steps"]
        for tag in added:
            assert live[trial_id][tag] == [1, 2], (trial_id, tag)
        assert live[trial_id]["test_f1"] == [2]
    code, _, err = _cli(capsys, "tensorboard", "tiny", "--results", results)
    assert code == 0, err
    for trial_id, steps in live.items():
        assert read_run(logs / trial_id)["steps"] == steps
