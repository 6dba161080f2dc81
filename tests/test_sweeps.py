"""The sweep files in sweeps/: each loads, and IMDB and Reuters run end to end on tiny files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO
from test_data import write_imdb, write_reuters

from nnsweep import load_sweep
from nnsweep.cli import main

SWEEPS = sorted((REPO / "sweeps").glob("*.py"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_sweep_file_loads_and_asks_a_question(path: Path):
    sweep = load_sweep(path)
    assert sweep.name == path.stem
    assert sweep.description and sweep.description.endswith((".", "?"))
    if sweep.strategy == "grid":
        assert sweep.grid_trials()
    else:  # a search: its space must map onto Keras Tuner's hyperparameters
        from nnsweep.strategies.tuner import hyperparameters

        assert sweep.max_trials and hyperparameters(sweep).space


@pytest.mark.parametrize("name, write", [("imdb", write_imdb), ("reuters", write_reuters)])
def test_text_sweeps_run_end_to_end_on_small_keras_files(tmp_path, capsys, name, write):
    data = tmp_path / "data"
    data.mkdir()
    write(data)
    results = tmp_path / "results"
    args = ["run", str(REPO / "sweeps" / f"{name}.py"), "--epochs", "1"]
    args += ["--data-dir", str(data), "--results", str(results)]
    with pytest.raises(SystemExit) as info:
        main(args)
    _, err = capsys.readouterr()
    assert info.value.code == 0, err
    df = pd.read_csv(results / f"{name}-epochs1" / "trials.csv")
    assert len(df) == len(load_sweep(REPO / "sweeps" / f"{name}.py").grid_trials())
    assert (df["status"] == "ok").all() and df["test_accuracy"].between(0, 1).all()
    if name == "imdb":  # ranked by validation AUC, beside accuracy
        assert df["best_val_auc"].between(0, 1).all() and df["test_auc"].between(0, 1).all()
        with pytest.raises(SystemExit) as info:
            main(["show", f"{name}-epochs1", "--results", str(results)])
        out, err = capsys.readouterr()
        assert info.value.code == 0, err
        assert "by val_auc (higher is better)" in out and "test_auc" in out
