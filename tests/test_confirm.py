"""Confirmation on fresh seeds: the CLI end to end on digits, and the statistics by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SWEEP
from scipy import stats as st

from nnsweep.cli import main
from nnsweep.definition.sweep import Sweep
from nnsweep.errors import ResultsError, SweepDefinitionError
from nnsweep.report import write_report
from nnsweep.report.confirmation import confirmation
from nnsweep.run.confirm import Confirm, fresh_seeds, top_configs


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_confirm_retrains_the_best_on_fresh_seeds_and_resumes(write_sweep, tmp_path, capsys):
    sweep_file = write_sweep(TINY_SWEEP)
    results = tmp_path / "results"
    code, _, err = _cli(capsys, "run", sweep_file, "--results", results)
    assert code == 0, err
    search = pd.read_csv(results / "tiny" / "trials.csv")
    assert set(search["phase"]) == {"search"}
    ranked = search.groupby("config_id")["val_accuracy"].mean().sort_values(ascending=False)

    args = ("confirm", "tiny", "--sweep", sweep_file, "--results", results)
    code, out, err = _cli(capsys, *args, "--top", "1", "--seeds", "2")
    assert code == 0, err
    assert "trained 2 trials" in err and "Winner's curse" in out
    df = pd.read_csv(results / "tiny" / "trials.csv")
    fresh = df[df["phase"] == "confirm"]
    assert set(fresh["config_id"]) == {ranked.index[0]}  # the best by validation
    assert sorted(fresh["seed"]) == [2, 3]
    assert not set(fresh["seed"]) & set(search["seed"])  # never a search seed

    # Two configurations on three seeds: the first one's seeds 2 and 3 are done already.
    code, _, err = _cli(capsys, *args, "--top", "2", "--seeds", "3")
    assert code == 0, err
    assert "trained 4 trials" in err and "2 were already done" in err
    # A kill that lost the last trial: the same command trains exactly that one again.
    path = results / "tiny" / "trials.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    code, _, err = _cli(capsys, *args, "--top", "2", "--seeds", "3")
    assert code == 0, err
    assert "trained 1 trials" in err and "5 were already done" in err
    df = pd.read_csv(path)
    assert (df["phase"] == "confirm").sum() == 6 and df["trial_id"].is_unique
    assert sorted(df.loc[df["phase"] == "confirm", "seed"].unique()) == [2, 3, 4]

    code, out, err = _cli(capsys, "list", "--sweeps", sweep_file.parent, "--results", results)
    assert code == 0, err
    assert "tiny: 4/4 trials (4 ok; 6 confirmation trials)" in out  # the plan counts search

    r = write_report("tiny", results=results)
    assert r.table["n"].tolist() == [2, 2]  # the ranking: search rows only
    c = r.confirmation
    assert c is not None and c.table["n_fresh"].tolist() == [3, 3]
    assert len(c.pairs) == 1 and 0 <= c.pairs["p_holm"].iloc[0] <= 1
    page = r.html_path.read_text()
    assert "Confirmation on fresh seeds" in page and "Winner&#39;s curse" in page
    assert "confirmation on fresh seeds:" in r.summary_text


def test_confirm_refuses_a_sweep_with_no_results(write_sweep, tmp_path, capsys):
    sweep_file = write_sweep(TINY_SWEEP)
    code, _, err = _cli(
        capsys, "confirm", "tiny", "--sweep", sweep_file, "--results", tmp_path / "none"
    )
    assert code == 2 and "no search rows yet; run it before confirming" in err


def test_fresh_seeds_lie_above_every_declared_and_used_seed() -> None:
    sweep = Sweep(name="s", seeds=[3, 7])
    rows = [{"seed": "9", "phase": "search"}, {"seed": "12", "phase": "confirm"}]
    # 12 was a confirmation seed: a repeated confirm must pick the same seeds again.
    assert fresh_seeds(sweep, rows, 3) == [10, 11, 12]
    assert fresh_seeds(sweep, [], 2) == [8, 9]
    with pytest.raises(SweepDefinitionError, match="--seeds must be an integer >= 1"):
        Confirm(seeds=0)


def test_top_configs_ranks_by_the_objective_over_search_rows() -> None:
    rows = [
        {"config_id": c, "seed": s, "status": "ok", "val_loss": v, "phase": ph}
        for c, s, v, ph in [
            ("a", 0, 0.5, "search"),
            ("a", 1, 0.7, "search"),
            ("b", 0, 0.4, "search"),
            ("b", 1, 0.4, "search"),
            ("c", 0, 0.1, "confirm"),  # a confirmation row never ranks
        ]
    ]
    assert top_configs(rows, "val_loss", "min", 5) == ["b", "a"]
    with pytest.raises(ResultsError, match="no search rows"):
        top_configs([], "val_loss", "min", 1)


def test_confirmation_statistics_by_hand() -> None:
    """Three configurations on fresh seeds: ranks, Welch p, Holm and the winner's curse."""
    fresh = {"a": [0.80, 0.82, 0.81], "b": [0.90, 0.91, 0.89], "c": [0.905, 0.90, 0.91]}
    search = {"a": [0.95, 0.94], "b": [0.91, 0.92], "c": [0.80, 0.81]}
    rows = []
    for phase, values in (("search", search), ("confirm", fresh)):
        for c, vs in values.items():
            for i, v in enumerate(vs):
                rows.append({"config_id": c, "w": c, "seed": i, "status": "ok", "m": v})
                rows[-1]["phase"] = phase
    got = confirmation(pd.DataFrame(rows), "m", ["w"], "max")
    assert got is not None
    assert got.table["config_id"].tolist() == ["c", "b", "a"]  # by the fresh mean
    assert got.chosen == "w=a"  # the search chose a (0.945) ...
    assert got.curse == pytest.approx(np.mean(fresh["a"]) - np.mean(search["a"]))  # ... -0.135
    by_pair = {(r.a, r.b): r for r in got.pairs.itertuples()}
    raw = {
        (f"w={x}", f"w={y}"): st.ttest_ind(fresh[x], fresh[y], equal_var=False).pvalue
        for x, y in (("c", "b"), ("c", "a"), ("b", "a"))
    }
    # Holm by hand: the k-th smallest p times (3 - k + 1), kept increasing, capped at 1.
    order = sorted(raw, key=raw.get)
    adjusted, running = {}, 0.0
    for k, pair in enumerate(order):
        running = max(running, min(1.0, (3 - k) * raw[pair]))
        adjusted[pair] = running
    for pair, p in raw.items():
        assert by_pair[pair].p == pytest.approx(p)
        assert by_pair[pair].p_holm == pytest.approx(adjusted[pair])
    assert not by_pair[("w=c", "w=b")].beyond_noise  # 0.905 vs 0.90: noise
    assert by_pair[("w=c", "w=a")].beyond_noise
    assert "it fell by 0.135" in got.text[1]
    assert "not distinguishable from w=b" in got.text[2]
    assert confirmation(pd.DataFrame(rows).query("phase == 'search'"), "m", ["w"], "max") is None
    assert math.isclose(got.table["mean_search"].iloc[0], 0.805)


def test_search_seeds_that_clash_with_confirmation_seeds_are_refused(write_sweep, tmp_path, capsys):
    # Seeds 2 and 3 were confirmation seeds; a sweep extended to 4 seeds would take those
    # trials as done (same trial ids) and the confirmation would no longer be fresh.
    sweep_file = write_sweep(TINY_SWEEP)
    results = tmp_path / "results"
    assert _cli(capsys, "run", sweep_file, "--results", results)[0] == 0
    args = ("confirm", "tiny", "--sweep", sweep_file, "--results", results)
    assert _cli(capsys, *args, "--top", "1", "--seeds", "2")[0] == 0
    path = results / "tiny" / "trials.csv"
    before = path.read_bytes()

    wider = write_sweep(TINY_SWEEP.replace("seeds=2", "seeds=4"))
    code, _, err = _cli(capsys, "run", wider, "--results", results)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "must avoid the seeds nnsweep confirm used" in err and "(2, 3)" in err
    assert path.read_bytes() == before
    # Seeds that avoid them extend the sweep; the confirmation rows stay as they were.
    other = write_sweep(TINY_SWEEP.replace("seeds=2", "seeds=[0, 1, 4]"))
    code, _, err = _cli(capsys, "run", other, "--results", results)
    assert code == 0, err
    df = pd.read_csv(path)
    assert sorted(df.loc[df["phase"] == "search", "seed"].unique()) == [0, 1, 4]
    assert sorted(df.loc[df["phase"] == "confirm", "seed"].unique()) == [2, 3]
