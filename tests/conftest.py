"""Shared fixtures: tiny sweeps, temporary results folders, and the shared datasets."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_datasets() -> Path | None:
    """The data directory with real MNIST and Boston files, if this machine has one."""
    env = os.environ.get("NNSWEEP_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "datasets")
    for path in candidates:
        if (path / "mnist.npz").exists():
            return path
    return None


# Found once, when the tests start: some tests clear NNSWEEP_DATA_DIR for themselves
# (before this fixture would read it), and the checkout need not sit beside shared/.
_SHARED = shared_datasets()


@pytest.fixture
def data_dir() -> Path:
    """Real datasets; skipped where absent, but never in CI (CI must run these tests)."""
    path = _SHARED
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide the shared datasets (set NNSWEEP_DATA_DIR)")
        pytest.skip("no shared datasets here (set NNSWEEP_DATA_DIR)")
    return path


@pytest.fixture
def write_sweep(tmp_path: Path):
    """Write a sweep file into tmp_path and return its path."""

    def write(body: str, name: str = "tiny.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body))
        return path

    return write


TINY_SWEEP = '''
"""Does width matter on digits? (a test sweep)"""
from nnsweep import Sweep

sweep = Sweep(
    name="tiny",
    data="digits",
    model="mlp",
    space={"hidden_units": [4, 8], "epochs": 1, "batch_size": 64, "learning_rate": 0.01},
    seeds=2,
)
'''

# A custom model that builds but raises once training traces it, in one configuration.
FAILING_PACK = """
import keras
from nnsweep import Sweep

class FailsInFit(keras.layers.Layer):
    def call(self, x, training=None):
        if training:
            raise RuntimeError("cannot train this branch")
        return x

def build(params, spec):
    inputs = keras.Input(spec.input_shape)
    x = keras.layers.Flatten()(inputs)
    if params["broken"]:
        x = FailsInFit()(x)  # builds fine; fails only once training traces it
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))

sweep = Sweep(name="fails", model=build, space={"broken": [False, True], "epochs": 1}, seeds=2)
"""
