"""Pruning: the rule against seed noise, and pruned runs against unpruned ones."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from nnsweep import Prune, Sweep, load_history, load_results, run_sweep
from nnsweep.definition.pruning import (
    OPEN,
    PASSED,
    PRUNED,
    RungBook,
    judge,
    parse_rungs,
    rungs_text,
)
from nnsweep.errors import SweepDefinitionError

# -- the rule -------------------------------------------------------------------------------


def test_rungs_geometric_every_and_listed():
    assert Prune().epochs(10) == (1, 2, 4, 8)
    assert Prune(first=2).epochs(10) == (2, 4, 8)
    assert Prune(rungs="every", first=3).epochs(6) == (3, 4, 5)
    assert Prune(rungs=[2, 5, 9]).epochs(9) == (2, 5)  # none at the last epoch
    assert Prune().epochs(1) == ()


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"first": 0}, "prune.first must be an integer >= 1, got 0"),
        ({"rungs": "often"}, "prune.rungs must be one of geometric, every or epochs"),
        ({"rungs": [3, 2]}, "prune.rungs must be increasing epochs without repeats"),
        ({"rungs": [0]}, "prune.rungs must hold epochs, integers >= 1"),
        ({"alpha": 0}, "prune.alpha must be in (0, 1), got 0"),
        ({"keep": 1.5}, "prune.keep must be a fraction in (0, 1) or None, got 1.5"),
    ],
)
def test_a_bad_prune_names_the_field_rule_and_value(kwargs, fragment):
    with pytest.raises(
        SweepDefinitionError, match=fragment.replace("(", r"\(").replace(")", r"\)")
    ):
        Prune(**kwargs)


def test_sweeps_that_cannot_prune_are_refused_when_created():
    base = {"name": "p", "space": {"hidden_units": [4, 8], "epochs": 4}}
    with pytest.raises(SweepDefinitionError, match="seeds must be at least 2 .or cv set. for"):
        Sweep(**base, prune=True)  # one seed: no seed noise to judge by
    assert Sweep(**base, cv=3, prune=True).prune == Prune()  # folds are runs too
    with pytest.raises(SweepDefinitionError, match="prune.first must have an epoch below the last"):
        Sweep(**base, seeds=2, prune=Prune(first=4))
    with pytest.raises(SweepDefinitionError, match=r"prune.rungs .* got \[4, 5\]"):
        Sweep(**base, seeds=2, prune=Prune(rungs=[4, 5]))
    with pytest.raises(SweepDefinitionError, match="strategy must be grid, random or bayesian"):
        Sweep(
            name="h", space={"hidden_units": [4, 8]}, seeds=2, strategy="hyperband",
            max_trials=3, prune=True,
        )  # fmt: skip
    with pytest.raises(SweepDefinitionError, match="prune must be True, False or a Prune"):
        Sweep(**base, seeds=2, prune="yes")
    assert Sweep(**base, seeds=2, prune=False).prune is None


def test_a_configuration_far_behind_is_pruned_and_one_within_noise_is_not():
    values = {
        "lead": [0.95, 0.951, 0.949],
        "close": [0.949, 0.950, 0.948],
        "far": [0.80, 0.81, 0.79],
    }
    out = judge(values, values, "max", 0.05, epoch=1, metric="val_accuracy")
    assert out["lead"].status == PASSED
    assert out["close"].status == PASSED
    assert out["far"].status == PRUNED
    assert "of leader lead" in out["far"].text and "epoch 1" in out["far"].text
    # The same for a loss (lower is better).
    losses = {k: [1 - v for v in vs] for k, vs in values.items()}
    out = judge(losses, losses, "min", 0.05, epoch=1, metric="val_loss")
    assert out["far"].status == PRUNED and out["close"].status == PASSED


def test_the_test_is_one_sided_pooled_and_corrected_over_the_configurations():
    """By hand: pooled variance over the three configurations, one-sided t, alpha / (m-1)."""
    values = {"a": [1.05, 1.15], "b": [0.75, 0.85], "c": [0.9, 1.2]}
    pooled = (0.005 + 0.005 + 0.045) / 3  # sums of squares over dof, one dof each
    t = (1.1 - 0.8) / math.sqrt(pooled / 2 + pooled / 2)
    p = st.t.sf(t, 3)  # a and b are below the pooled variance: both take it, 3 dof
    level = 2 * p  # corrected: level / (3 - 1) equals p exactly at this level
    assert judge(values, ["b"], "max", level * 1.001, epoch=2, metric="m")["b"].status == PRUNED
    assert judge(values, ["b"], "max", level * 0.999, epoch=2, metric="m")["b"].status == PASSED


def test_an_unstable_configuration_is_judged_on_its_own_spread():
    """Pooled noise would prune it; its own wild seeds leave its gap within noise."""
    values = {f"s{i}": [0.90 + 0.001 * i, 0.901 + 0.001 * i] for i in range(6)}
    values["wild"] = [0.60, 0.95]
    out = judge(values, ["wild"], "max", 0.05, epoch=1, metric="m")
    assert out["wild"].status == PASSED


def test_without_seed_noise_a_rung_stays_open_or_ranks_when_asked():
    values = {"a": [0.9], "b": [0.5], "c": [0.7]}
    out = judge(values, values, "max", 0.05, epoch=1, metric="m")
    assert out["a"].status == PASSED and out["b"].status == OPEN and out["c"].status == OPEN
    ranked = judge(values, values, "max", 0.05, epoch=1, metric="m", keep_top=1, rank_only=True)
    assert ranked["b"].status == PRUNED and "rank only" in ranked["b"].text
    assert judge({"a": [0.1]}, ["a"], "max", 0.05, epoch=1, metric="m")["a"].status == PASSED


def test_halving_prunes_outside_the_top_only_beyond_noise():
    values = {
        "a": [0.95, 0.951, 0.949],
        "b": [0.948, 0.949, 0.947],  # behind, a little: within the corrected bound
        "c": [0.9495, 0.9505, 0.9485],
        "d": [0.90, 0.95, 0.70],  # far behind on average, but its seeds scatter
    }
    plain = judge(values, values, "max", 0.05, epoch=1, metric="m")
    halving = judge(values, values, "max", 0.05, epoch=1, metric="m", keep_top=2)
    assert plain["b"].status == PASSED
    assert halving["b"].status == PRUNED and "outside the top 2" in halving["b"].text
    assert halving["d"].status == PASSED  # outside the top, but within its own noise


def test_rungs_cells_round_trip():
    passage = [(1, PASSED), (2, OPEN), (4, PRUNED)]
    assert parse_rungs(rungs_text(passage)) == passage
    assert parse_rungs("") == [] and parse_rungs(float("nan")) == []


def test_a_decision_on_disk_is_followed_by_later_seeds():
    book = RungBook(Prune(), "val_accuracy", "max", 10)
    rows = [
        {"trial_id": "a-s0", "config_id": "a", "phase": "search", "rungs": "1:passed 2:passed"},
        {"trial_id": "b-s0", "config_id": "b", "phase": "search", "rungs": "1:pruned",
         "pruned_by": "epoch 1: ..."},
    ]  # fmt: skip
    history = [
        {"trial_id": "a-s0", "epoch": 1, "val_accuracy": 0.9},
        {"trial_id": "a-s0", "epoch": 2, "val_accuracy": 0.92},
        {"trial_id": "b-s0", "epoch": 1, "val_accuracy": 0.5},
    ]
    book.load(rows, history)
    assert book.values[1] == {"a": [0.9], "b": [0.5]}
    judge_ = book.pack()
    out = judge_.judge(1, {0: "a", 1: "b"}, {0: ("a", 0.91), 1: ("b", 0.95)})
    assert out[0].status == PASSED
    assert out[1].status == PRUNED and out[1].text.startswith("with its configuration, pruned")


# -- pruned runs against unpruned ones ---------------------------------------------------------

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")


def _grid(name: str, model: str = "mlp", **extra) -> Sweep:
    space = {"learning_rate": [1e-4, 3e-3, 3e-2], "epochs": 5, "batch_size": 32}
    if model == "mlp":
        space["hidden_units"] = [4, 32]
    else:
        # Batch norm keeps CNNs branches (their own Keras models); plain CNNs stack.
        space.update({"filters": 4, "conv_layers": 1, "dense_units": 16, "batch_norm": True})
    return Sweep(name=name, data="digits", model=model, space=space, seeds=2, **extra)


def _run(sweep, tmp_path, **kw):
    summary = run_sweep(sweep, results=tmp_path, **kw)
    assert summary.fallbacks == 0  # the pack trained as one: no silent one-by-one path
    return load_results(tmp_path / sweep.name), load_history(tmp_path / sweep.name), summary


@pytest.mark.parametrize("model", ["mlp", "cnn"], ids=["stacks", "branches"])
def test_survivors_get_exactly_the_numbers_of_the_unpruned_run(tmp_path, model):
    full, full_hist, _ = _run(_grid("g", model), tmp_path / "full")
    pruned, pruned_hist, summary = _run(_grid("g", model, prune=True), tmp_path / "pruned")
    assert set(pruned["trial_id"]) == set(full["trial_id"])
    stopped = pruned[pruned["status"] == "pruned"]
    assert len(stopped) > 0, "the grid should give the rule something to prune"
    assert (pruned["status"] == "ok").any()
    ref = full.set_index("trial_id")
    for row in pruned.to_dict("records"):
        mine = ref.loc[row["trial_id"]]
        if row["status"] == "ok":
            assert row["epochs_run"] == mine["epochs_run"]
            for key in METRICS:
                assert row[key] == pytest.approx(mine[key], rel=1e-5, abs=1e-6), key
        else:
            # Stopped at its rung, with that epoch's metrics, and never tested.
            rung = int(row["epochs_run"])
            assert parse_rungs(row["rungs"])[-1] == (rung, PRUNED)
            assert rung < mine["epochs_run"]
            epoch = full_hist[(full_hist.trial_id == row["trial_id"]) & (full_hist.epoch == rung)]
            assert row["val_accuracy"] == pytest.approx(epoch["val_accuracy"].item(), rel=1e-5)
            assert math.isnan(row["test_accuracy"])
            assert "of leader" in row["pruned_by"]
    # A pruned trial's history ends at its rung, and equals the unpruned history there.
    merged = pruned_hist.merge(full_hist, on=["trial_id", "epoch"], suffixes=("", "_full"))
    assert len(merged) == len(pruned_hist)
    np.testing.assert_allclose(merged["val_loss"], merged["val_loss_full"], rtol=1e-5)
    assert any("pruning:" in note and "trial-epochs trained" in note for note in summary.notes)


def test_pruned_trials_leave_the_pack_and_the_compute(tmp_path, monkeypatch):
    """The saving is real: once pruned, a trial's block is no longer computed (its stack
    moves the live trials into a smaller one, or leaves the step)."""
    from nnsweep.training import _engine

    monkeypatch.setattr(_engine, "_COMPACT_SAVING", 0.0)  # move as soon as it saves anything
    monkeypatch.setattr(_engine, "_RECENT", {})
    computed: list[int] = []
    original = _engine.Pack._train_epoch

    def counted(self, epoch, perm, units):
        # Trial blocks in the step: every trial an active unit owns, done or not.
        computed.append(sum(int(self.units[u].owned.sum()) for u in units))
        return original(self, epoch, perm, units)

    monkeypatch.setattr(_engine.Pack, "_train_epoch", counted)
    df, _, _ = _run(_grid("g", prune=True), tmp_path)
    pruned_at_1 = int(((df.status == "pruned") & (df.epochs_run == 1)).sum())
    assert pruned_at_1 > 0
    assert computed[0] == len(df) and computed[1] == len(df) - pruned_at_1
    assert computed[-1] == int((df.status == "ok").sum())


def test_later_packs_are_judged_against_earlier_ones_on_disk(tmp_path):
    one, _, _ = _run(_grid("g", prune=True), tmp_path / "one")
    # Packs of 2: each configuration (2 seeds) alone in its pack, judged against the
    # packs before it through history.csv, in grid order.
    many, _, summary = _run(_grid("g", prune=True), tmp_path / "many", pack_size=2)
    assert summary.packs == 6
    assert set(many["pack_size"]) == {2}
    assert (many["status"] == "pruned").any()
    first = many["config_id"].iloc[0]
    # The first pack has no one to be judged against: it trains to the end.
    assert (many.loc[many.config_id == first, "status"] == "ok").all()
    # Every decision names a leader that had reached the rung before it.
    order = list(dict.fromkeys(many["config_id"]))
    for row in many[many.status == "pruned"].itertuples():
        leader = row.pruned_by.split("of leader ")[1].split(";")[0]
        assert order.index(leader) <= order.index(row.config_id)
    assert len(one) == len(many)


def test_no_prune_trains_everything_and_a_confirmation_never_prunes(tmp_path):
    sweep = _grid("g", prune=True)
    from dataclasses import replace

    df, _, _ = _run(replace(sweep, prune=False), tmp_path)
    assert (df["status"] == "ok").all() and df["rungs"].isna().all()


def test_resuming_keeps_the_decisions_of_the_rows_on_disk(tmp_path):
    sweep = _grid("g", prune=True)
    straight, _, _ = _run(sweep, tmp_path / "straight", pack_size=2)
    # Stop after two packs, then resume: the rest is judged against what is on disk.
    run_sweep(sweep, results=tmp_path / "resumed", pack_size=2, max_trials=4)
    resumed, _, _ = _run(sweep, tmp_path / "resumed", pack_size=2)
    cols = ["trial_id", "status", "epochs_run", "rungs", "pruned_by"]
    a = straight[cols].sort_values("trial_id").reset_index(drop=True)
    b = resumed[cols].sort_values("trial_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


KILLED = '''
"""Pruning to kill."""
from nnsweep import Sweep

sweep = Sweep(
    name="g",
    data="digits",
    model="mlp",
    space={
        "learning_rate": [1e-4, 3e-3, 3e-2],
        "epochs": 5,
        "batch_size": 32,
        "hidden_units": [4, 32],
    },
    seeds=2,
    prune=True,
)
'''


def _rows_in(path) -> int:
    return max(len(path.read_text().splitlines()) - 1, 0) if path.exists() else 0


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("kill_after", [1, 5])
def test_a_run_killed_with_sigkill_and_resumed_prunes_the_same(tmp_path, kill_after):
    import os
    import signal
    import subprocess
    import sys
    import time

    from nnsweep.cli import main
    from nnsweep.definition.sweep import load_sweep

    sweep_file = tmp_path / "g.py"
    sweep_file.write_text(KILLED)
    straight, _, _ = _run(_grid("g", prune=True), tmp_path / "straight", pack_size=2)
    # The file's sweep is _grid's: the same trials.
    assert load_sweep(sweep_file).grid_trials() == _grid("g", prune=True).grid_trials()
    results = tmp_path / "killed"
    args = ["run", str(sweep_file), "--results", str(results), "--pack-size", "2"]
    trials = results / "g" / "trials.csv"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "nnsweep", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while _rows_in(trials) < kill_after and proc.poll() is None:
            assert time.monotonic() < deadline, "the run wrote no rows"
            time.sleep(0.01)  # polling a file another process writes, not timing a result
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _rows_in(trials)
    assert kill_after <= killed_at < len(straight)
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None)
    resumed = load_results(results / "g")
    cols = ["trial_id", "status", "epochs_run", "rungs", "pruned_by"]
    a = straight[cols].sort_values("trial_id").reset_index(drop=True)
    b = resumed[cols].sort_values("trial_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
