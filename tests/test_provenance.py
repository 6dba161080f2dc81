from __future__ import annotations

import json

import pandas as pd

from nnsweep.cli import main
from nnsweep.diff import diff_sweeps
from nnsweep.store.provenance import RUNS, log_run, mixed_versions, runs, this_process
from nnsweep.store.results import ResultsStore, trial_columns

OLD = {"tensorflow": "2.16.1", "keras": "3.3.3"}
NEW = {"tensorflow": "2.17.0", "keras": "3.3.3"}


def _table(folder, workers):
    """An ok row per (worker, count) pair, as runs in those processes would write them."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"trial_id": f"{w}-{i}", "config_id": f"c{i}", "hidden_units": 8 * (i + 1), "seed": 0,
         "fold": 0, "status": "ok", "error": "", "test_accuracy": 0.9, "worker": w}
        for w, n in workers for i in range(n)
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(folder / "trials.csv", index=False)
    info = {"name": folder.name, "swept": ["hidden_units"], "metric": "accuracy"}
    (folder / "sweep.json").write_text(json.dumps(info))


def _runs(folder, entries):
    lines = [json.dumps({"run": r, "started_at": "2026-11-26T00:00:00+00:00", "versions": v})
             for r, v in entries]  # fmt: skip
    (folder / RUNS).write_text("\n".join(lines) + "\n")


def test_each_opening_of_a_results_folder_records_its_run(tmp_path):
    for versions in (OLD, NEW):
        store = ResultsStore(tmp_path, "s")
        store.open({"name": "s", "versions": versions}, trial_columns(["u"], "accuracy", "x"), [])
        store.close()
    lines = (tmp_path / "s" / RUNS).read_text().splitlines()
    assert [json.loads(line)["versions"] for line in lines] == [OLD, NEW]
    assert json.loads(lines[0])["run"] == this_process()
    # The same process twice: its latest line is what counts.
    assert runs(tmp_path / "s") == {this_process(): NEW}


def test_a_torn_line_neither_breaks_reading_nor_swallows_the_next_run(tmp_path):
    (tmp_path / RUNS).write_text('{"run": "h:1", "versions": {"tensorflow": "2.16')
    log_run(tmp_path, NEW)
    assert runs(tmp_path) == {this_process(): NEW}


def test_a_table_trained_under_two_versions_is_named_by_report_and_diff(tmp_path, capsys):
    folder = tmp_path / "mixed"
    _table(folder, [("h:1", 3), ("h:2", 2), ("h:3", 1)])  # h:3 predates runs.jsonl
    _runs(folder, [("h:1", OLD), ("h:2", NEW)])
    df = pd.read_csv(folder / "trials.csv")
    assert mixed_versions(df, folder) == ["tensorflow: 2.16.1 (3 trials), 2.17.0 (2 trials)"]
    _table(tmp_path / "clean", [("h:1", 3)])
    _runs(tmp_path / "clean", [("h:1", OLD)])
    assert mixed_versions(pd.read_csv(tmp_path / "clean" / "trials.csv"), tmp_path / "clean") == []

    d = diff_sweeps("clean", "mixed", results=tmp_path)
    assert d.mixed == {"mixed": ["tensorflow: 2.16.1 (3 trials), 2.17.0 (2 trials)"]}
    try:
        main(["report", "mixed", "--results", str(tmp_path)])
    except SystemExit as exc:
        assert exc.code == 0
    err = capsys.readouterr().err
    assert err.startswith(
        "warning: mixed's trials trained under different versions: tensorflow: 2.16.1 "
        "(3 trials), 2.17.0 (2 trials)"
    )


def test_a_run_records_its_code_and_processor_and_diff_names_them(tmp_path, monkeypatch):
    """Issue 24, item 1: what the numbers depend on besides the libraries."""
    from nnsweep.run.prepare import versions
    from nnsweep.store.provenance import code_fingerprint, processor

    mine = versions()
    assert mine["nnsweep_source"] == code_fingerprint() and len(mine["nnsweep_source"]) == 12
    assert {"cpu", "cpu_isa", "onednn"} <= mine.keys() and mine["cpu"]
    # The oneDNN settings that change the kernels are read, not assumed.
    processor.cache_clear()
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    try:
        capped = processor()
        assert capped["onednn"] == "off" and capped["cpu_isa"].endswith("(capped at AVX2)")
    finally:
        processor.cache_clear()

    # Another machine, the same libraries: the table's report and diff say what differs.
    # An instruction set other than this machine's (which may itself be AVX2).
    isa = "avx2" if mine["cpu_isa"] != "avx2" else "sse4.2"
    other = {**mine, "cpu": "Some Other CPU", "cpu_isa": isa}
    folder = tmp_path / "moved"
    _table(folder, [("h:1", 2), ("h:2", 1)])
    _runs(folder, [("h:1", mine), ("h:2", other)])
    assert mixed_versions(pd.read_csv(folder / "trials.csv"), folder) == [
        f"cpu: {mine['cpu']} (2 trials), Some Other CPU (1 trials)"
        if mine["cpu"] < "Some Other CPU"
        else f"cpu: Some Other CPU (1 trials), {mine['cpu']} (2 trials)",
        f"cpu_isa: {isa} (1 trials), {mine['cpu_isa']} (2 trials)"
        if isa < mine["cpu_isa"]
        else f"cpu_isa: {mine['cpu_isa']} (2 trials), {isa} (1 trials)",
    ]
    for name, v in (("here", mine), ("there", other)):
        _table(tmp_path / name, [("h:1", 2)])
        info = json.loads((tmp_path / name / "sweep.json").read_text())
        (tmp_path / name / "sweep.json").write_text(json.dumps({**info, "versions": v}))
    d = diff_sweeps("here", "there", results=tmp_path)
    assert f"versions.cpu_isa: {mine['cpu_isa']} -> {isa}" in d.changed, d.changed
