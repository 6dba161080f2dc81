"""The command line's progress line (``ProgressLine``): its ETA under packing, the value
it shows for a trial, and how it prints hyperparameters; no Keras."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nnsweep import _progress
from nnsweep._progress import Progress, ProgressLine


class Clock:
    """``time.monotonic`` as the test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(_progress.time, "monotonic", c)
    return c


def _sweep(swept=("hidden_units",)):
    return SimpleNamespace(name="s", description="", swept=swept)


def _trials(n, first=0, **params):
    return [
        SimpleNamespace(
            trial_id=f"t{i}", config_id=f"c{i}", seed=0, fold=0,
            params={"hidden_units": 8 * (i + 1), **params},
        )
        for i in range(first, first + n)
    ]  # fmt: skip


def _row(**kw):
    return {"status": "ok", "best_val_accuracy": 0.95, "best_epoch": 2, "test_accuracy": 0.9, **kw}


def test_the_eta_comes_from_whole_packs_back(clock, capsys):
    line = ProgressLine()
    line.start(_sweep(), 42, 0, objective="val_accuracy")
    first, second = _trials(21), _trials(21, first=21)
    line.pack_start(first)
    assert "eta" not in line._counter()  # nothing back yet: no basis, so no number
    clock.now += 10  # the whole pack trains in 10 s; its 21 rows come back together
    for t in first:
        line.trial_end(t, _row())
    lines = capsys.readouterr().err.splitlines()
    # One pack of 21 left, at 10 s a pack: not 10 s x 41 trials left after the first row.
    assert lines[-21].startswith("[ 1/42]   2% 0:00:10 elapsed, eta 0:00:10 |")
    assert lines[-1].startswith("[21/42]  50% 0:00:10 elapsed, eta 0:00:10 |")
    line.pack_start(second)
    clock.now += 4
    assert "eta 0:00:06" in line._counter()  # counting down as the second pack trains
    clock.now += 6
    line.trial_end(second[0], _row())
    assert "eta 0:00:00" in capsys.readouterr().err


def test_a_run_with_all_trials_in_one_pack_says_none_are_left(clock, capsys):
    line = ProgressLine()
    line.start(_sweep(), 21, 0, objective="val_accuracy")
    pack = _trials(21)
    line.pack_start(pack)
    clock.now += 10
    line.trial_end(pack[0], _row())
    assert "[ 1/21]   5% 0:00:10 elapsed, eta 0:00:00 |" in capsys.readouterr().err


def test_a_search_shows_no_eta(clock, capsys):
    line = ProgressLine()
    line.start(_sweep(), None, 0, objective="val_accuracy")
    (t,) = _trials(1)
    line.pack_start([t])
    clock.now += 5
    line.trial_end(t, _row())
    assert "eta" not in capsys.readouterr().err


def test_a_trial_shows_the_objective_that_ranks_it_not_its_test_metric(clock, capsys):
    line = ProgressLine()
    line.start(_sweep(), 2, 0, objective="val_loss")
    a, b = _trials(2)
    line.pack_start([a, b])
    line.trial_end(a, _row(best_val_loss=0.1234, best_val_accuracy=None))
    out = capsys.readouterr().err
    assert "-> best_val_loss=0.1234" in out and "test_" not in out
    # A caller that does not name the objective: the row's best_ column still does.
    other = ProgressLine()
    other.start(_sweep(), 2, 0)
    other.trial_end(b, _row())
    assert "-> best_val_accuracy=0.9500" in capsys.readouterr().err


def test_float_hyperparameters_print_compactly(clock, capsys):
    line = ProgressLine(verbose=True)
    line.start(_sweep(("hidden_units", "learning_rate")), 1, 0, objective="val_accuracy")
    (t,) = _trials(1, learning_rate=0.0031622776601683794)
    line.pack_start([t])
    assert "learning_rate=0.00316228" in line.current
    line.epoch_end(t, 1, {"loss": 0.5})
    line.trial_end(t, _row())
    out = capsys.readouterr().err
    assert "hidden_units=8 learning_rate=0.00316228 seed=0" in out
    assert "0.0031622776601683794" not in out


def test_start_passes_the_objective_to_front_ends_that_take_it():
    from nnsweep._progress import start_progress

    class Old(Progress):
        def start(self, sweep, total, done):  # written before the keyword existed
            self.got = (total, done)

    class New(Progress):
        def start(self, sweep, total, done, *, objective=None):
            self.got = (total, done, objective)

    old, new = Old(), New()
    start_progress(old, _sweep(), 3, 1, "val_accuracy")
    start_progress(new, _sweep(), 3, 1, "val_accuracy")
    assert old.got == (3, 1) and new.got == (3, 1, "val_accuracy")
