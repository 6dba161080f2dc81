from __future__ import annotations

import pandas as pd
import pytest

from nnsweep import Sweep, load_history, load_results, run_sweep
from nnsweep.errors import DataError, SweepDefinitionError, SweepFailedError, SweepInterrupted
from nnsweep.run.runner import Progress

pytest.importorskip("keras")


def _sweep(**kw):
    kw.setdefault("name", "r")
    kw.setdefault("space", {"hidden_units": [4, 8], "epochs": 1, "batch_size": 128})
    kw.setdefault("seeds", 2)
    return Sweep(**kw)


class Recorder(Progress):
    def __init__(self):
        self.events = []

    def start(self, sweep, total, done):
        self.events.append(("start", total, done))

    def pack_start(self, pack):
        self.events.append(("pack", len(pack)))

    def trial_end(self, trial, row):
        self.events.append(("end", trial.trial_id, row["status"]))


def test_run_writes_every_trial_once_and_resumes(tmp_path):
    sweep = _sweep()
    rec = Recorder()
    first = run_sweep(sweep, results=tmp_path, max_trials=3, progress=rec)
    assert len(first.rows) == 3 and first.remaining == 1 and first.counts == {"ok": 3}
    assert rec.events[0] == ("start", 4, 0)
    assert rec.events[1] == ("pack", 3)  # the whole grid packs; max_trials cut it to 3
    assert [r["pack_size"] for r in first.rows] == [3, 3, 3]
    second = run_sweep(sweep, results=tmp_path)
    assert second.done_before == 3 and len(second.rows) == 1 and second.remaining == 0
    df = load_results("r", tmp_path)
    assert sorted(df["trial_id"]) == sorted(t.trial_id for t in sweep.grid_trials())
    assert (df["status"] == "ok").all() and df["hidden_units"].tolist() == [4, 4, 8, 8]
    history = load_history("r", tmp_path)
    assert len(history) == 4 and set(history["trial_id"]) == set(df["trial_id"])
    third = run_sweep(sweep, results=tmp_path)
    assert third.rows == [] and third.done_before == 4


def test_added_values_add_trials_and_removed_ones_are_skipped(tmp_path):
    run_sweep(_sweep(space={"hidden_units": [4], "epochs": 1}), results=tmp_path)
    summary = run_sweep(_sweep(space={"hidden_units": [8], "epochs": 1}), results=tmp_path)
    assert summary.done_before == 0 and len(summary.rows) == 2
    assert len(load_results("r", tmp_path)) == 4


def test_bad_data_fails_before_anything_is_written(tmp_path):
    sweep = _sweep(data=str(tmp_path / "missing.csv"))
    with pytest.raises(DataError, match="not found"):
        run_sweep(sweep, results=tmp_path / "results")
    assert not (tmp_path / "results").exists()
    cnn = _sweep(data=lambda: ([[0.0, 1.0]] * 10, [0, 1] * 5), model="cnn", space={})
    with pytest.raises(DataError, match="image inputs"):
        run_sweep(cnn, results=tmp_path / "results")
    with pytest.raises(SweepDefinitionError, match="objective"):
        run_sweep(_sweep(objective="val_auc"), results=tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_every_trial_failing_raises_after_saving_the_rows(tmp_path):
    def build(params, spec):
        raise RuntimeError("no model today")

    with pytest.raises(SweepFailedError, match="all 2 trials failed.*no model today"):
        run_sweep(_sweep(model=build, space={"epochs": 1}), results=tmp_path)
    df = load_results("r", tmp_path)
    assert (df["status"] == "failed").all() and len(df) == 2


def test_ctrl_c_keeps_finished_trials_and_says_how_to_resume(tmp_path):
    class Interrupt(Recorder):
        def trial_end(self, trial, row):
            super().trial_end(trial, row)
            if len(self.events) == 3:
                raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted, match="interrupted: 1 of 4 trials done; run the same"):
        run_sweep(_sweep(), results=tmp_path, progress=Interrupt())
    assert len(pd.read_csv(tmp_path / "r" / "trials.csv")) == 1
    assert len(run_sweep(_sweep(), results=tmp_path).rows) == 3


def test_kfold_gives_a_row_per_fold(tmp_path):
    sweep = _sweep(space={"hidden_units": 4, "epochs": 1}, seeds=1, cv=3)
    run_sweep(sweep, results=tmp_path)
    df = load_results("r", tmp_path)
    assert sorted(df["fold"]) == [0, 1, 2]
    assert df["val_accuracy"].nunique() == 3


def test_a_front_end_that_takes_the_objective_gets_the_one_that_ranks(tmp_path):
    class Told(Recorder):
        def start(self, sweep, total, done, *, objective=None):
            self.events.append(("start", total, done, objective))

    told = Told()
    run_sweep(_sweep(seeds=1, space={"epochs": 1}, objective="val_loss"), results=tmp_path,
              progress=told)  # fmt: skip
    assert told.events[0] == ("start", 1, 0, "val_loss")
