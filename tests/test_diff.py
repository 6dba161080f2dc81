from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from scipy import stats

from nnsweep.cli import main
from nnsweep.diff import diff_sweeps, format_diff
from nnsweep.errors import ResultsError

# Hand-made runs: per width, the test accuracy of each seed, before (A) and after (B).
BEFORE = {8: [0.80, 0.81, 0.82], 16: [0.90, 0.91, 0.89], 32: [0.95, 0.95, 0.96]}
AFTER = {8: [0.80, 0.82, 0.81], 16: [0.70, 0.71, 0.72], 32: [0.95, 0.96, 0.96], 64: [0.97] * 3}


def _write(root, name, runs, versions, epochs=2):
    folder = root / name
    folder.mkdir(parents=True)
    rows = [
        {"trial_id": f"w{w}-s{s}", "config_id": f"w{w}", "hidden_units": w, "seed": s,
         "fold": 0, "status": "ok", "error": "", "val_accuracy": acc, "test_accuracy": acc}
        for w, accs in runs.items() for s, acc in enumerate(accs)
    ]  # fmt: skip
    rows.append({**rows[0], "trial_id": "failed", "status": "failed", "test_accuracy": None})
    pd.DataFrame(rows).to_csv(folder / "trials.csv", index=False)
    info = {
        "name": name,
        "swept": ["hidden_units"],
        "objective": "val_accuracy",
        "direction": "max",
        "metric": "accuracy",
        "seeds": [0, 1, 2],
        "versions": versions,
        "fingerprint": {"data": "digits", "fixed": {"epochs": epochs}},
    }
    (folder / "sweep.json").write_text(json.dumps(info))


@pytest.fixture
def two(tmp_path):
    _write(tmp_path, "before", BEFORE, {"tensorflow": "2.16.1", "keras": "3.3"})
    _write(tmp_path, "after", AFTER, {"tensorflow": "2.17.0", "keras": "3.3"}, epochs=3)
    return tmp_path


def test_shared_configurations_with_welch_and_holm_as_by_hand(two):
    d = diff_sweeps("before", "after", results=two)
    assert d.metric == "test_accuracy" and d.by == ["hidden_units"]
    assert [c.label for c in d.configs] == ["hidden_units=8", "hidden_units=16", "hidden_units=32"]
    assert (d.only_a, d.only_b) == (0, 1)
    # By hand: Welch's test per width (scipy), then Holm over the three p-values.
    p = [stats.ttest_ind(AFTER[w], BEFORE[w], equal_var=False).pvalue for w in (8, 16, 32)]
    order = sorted(range(3), key=lambda i: p[i])
    holm, running = [0.0] * 3, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * p[i]))
        holm[i] = running
    for c, w, p_raw, p_holm in zip(d.configs, (8, 16, 32), p, holm, strict=True):
        assert c.mean_a == pytest.approx(sum(BEFORE[w]) / 3)
        assert c.diff == pytest.approx(sum(AFTER[w]) / 3 - sum(BEFORE[w]) / 3)
        assert c.p == pytest.approx(p_raw) and c.p_holm == pytest.approx(p_holm)
        assert c.low < c.diff < c.high
    # The interval of the difference: Welch-Satterthwaite degrees of freedom, t quantile.
    a, b = pd.Series(BEFORE[16]), pd.Series(AFTER[16])
    se2 = a.var() / 3 + b.var() / 3
    dof = se2**2 / ((a.var() / 3) ** 2 / 2 + (b.var() / 3) ** 2 / 2)
    half = stats.t.ppf(0.975, dof) * math.sqrt(se2)
    assert (d.configs[1].low, d.configs[1].high) == pytest.approx((-0.19 - half, -0.19 + half))
    assert [c.change for c in d.configs] == ["same", "worse", "same"]
    assert d.regressions == [d.configs[1]]
    assert d.changed == [
        "fingerprint.fixed.epochs: 2 -> 3",
        "versions.tensorflow: 2.16.1 -> 2.17.0",
    ]
    text = format_diff(d)
    assert "hidden_units=16" in text and "WORSE in B" in text
    assert "1 worse and 0 better in B beyond seed noise" in text
    assert "not compared: 0 configurations only in A, 1 only in B" in text


def test_the_command_and_its_regression_gate(two, capsys):
    args = ["diff", "before", "after", "--results", str(two)]
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    assert info.value.code == 0 and "WORSE in B" in out and err == ""
    with pytest.raises(SystemExit) as info:
        main([*args, "--fail-on-regression"])
    out, err = capsys.readouterr()
    assert info.value.code == 1
    assert err == (
        "error: 1 configurations are worse in after than in before on test_accuracy beyond "
        "seed noise (hidden_units=16)\n"
    )
    # The other way round, the change is an improvement: no gate closes.
    with pytest.raises(SystemExit) as info:
        main(["diff", "after", "before", "--results", str(two), "--fail-on-regression"])
    assert info.value.code == 0 and "better in B" in capsys.readouterr().out


def test_a_sweep_against_itself_changes_nothing_and_other_metrics_work(two):
    d = diff_sweeps("before", "before", results=two, metric="val_accuracy")
    assert [c.change for c in d.configs] == ["same"] * 3 and d.changed == []
    assert all(c.p_holm == 1.0 and c.diff == 0 for c in d.configs)


def test_sweeps_that_share_nothing_or_lack_the_metric_are_refused(two, tmp_path):
    _write(tmp_path, "other", {128: [0.9, 0.9]}, {})
    with pytest.raises(ResultsError, match="share no configuration"):
        diff_sweeps("before", "other", results=two)
    info = json.loads((tmp_path / "other" / "sweep.json").read_text())
    (tmp_path / "other" / "sweep.json").write_text(json.dumps({**info, "swept": ["depth"]}))
    message = r"vary different hyperparameters \(A: hidden_units; B: nothing\)"
    with pytest.raises(ResultsError, match=message):
        diff_sweeps("before", "other", results=two)
    with pytest.raises(ResultsError, match="metric must be a column of trials.csv"):
        diff_sweeps("before", "after", results=two, metric="test_mae")
