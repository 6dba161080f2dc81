"""The pack engine: compaction, reuse of traces, isolation of diverging trials."""

from __future__ import annotations

import numpy as np
import pytest

from nnsweep import Sweep

keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":
    pytest.skip("the pack engine is TensorFlow's", allow_module_level=True)

from nnsweep.data import load_dataset  # noqa: E402
from nnsweep.training import _engine  # noqa: E402
from nnsweep.training.train import TrainContext, train_pack  # noqa: E402

METRICS = ("loss", "val_loss", "test_loss", "accuracy", "val_accuracy", "test_accuracy")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _rows(trials, ctx):
    return {r.row["trial_id"]: r.row for r in train_pack(trials, ctx)}


def _assert_same(packed, alone, rel=1e-5):
    for tid, b in alone.items():
        a = packed[tid]
        assert a["epochs_run"] == b["epochs_run"], tid
        for key in METRICS:
            assert a[key] == pytest.approx(b[key], rel=rel, abs=1e-6), (tid, key)


def _packs_built(monkeypatch) -> list:
    """A list that grows by one each time a pack is built (not reloaded), from no kept
    traces."""
    made: list = []
    original = _engine.Pack.__init__

    def counted(self, *args, **kwargs):
        made.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(_engine.Pack, "__init__", counted)
    monkeypatch.setattr(_engine, "_RECENT", {})
    return made


def test_stacks_whose_trials_stop_move_the_rest_into_smaller_stacks_exactly(digits, monkeypatch):
    monkeypatch.setattr(_engine, "_COMPACT_SAVING", 0.0)  # move as soon as any trial is done
    moves = []
    original = _engine.Pack._compact

    def counted(self, epoch, done, seconds):
        before = self.compactions
        original(self, epoch, done, seconds)
        moves.append(self.compactions - before)

    monkeypatch.setattr(_engine.Pack, "_compact", counted)
    sweep = Sweep(
        name="c",
        space={
            "hidden_units": [8, 16],
            "patience": [0, 2],
            "learning_rate": [1e-3, 3e-3],
            "dropout": [0.0, 0.2],
            "batch_size": [32, 64],
            "optimizer": ["adam", "rmsprop"],
            "epochs": 10,
        },
        seeds=2,
    )
    ctx = TrainContext(sweep, digits)
    trials = sweep.grid_trials()[:64:2]  # 32 trials, of every kind
    packed = _rows(trials, ctx)
    assert sum(moves) >= 2 and {r["pack_size"] for r in packed.values()} == {32}
    alone = {}
    for t in trials:
        alone.update(_rows([t], ctx))
    assert len({r["epochs_run"] for r in alone.values()}) > 3  # trials stopped at many epochs
    _assert_same(packed, alone)


def test_a_pack_of_the_same_shape_reuses_the_last_ones_traces(digits, monkeypatch):
    made = _packs_built(monkeypatch)
    sweep = Sweep(
        name="r",
        space={"learning_rate": [1e-3, 1e-2, 3e-3, 3e-2], "dropout": [0.0, 0.2], "epochs": 2},
        seeds=2,
    )
    ctx = TrainContext(sweep, digits)
    trials = sweep.grid_trials()
    packs = [trials[i : i + 4] for i in range(0, 16, 4)]  # lr x dropout, 2 seeds: alike
    packed = {}
    for pack in packs:
        packed.update(_rows(pack, ctx))
    assert len(made) == 1  # one pack built, three reloaded
    alone = {}
    for t in trials:
        alone.update(_rows([t], ctx))
    _assert_same(packed, alone)


def test_a_diverging_block_cannot_reach_its_neighbours(digits):
    # Widths 8 and 16 at depth 2: the second layers are separate products; lr 1e6 blows
    # one block up while the other, in the same stacked tensors, trains on undisturbed.
    sweep = Sweep(
        name="d",
        space={
            "hidden_units": [8, 16],
            "depth": 2,
            "optimizer": "sgd",
            "learning_rate": [0.05, 1e6],
            "clipnorm": [None, 1.0],
            "epochs": 3,
        },
        seeds=2,
    )
    ctx = TrainContext(sweep, digits)
    trials = sweep.grid_trials()
    packed = _rows(trials, ctx)
    assert {r["pack_size"] for r in packed.values()} == {16}
    for t in trials:
        alone = _rows([t], ctx)[t.trial_id]
        row = packed[t.trial_id]
        assert row["status"] == alone["status"]
        if row["status"] == "ok":
            assert row["test_loss"] == pytest.approx(alone["test_loss"], rel=1e-5)
    statuses = {(t.params["learning_rate"], packed[t.trial_id]["status"]) for t in trials}
    assert (0.05, "ok") in statuses and (1e6, "diverged") in statuses


def test_dropout_masks_do_not_depend_on_the_pack_or_the_micro_batch(digits):
    sweep = Sweep(
        name="m",
        space={"dropout": 0.3, "batch_size": [16, 64], "hidden_units": [8, 32], "epochs": 2},
        seeds=2,
    )
    ctx = TrainContext(sweep, digits)
    trials = sweep.grid_trials()
    packed = _rows(trials, ctx)  # micro-batch 16: the 64s add up four
    alone = {}
    for t in trials:
        alone.update(_rows([t], ctx))
    _assert_same(packed, alone)
    # and dropout really draws: the same trial without it learns otherwise
    plain = Sweep(name="m", space={**sweep.space, "dropout": 0.0}, seeds=2)
    other = _rows(plain.grid_trials(), TrainContext(plain, digits))
    assert np.mean([r["loss"] for r in other.values()]) != pytest.approx(
        np.mean([r["loss"] for r in packed.values()]), rel=1e-3
    )


def _no_padding(monkeypatch):
    from nnsweep.training import _stack

    for module in (_stack, _engine):
        monkeypatch.setattr(module, "padded_widths", lambda widths, activation: widths)
    monkeypatch.setattr(_engine, "_RECENT", {})


def test_padded_widths_give_the_numbers_of_the_trials_own_widths(digits, monkeypatch):
    # Hidden widths are padded to shared shapes with units of zero weights; every optimizer
    # must leave those at zero, with dropout, penalties, clipping and compaction, so the
    # trials' numbers are those of a stack of their own widths.
    from nnsweep.definition.params import OPTIMIZERS
    from nnsweep.training._stack import StackUnit

    made = []
    original = StackUnit.__init__

    def recorded(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(StackUnit, "__init__", recorded)
    monkeypatch.setattr(_engine, "_COMPACT_SAVING", 0.0)  # move trials once any are done
    monkeypatch.setattr(_engine, "_RECENT", {})
    sweep = Sweep(
        name="pad",
        space={
            "hidden_units": [5, 37],
            "depth": 2,
            "optimizer": list(OPTIMIZERS),
            "patience": [None, 0],
            "dropout": 0.2,
            "l2": 1e-3,
            "clipnorm": 0.5,
            "activation": "elu",
            "learning_rate": 0.01,
            "epochs": 3,
        },
        seeds=1,
    )
    ctx = TrainContext(sweep, digits)
    trials = sweep.grid_trials()
    padded = _rows(trials, ctx)
    assert made and all(u.dims != u.real for u in made)  # the padded path was taken
    assert {u.dims[0][1] for u in made} <= {16, 48}
    assert any(r["epochs_run"] < 3 for r in padded.values())  # and compaction with it
    _no_padding(monkeypatch)
    made.clear()
    own = _rows(trials, ctx)
    assert made and all(u.dims == u.real for u in made)
    _assert_same(padded, own)
    assert {r["n_params"] for r in padded.values()} == {
        64 * 5 + 5 + 5 * 5 + 5 + 5 * 10 + 10,
        64 * 37 + 37 + 37 * 37 + 37 + 37 * 10 + 10,
    }


def test_packs_whose_widths_pad_alike_share_traces(digits, monkeypatch):
    made = _packs_built(monkeypatch)
    sweep = Sweep(name="w", space={"hidden_units": [20, 30, 21], "epochs": 2}, seeds=2)
    ctx = TrainContext(sweep, digits)
    trials = sweep.grid_trials()
    packed = {}
    for i in range(0, 6, 2):  # one width (two seeds) a pack; all three pad to 32
        packed.update(_rows(trials[i : i + 2], ctx))
    assert len(made) == 1
    _no_padding(monkeypatch)
    alone = {}
    for t in trials:
        alone.update(_rows([t], ctx))
    _assert_same(packed, alone)
