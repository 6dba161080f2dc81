from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from nnsweep.errors import (
    CorruptResultsError,
    ResultsError,
    ResultsLockedError,
    ResultsMismatchError,
)
from nnsweep.store.results import (
    ResultsStore,
    history_columns,
    list_result_dirs,
    load_history,
    load_results,
    trial_columns,
)

COLUMNS = trial_columns(["hidden_units"], "accuracy", "val_accuracy")
HISTORY = history_columns("accuracy")
SWEEP_JSON = {"name": "s", "fingerprint": {"data": "digits", "fixed": {"epochs": 1}}}


def _row(tid, **kw):
    return {"trial_id": tid, "config_id": tid[:3], "hidden_units": 8, "seed": 0, "fold": 0,
            "status": "ok", "error": "", "epochs_run": 1, "test_accuracy": 0.5, **kw}  # fmt: skip


def _epochs(tid, n=1):
    return [{"trial_id": tid, "config_id": tid[:3], "seed": 0, "fold": 0, "epoch": e + 1,
             "loss": 1.0 / (e + 1)} for e in range(n)]  # fmt: skip


def _open(tmp_path, sweep_json=SWEEP_JSON, **kw):
    store = ResultsStore(tmp_path, "s")
    done = store.open(sweep_json, COLUMNS, HISTORY, **kw)
    return store, done


def test_append_then_resume_sees_completed_trials(tmp_path):
    store, done = _open(tmp_path)
    assert done == set()
    store.append(_row("aaa-s0-f0"), _epochs("aaa-s0-f0", 2))
    store.append(_row("bbb-s0-f0", status="failed", error="boom"), [])
    store.close()
    store, done = _open(tmp_path)
    store.close()
    assert done == {"aaa-s0-f0", "bbb-s0-f0"}
    df = load_results("s", tmp_path)
    assert list(df.columns) == COLUMNS and len(df) == 2
    assert df.loc[1, "error"] == "boom"
    assert len(load_history(tmp_path / "s")) == 2
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["name"] == "s"


def test_a_table_from_before_the_phase_column_reads_as_search_and_gains_it_on_open(tmp_path):
    old_columns = [c for c in COLUMNS if c != "phase"]
    folder = tmp_path / "s"
    folder.mkdir()
    rows = [_row("aaa-s0-f0"), _row("bbb-s0-f0")]
    pd.DataFrame(rows, columns=old_columns).to_csv(folder / "trials.csv", index=False)
    df = load_results("s", tmp_path)  # reading changes nothing ...
    assert list(df.columns) == COLUMNS and set(df["phase"]) == {"search"}
    assert "phase" not in (folder / "trials.csv").read_text().splitlines()[0]
    store, done = _open(tmp_path)  # ... a run's open writes the column
    store.append(_row("ccc-s0-f0", phase="confirm"), [])
    store.close()
    assert done == {"aaa-s0-f0", "bbb-s0-f0"}
    df = pd.read_csv(folder / "trials.csv")
    assert list(df.columns) == COLUMNS
    assert df["phase"].tolist() == ["search", "search", "confirm"]


def test_torn_last_line_and_orphan_epochs_are_repaired(tmp_path):
    store, _ = _open(tmp_path)
    store.append(_row("aaa-s0-f0"), _epochs("aaa-s0-f0"))
    store.close()
    folder = tmp_path / "s"
    with open(folder / "trials.csv", "a") as fh:
        fh.write("bbb-s0-f0,bbb,8,0,0,o")  # a kill in the middle of a row
    with open(folder / "history.csv", "a") as fh:
        fh.write("bbb-s0-f0,bbb,0,0,1,0.5,,,\n")  # epochs of a trial that never finished
    store, done = _open(tmp_path)
    store.close()
    assert done == {"aaa-s0-f0"}
    assert len(pd.read_csv(folder / "trials.csv")) == 1
    assert set(pd.read_csv(folder / "history.csv")["trial_id"]) == {"aaa-s0-f0"}
    assert not list(folder.glob("*.tmp"))


def test_a_second_writer_is_refused_with_the_holder_named(tmp_path):
    store, _ = _open(tmp_path)
    try:
        with pytest.raises(ResultsLockedError, match=r"in use by pid \d+"):
            _open(tmp_path)
    finally:
        store.close()
    other, _ = _open(tmp_path)  # released: the next run may go
    other.close()


def test_changed_fingerprint_is_refused_and_fresh_moves_old_results_aside(tmp_path):
    store, _ = _open(tmp_path)
    store.append(_row("aaa-s0-f0"), [])
    store.close()
    changed = {"name": "s", "fingerprint": {"data": "digits", "fixed": {"epochs": 5}}}
    with pytest.raises(ResultsMismatchError, match=r"space\['epochs'\]: 1 -> 5.*--fresh"):
        _open(tmp_path, changed)
    store, done = _open(tmp_path, changed, fresh=True)
    store.close()
    assert done == set()
    moved = [p for p in tmp_path.iterdir() if ".old-" in p.name]
    assert len(moved) == 1 and (moved[0] / "trials.csv").exists()
    assert [p.name for p in list_result_dirs(tmp_path)] == []  # new folder has no rows yet


def test_corrupt_tables_are_reported_not_guessed(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "trials.csv").write_text("trial_id,config_id\na,b,c,d\n")
    with pytest.raises(CorruptResultsError, match=r"trials.csv:2: row has 4 fields, header has 2"):
        _open(tmp_path)
    (folder / "trials.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(CorruptResultsError, match="no trial_id column"):
        load_results(folder)
    (folder / "sweep.json").write_text("{not json")
    with pytest.raises(CorruptResultsError, match="sweep.json"):
        _open(tmp_path)


def test_other_columns_need_fresh(tmp_path):
    store, _ = _open(tmp_path)
    store.append(_row("aaa-s0-f0"), [])
    store.close()
    other = trial_columns(["depth"], "accuracy", "val_accuracy")
    with pytest.raises(ResultsMismatchError, match="missing: depth"):
        ResultsStore(tmp_path, "s").open(SWEEP_JSON, other, HISTORY)


def test_unwritable_results_folder_is_refused_before_writing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ResultsError, match="not a folder"):
        ResultsStore(blocker / "results", "s").check_writable()


def test_load_results_by_name_folder_or_file(tmp_path):
    store, _ = _open(tmp_path)
    store.append(_row("aaa-s0-f0"), [])
    store.close()
    for ref in ("s", tmp_path / "s", tmp_path / "s" / "trials.csv"):
        assert len(load_results(ref, tmp_path)) == 1
    with pytest.raises(ResultsError, match="no results"):
        load_results("nope", tmp_path)


def test_a_full_disk_is_one_error_naming_the_file_and_keeps_what_was_written(tmp_path, monkeypatch):
    store, _ = _open(tmp_path)
    store.append(_row("aaa-1"), _epochs("aaa-1"))
    real_fsync = os.fsync

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ResultsError) as info:
        store.append(_row("bbb-1"), _epochs("bbb-1"))
    assert str(info.value).startswith(
        f"cannot write {tmp_path / 's' / 'history.csv'}: No space left on device; "
        "what was written before is kept"
    )
    monkeypatch.setattr(os, "fsync", real_fsync)
    store.close()
    # On resume, the trial that was being written is not done; the first one is.
    assert _open(tmp_path)[1] == {"aaa-1"}


def test_ids_are_read_as_text_whatever_they_look_like(tmp_path):
    # Hex digests that pandas would read as numbers: a float (inf), an int without its 0.
    store, _ = _open(tmp_path)
    for tid in ("735e401366-s0-f0", "0123456789-s0-f0"):
        epochs = [{**e, "config_id": tid[:10]} for e in _epochs(tid)]
        store.append(_row(tid, config_id=tid[:10]), epochs)
    store.close()
    trials = load_results("s", tmp_path)
    assert list(trials["config_id"]) == ["735e401366", "0123456789"]
    history = load_history("s", tmp_path)
    assert list(history["config_id"]) == ["735e401366", "0123456789"]
    assert list(history["trial_id"]) == ["735e401366-s0-f0", "0123456789-s0-f0"]


def test_a_table_of_a_header_alone_has_no_trials_yet(tmp_path):
    store, _ = _open(tmp_path)
    store.close()
    (tmp_path / "s" / "trials.csv").write_text(",".join(COLUMNS) + "\n")
    (tmp_path / "s" / "history.csv").write_text(",".join(HISTORY) + "\n")
    with pytest.raises(ResultsError, match="no trials in .*trials.csv yet"):
        load_results("s", tmp_path)
    with pytest.raises(ResultsError, match="no history in .*history.csv yet"):
        load_history("s", tmp_path)


def test_a_fingerprint_entry_an_older_run_did_not_record_is_not_a_change(tmp_path):
    store, _ = _open(tmp_path)
    store.close()
    newer = {**SWEEP_JSON, "fingerprint": {**SWEEP_JSON["fingerprint"], "data_content": "x"}}
    store, _ = _open(tmp_path, newer)  # an older sweep.json: nothing to compare with
    store.close()
    other = {**SWEEP_JSON, "fingerprint": {**SWEEP_JSON["fingerprint"], "data_content": "y"}}
    with pytest.raises(ResultsMismatchError, match="data_content: 'x' -> 'y'"):
        _open(tmp_path, other)
