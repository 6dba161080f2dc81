"""The pool path of a few-channel convolution: measured once per machine, kept, named."""

from __future__ import annotations

import json
import socket

import pytest

from nnsweep import Sweep, run_sweep
from nnsweep.errors import NnsweepError
from nnsweep.training import pool_paths
from nnsweep.training.pool_paths import MAX_POOL, STRIDED, ConvShape

SHAPE = ConvShape(32, 8, 8, 1, 16, 3, "VALID", 2, False)
OTHER = ConvShape(64, 8, 8, 1, 16, 3, "VALID", 2, False)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder, no forced path, and nothing chosen yet in this process."""
    monkeypatch.setenv(pool_paths.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(pool_paths.ENV, raising=False)
    monkeypatch.setattr(pool_paths, "_memo", {})
    monkeypatch.setattr(pool_paths, "_used", {})
    return tmp_path / "cache" / pool_paths.CACHE_FILE


def timer(strided, max_pool):
    """A stand-in for ``_pool.step_ms`` that counts its calls."""
    calls = []

    def measure(shape):
        calls.append(shape)
        return {STRIDED: strided, MAX_POOL: max_pool}

    return measure, calls


def test_the_faster_path_is_chosen_and_a_near_tie_goes_to_tensorflows_max_pool(cache):
    measure, calls = timer(10.0, 20.0)
    assert pool_paths.choose(SHAPE, "m", measure).path == STRIDED
    measure, _ = timer(19.5, 20.0)  # strided only 2.5 % faster
    assert pool_paths.choose(OTHER, "m", measure).path == MAX_POOL
    assert pool_paths.choose(OTHER, "m2", timer(30.0, 20.0)[0]).path == MAX_POOL
    assert len(calls) == 1


def test_a_choice_is_kept_per_machine_and_read_back_by_a_later_process(cache, monkeypatch):
    measure, calls = timer(10.0, 20.0)
    first = pool_paths.choose(SHAPE, "machine a", measure)
    assert first.how == "measured" and first.where == cache
    again = pool_paths.choose(SHAPE, "machine a", measure)  # this process: from memory
    assert (again.how, again.path, again.ms) == ("kept", STRIDED, first.ms)
    monkeypatch.setattr(pool_paths, "_memo", {})  # as a new process would start
    kept = pool_paths.choose(SHAPE, "machine a", measure)
    assert (kept.how, kept.path, kept.ms) == ("kept", STRIDED, first.ms)
    assert len(calls) == 1
    # Another machine (processor, TensorFlow, threads) measures for itself.
    other = pool_paths.choose(SHAPE, "machine b", timer(30.0, 20.0)[0])
    assert (other.how, other.path) == ("measured", MAX_POOL)
    machines = json.loads(cache.read_text())["machines"]
    assert machines["machine a"][SHAPE.key()]["path"] == STRIDED
    assert machines["machine b"][SHAPE.key()]["path"] == MAX_POOL


def test_the_summary_names_each_path_and_why(cache, monkeypatch):
    pool_paths.choose(SHAPE, "m", timer(10.0, 20.0)[0])
    lines = pool_paths.drain()
    assert lines == [
        "cnn pool (32 maps of 8x8x1, 16 filters 3x3 valid, pool 2): the pool's strided "
        "convolutions, 10.0 against 20.0 ms a step for TensorFlow's max pool, measured on "
        f"{socket.gethostname()} now (kept in {cache})"
    ]
    assert pool_paths.drain() == []  # once per run
    monkeypatch.setattr(pool_paths, "_memo", {})
    pool_paths.choose(SHAPE, "m", timer(1.0, 1.0)[0])
    (line,) = pool_paths.drain()
    assert "strided convolutions, 10.0 against 20.0 ms" in line and "now" not in line
    monkeypatch.setenv(pool_paths.ENV, "maxpool")
    forced = pool_paths.choose(SHAPE, "m", timer(1.0, 2.0)[0])
    assert (forced.how, forced.path) == ("forced", MAX_POOL)
    assert pool_paths.drain() == [
        "cnn pool (32 maps of 8x8x1, 16 filters 3x3 valid, pool 2): TensorFlow's max pool "
        "(NNSWEEP_CONV_POOL=maxpool)"
    ]
    monkeypatch.delenv(pool_paths.ENV)
    for filters in (8, 24, 40, 56, 72):
        shape = ConvShape(32, 8, 8, 1, filters, 3, "VALID", 2, False)
        pool_paths.choose(shape, "m", timer(30.0, 20.0)[0])
    lines = pool_paths.drain()
    assert len(lines) == 4 and lines[-1] == (
        "cnn pool: 2 more convolution shapes, 2 by TensorFlow's max pool"
    )


@pytest.mark.parametrize("text", ["{not json", '{"format": 99}', '{"format": 1, "machines": 3}'])
def test_an_unreadable_cache_is_measured_again_rewritten_and_said(cache, text):
    cache.parent.mkdir(parents=True)
    cache.write_text(text)
    measure, calls = timer(10.0, 20.0)
    choice = pool_paths.choose(SHAPE, "m", measure)
    assert choice.how == "measured" and calls
    (warning,) = [line for line in pool_paths.drain() if line.startswith("warning:")]
    assert str(cache) in warning and "measured again" in warning
    assert json.loads(cache.read_text())["machines"]["m"][SHAPE.key()]["path"] == STRIDED


def test_a_cache_that_cannot_be_written_is_said_and_the_choice_still_made(cache, tmp_path):
    cache.parent.parent.mkdir(exist_ok=True)
    cache.parent.write_text("a file where the folder should be")
    choice = pool_paths.choose(SHAPE, "m", timer(10.0, 20.0)[0])
    assert choice.path == STRIDED and choice.how == "measured"
    (warning,) = [line for line in pool_paths.drain() if line.startswith("warning:")]
    assert "could not be kept" in warning and pool_paths.CACHE_ENV in warning
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]  # no temporary file left


def test_a_bad_forced_path_fails_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv(pool_paths.ENV, "fastest")
    with pytest.raises(NnsweepError, match="NNSWEEP_CONV_POOL must be one of .* got 'fastest'"):
        run_sweep(Sweep(name="c", data="digits", model="cnn"), results=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_the_run_takes_the_measured_path_and_its_summary_says_so(cache, tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    from nnsweep.training import _conv, _engine, _pool

    units = []
    original = _conv.ConvStackUnit.choose_paths

    def recorded(self, micro):
        units.append(self)
        return original(self, micro)

    monkeypatch.setattr(_conv.ConvStackUnit, "choose_paths", recorded)
    monkeypatch.setattr(_engine, "_RECENT", {})
    space = {"filters": [(4,), (8,)], "epochs": 1}
    sweep = Sweep(name="c", data="digits", model="cnn", space=space, seeds=1)
    for fast, slow in ((STRIDED, MAX_POOL), (MAX_POOL, STRIDED)):
        monkeypatch.setattr(pool_paths, "_memo", {})
        cache.unlink(missing_ok=True)
        monkeypatch.setattr(_pool, "step_ms", lambda shape, f=fast, s=slow: {f: 1.0, s: 9.0})
        units.clear()
        summary = run_sweep(sweep, results=tmp_path / fast, pack_size=2)
        assert summary.counts == {"ok": 2} and summary.fallbacks == 0
        (unit,) = units
        assert unit.paths == {(0, 1, sum(d[1] for d in unit.dims)): fast}
        (note,) = [n for n in summary.notes if n.startswith("cnn pool")]
        assert f"{pool_paths.NAMES[fast]}, 1.0 against 9.0 ms" in note


def test_both_paths_are_timed_on_a_real_convolution():
    pytest.importorskip("tensorflow")
    from nnsweep.training import _pool

    for shape in (SHAPE, ConvShape(8, 6, 6, 3, 4, 3, "SAME", 3, True)):
        ms = _pool.step_ms(shape)
        assert set(ms) == {STRIDED, MAX_POOL} and all(v > 0 for v in ms.values())
