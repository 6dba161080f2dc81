"""Adaptive seeds end to end: rounds through the CLI on digits, resume, dry run, report."""

from __future__ import annotations

import pandas as pd
import pytest
from markupsafe import escape

from nnsweep.cli import main
from nnsweep.report import write_report

# A learning rate of 1e-5 stays near chance in two epochs: clearly worse, it keeps its
# first two seeds. The other two are close, so they get seeds until max.
ADAPTIVE = '''
"""Adaptive seeds on digits (a test sweep)"""
from nnsweep import Seeds, Sweep

sweep = Sweep(
    name="ada",
    data="digits",
    space={"hidden_units": 32, "learning_rate": [1e-5, 0.01, 0.02], "epochs": 2,
           "batch_size": 64},
    seeds=Seeds(min=2, max=4, step=1),
)
'''


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def _seeds(results):
    df = pd.read_csv(results / "ada" / "trials.csv")
    return df.groupby("learning_rate")["seed"].apply(sorted).to_dict(), set(df["trial_id"])


def test_dry_run_says_what_the_first_round_trains(write_sweep, tmp_path, capsys) -> None:
    sweep_file = write_sweep(ADAPTIVE)
    code, out, err = _cli(capsys, "run", sweep_file, "--dry-run", "--results", tmp_path)
    assert code == 0, err
    assert out.splitlines()[0] == "ada: 6 trials (0 done) on digits with model mlp"
    assert "the first round trains these, 2 seeds per configuration" in out
    assert "add 1 seed at a time (up to 4)" in out
    assert out.count("  todo  ") == 6 and "seed=2" not in out
    assert not (tmp_path / "ada").exists()


def test_more_seeds_go_to_the_close_configurations_and_a_resume_takes_the_same_path(
    write_sweep, tmp_path, capsys
) -> None:
    sweep_file = write_sweep(ADAPTIVE)
    straight = tmp_path / "straight"
    code, _, err = _cli(capsys, "run", sweep_file, "--results", straight)
    assert code == 0, err
    assert "adaptive seeds: " in err and "round(s) trained in this run" in err
    seeds, ids = _seeds(straight)
    assert seeds[1e-5] == [0, 1]  # clearly worse: its first round only
    assert seeds[0.01] == seeds[0.02] == [0, 1, 2, 3]  # close: seeds until max

    # Interrupted inside the second round (7 of the 10 trials), then resumed.
    resumed = tmp_path / "resumed"
    code, _, err = _cli(capsys, "run", sweep_file, "--results", resumed, "--max-models", "7")
    assert code == 0, err
    assert len(pd.read_csv(resumed / "ada" / "trials.csv")) == 7
    code, _, err = _cli(capsys, "run", sweep_file, "--results", resumed)
    assert code == 0, err
    assert "trained 3 trials" in err and "7 were already done" in err
    assert _seeds(resumed) == (seeds, ids)  # the same trials, none twice

    r = write_report("ada", results=straight)
    assert r.seeds is not None and r.seeds.counts == {2: 1, 4: 2}
    page = r.html_path.read_text()
    assert r.seeds.text in r.summary_text and str(escape(r.seeds.text)) in page
    assert dict(zip(r.table["learning_rate"], r.table["n"], strict=True))[1e-5] == 2
