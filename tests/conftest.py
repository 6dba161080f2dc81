"""Shared fixtures: tiny sweeps, temporary results folders, and the shared datasets."""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The pool paths measured by the tests' CNNs (``nnsweep.training.pool_paths``) go to a
# folder of their own, never the user's cache; subprocesses inherit it.
os.environ["NNSWEEP_CACHE_DIR"] = tempfile.mkdtemp(prefix="nnsweep-test-cache-")
os.environ.pop("NNSWEEP_CONV_POOL", None)


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


def keras_reference(trial, ctx, data):
    """The trial trained by Keras's own ``fit``, from the engine's initial weights and on
    the engine's batches: Keras's schedule or ReduceLROnPlateau, its loss (label smoothing
    included) and ``class_weight``. Its history and the schedule's rate of each epoch."""
    import math

    import keras
    import numpy as np
    import tensorflow as tf

    from nnsweep.training import _optimizers
    from nnsweep.training._conv import make_stack
    from nnsweep.training._table import batch_order
    from nnsweep.training._units import plan_units, stackable
    from nnsweep.training.models import build_model, keras_metrics, make_optimizer, task_loss
    from nnsweep.training.schedules import keras_plateau, keras_schedule, trial_schedule
    from nnsweep.training.targets import class_weights, n_classes

    sweep, spec = ctx.sweep, data.spec
    width = int(np.prod(spec.input_shape))
    keras.utils.set_random_seed(trial.seed)  # as the engine builds a branch's model
    model = build_model(sweep.model, trial.params, spec)
    if stackable(sweep.model, trial):
        unit = make_stack(plan_units(sweep.model, [trial], width)[0][0], [trial], spec, width)
        layers = unit.extract([v.numpy() for v in unit.trainable], 0)
        model.set_weights([a for layer in layers for a in layer])
    split = data.split(sweep.validation_split, sweep.split_seed, sweep.cv, trial.fold)
    y = data.y_train if spec.task == "multiclass" else data.y_train[:, None]
    n, batch, epochs = len(split.fit_idx), trial.params["batch_size"], trial.params["epochs"]
    order = split.fit_idx[batch_order(trial.seed, trial.fold, n)]
    shuffle = np.random.RandomState(ctx.shuffle_seed(trial.fold))
    batches = None
    for _ in range(epochs):
        rows = order[shuffle.permutation(n)]
        part = tf.data.Dataset.from_tensor_slices((data.x_train[rows], y[rows]))
        batches = part.batch(batch) if batches is None else batches.concatenate(part.batch(batch))
    objective, direction = ctx.objective
    lr = _optimizers.trial_settings("adam", trial.params)["learning_rate"]
    schedule = trial_schedule(trial.params, lr, n, direction)
    optimizer = make_optimizer(trial.params, keras_schedule(schedule))
    metrics = [spec.metric, *keras_metrics(sweep.metrics, spec)]
    model.compile(optimizer=optimizer, loss=task_loss(trial.params, spec), metrics=metrics)
    callbacks = []
    if schedule.kind == "plateau":
        callbacks.append(keras_plateau(schedule, objective))
    weights = class_weights(
        trial.params.get("class_weight"), data.y_train[split.fit_idx], n_classes(spec)
    )
    history = model.fit(
        batches,
        epochs=epochs,
        steps_per_epoch=math.ceil(n / batch),
        validation_data=(data.x_train[split.val_idx], y[split.val_idx]),
        callbacks=callbacks,
        class_weight=weights,
        shuffle=False,  # the batches are the engine's, in its order
        verbose=0,
    ).history
    return history, [schedule.epoch_rate(e) for e in range(epochs)]


def train_packed(trials, ctx):
    """``train_pack``'s rows by trial id, checking that the packed path was taken."""
    from nnsweep.training.train import train_pack

    fallbacks: list = []
    fell_back = lambda pack, exc: fallbacks.append(exc)  # noqa: E731
    rows = {r.row["trial_id"]: r for r in train_pack(trials, ctx, on_fallback=fell_back)}
    assert fallbacks == []  # no fall back to one by one
    return rows


def two_layers(params, spec):
    """A custom model: it trains as a branch, its own Keras model inside the pack."""
    import keras

    inputs = keras.Input(spec.input_shape)
    x = keras.layers.Dense(24, activation="tanh")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


@pytest.fixture(scope="module")
def zeros():
    """Binary digits: is it a 0? (about one row in ten: an imbalanced task, which class
    weights and AUC are for)."""
    from nnsweep.data import Dataset, DataSpec, load_dataset

    digits = load_dataset("digits")
    spec = DataSpec("zeros", "binary", digits.spec.input_shape)
    y = (digits.y_train == 0).astype("int32")
    return Dataset(spec, digits.x_train, y, digits.x_test, (digits.y_test == 0).astype("int32"))
