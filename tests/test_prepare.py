"""Setting up a run: every check before anything
is written; and the package's import graph, which the set-up module keeps free of cycles."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO

from nnsweep import Sweep
from nnsweep.errors import SweepDefinitionError
from nnsweep.run.prepare import prepare, versions


def test_prepare_checks_data_and_objective_and_writes_nothing(tmp_path) -> None:
    sweep = Sweep(name="p", space={"hidden_units": [4, 8], "epochs": 1}, seeds=2)
    run = prepare(sweep, results=tmp_path / "results", data_dir=None, phase="confirm")
    assert (run.objective, run.direction) == ("val_accuracy", "max")
    assert run.ctx.phase == "confirm" and run.record["versions"] == versions()
    assert run.columns[:3] == ["trial_id", "config_id", "hidden_units"]
    assert "phase" in run.columns and run.history_columns[-1] == "val_accuracy"
    assert not (tmp_path / "results").exists()

    bad = Sweep(name="q", space={"hidden_units": 4, "epochs": 1}, objective="val_f2")
    with pytest.raises(SweepDefinitionError, match="objective must be one of"):
        prepare(bad, results=tmp_path / "results", data_dir=None)
    assert not (tmp_path / "results").exists()


def test_a_class_weight_for_a_class_the_data_lacks_fails_before_anything_is_written(
    tmp_path,
) -> None:
    import numpy as np

    def three_classes():  # not a built-in: its classes are known once it is loaded
        return np.random.RandomState(0).rand(60, 4), np.arange(60) % 3

    space = {"hidden_units": 4, "epochs": 1, "class_weight": [None, {3: 2.0}]}
    sweep = Sweep(name="w", data=three_classes, space=space)
    with pytest.raises(SweepDefinitionError, match=r"classes of the data \(0..2\), got 3"):
        prepare(sweep, results=tmp_path / "results", data_dir=None)
    assert not (tmp_path / "results").exists()


def test_the_import_graph_has_no_cycle() -> None:
    proc = subprocess.run(
        [sys.executable, "benchmarks/import_cycles.py"], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip() == "0 cycles"
