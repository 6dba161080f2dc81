"""Importing Keras (``nnsweep._keras``): TensorFlow's noise kept out of the user's way, a
backend that cannot load said in one line, bounded threads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO, TINY_SWEEP

from nnsweep._keras import MAX_THREADS, check_threads, import_keras
from nnsweep.errors import SweepDefinitionError

pytest.importorskip("tensorflow")


def test_retracing_warnings_show_with_debug_only(capfd):
    import_keras()
    import tensorflow as tf

    @tf.function
    def double(x):
        return x * 2

    capfd.readouterr()
    for n in range(1, 10):  # a new shape each call: TensorFlow warns after five retraces
        double(tf.zeros((n,)))
    assert "retracing" not in capfd.readouterr().err


@pytest.mark.parametrize("backend", ["jax_not_installed", "nosuchbackend"])
def test_a_backend_that_cannot_load_is_one_line_before_anything_is_written(tmp_path, backend):
    (tmp_path / "tiny.py").write_text(textwrap.dedent(TINY_SWEEP))
    # "jax" itself may be installed on some machine: a name Keras knows and cannot import
    # stands for it, the module hidden by a path entry that shadows it with an error.
    env = {**os.environ, "KERAS_BACKEND": "jax" if backend.startswith("jax") else backend}
    shadow = tmp_path / "shadow"
    (shadow / "jax").mkdir(parents=True)
    (shadow / "jax" / "__init__.py").write_text("raise ImportError('No module named jax')\n")
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), str(REPO)])
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "nnsweep", "run", "tiny.py", "--results", str(results)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: KERAS_BACKEND must name a Keras backend that is installed")
    assert f"got '{env['KERAS_BACKEND']}'" in lines[0]
    assert not results.exists()


def test_threads_are_bounded():
    check_threads(MAX_THREADS)
    for bad in (0, MAX_THREADS + 1, 100_000, True, 2.0):
        with pytest.raises(SweepDefinitionError, match="--threads must be"):
            check_threads(bad)  # type: ignore[arg-type]
