"""How much faster is nnsweep than a plain Keras loop and Keras Tuner? Run side by side.

MNIST sweeps (from the data directory), each trained three ways, every way in a
fresh subprocess with TensorFlow imported before its clock starts, one after another:
  nnsweep     ``run_sweep`` with its defaults (packing on; loading MNIST inside the clock);
  keras-loop  one ``fit`` per model and seed, as a user would write it;
  kt          Keras Tuner ``GridSearch(executions_per_trial=seeds)`` over the same grid,
              batch size and early stopping through a ``HyperModel.fit``.

  hidden-units  one hidden layer of 8..512 units, RMSprop, batch 128, 2 epochs, 3 seeds
  arch-mix      width {64, 256} x depth {1, 2} x dropout {0, 0.2}, Adam, 2 epochs, 3 seeds
  training      optimizer {adam, rmsprop, sgd} x learning rate {1e-3, 1e-2} x batch size
                {64, 128, 256}, 128 units, 1 epoch, 2 seeds
  early-stop    width {64, 256} x patience {2, 5} x learning rate {1e-3, 1e-2}, batch 128,
                at most 20 epochs (early stopping on val_accuracy, best weights kept), 3 seeds
  cnn           nnsweep's built-in CNN (one 3x3 convolution, max-pool 2, dense 128):
                filters {16, 32} x dropout {0, 0.2}, Adam, batch 128, 1 epoch, 2 seeds
  cnn-branches  the same CNNs through a custom build function (``build_model("cnn")``),
                which trains each as its own Keras model in the pack: the control for
                the CNN stacks (nnsweep only)
  cnn-deep      two 3x3 convolutions, each max-pooled, dense 64: filters {16-32, 32-64}
                x dropout {0, 0.25}, Adam, batch 128, 1 epoch, 2 seeds
  cnn-deep-branches  its control, as cnn-branches
  schedules     learning-rate schedule {constant, cosine, exponential, step, plateau},
                128 units, Adam 1e-3, batch 128, 3 epochs, 2 seeds
  constant-lr   the same shapes with a constant rate {5e-4 .. 5e-3}: the control for
                schedules (a schedule should pack as fast as a constant rate)
  metrics       hidden-units with macro F1 and top-5 accuracy recorded (Sweep(metrics=...);
                Keras's metric objects for the others): the control is hidden-units

Each case's *floor* is the arithmetic its trials must do, at the rate this machine reaches,
in the same run: per training row and epoch, 6 FLOPs per multiply-add of every weighted
layer (forward, and the gradients of its input and weights), 4 in the first layer (its
input, the data, needs no gradient), 2 per validation and test row; dense layers at the
rate of one 2048x2048 float32 matmul, each convolution shape at the rate TensorFlow
reaches training one large batch of that shape (measured, not assumed); the epochs are
those nnsweep's trials ran (early stopping). The whole-process floor adds a process that
only imports TensorFlow. The ratio to the floor is printed beside the others, and the
ratio to the rougher count of 6 FLOPs a multiply-add everywhere.

For each: wall seconds from after the imports to the end of training, the whole
process's wall seconds (Python's start, imports, data, training, exit), ratios of both,
and the test accuracy of each configuration (mean over seeds) next to the plain loop's.
Then, many tiny trials: 100 configurations of a digits MLP, 1 epoch each, nnsweep vs
Keras Tuner ``RandomSearch``: trials per minute, RSS.

    NNSWEEP_DATA_DIR=../shared/datasets python benchmarks/sweep_speed.py [--cases ...] [--quick]

``--quick`` runs every case with 1 epoch and fewer values, to check that the script works;
``--only nnsweep nnsweep-jax kt`` picks contenders (``-jax``: Keras's JAX backend).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TINY_UNITS = [4, 8, 12, 16, 24, 32, 48, 64, 96, 128]
TINY_LRS = [3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2, 3e-2, 5e-2]

# Each case: the swept values (a grid), the fixed ones, and the seeds.
CASES = {
    "hidden-units": {
        "swept": {"hidden_units": [8, 16, 32, 64, 128, 256, 512]},
        "fixed": {"optimizer": "rmsprop", "learning_rate": 1e-3, "batch_size": 128, "epochs": 2},
        "seeds": 3,
    },
    "arch-mix": {
        "swept": {"hidden_units": [64, 256], "depth": [1, 2], "dropout": [0.0, 0.2]},
        "fixed": {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128, "epochs": 2},
        "seeds": 3,
    },
    "training": {
        "swept": {
            "optimizer": ["adam", "rmsprop", "sgd"],
            "learning_rate": [1e-3, 1e-2],
            "batch_size": [64, 128, 256],
        },
        "fixed": {"hidden_units": 128, "epochs": 1},
        "seeds": 2,
    },
    "early-stop": {
        "swept": {"hidden_units": [64, 256], "patience": [2, 5], "learning_rate": [1e-3, 1e-2]},
        "fixed": {"optimizer": "adam", "batch_size": 128, "epochs": 20},
        "seeds": 3,
    },
    "cnn": {
        "model": "cnn",
        "swept": {"filters": [16, 32], "dropout": [0.0, 0.2]},
        "fixed": {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128, "epochs": 1,
                  "kernel_size": 3, "dense_units": 128},
        "seeds": 2,
    },
    "cnn-deep": {
        "model": "cnn",
        "swept": {"filters": [(16, 32), (32, 64)], "dropout": [0.0, 0.25]},
        "fixed": {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128, "epochs": 1,
                  "conv_layers": 2, "kernel_size": 3, "dense_units": 64},
        "seeds": 2,
    },
    "schedules": {
        "swept": {"lr_schedule": ["constant", "cosine", "exponential", "step", "plateau"]},
        "fixed": {"hidden_units": 128, "optimizer": "adam", "learning_rate": 1e-3,
                  "batch_size": 128, "epochs": 3},
        "seeds": 2,
    },
    "constant-lr": {
        "swept": {"learning_rate": [5e-4, 1e-3, 2e-3, 3e-3, 5e-3]},
        "fixed": {"hidden_units": 128, "optimizer": "adam", "batch_size": 128, "epochs": 3},
        "seeds": 2,
    },
    "metrics": {
        "swept": {"hidden_units": [8, 16, 32, 64, 128, 256, 512]},
        "fixed": {"optimizer": "rmsprop", "learning_rate": 1e-3, "batch_size": 128, "epochs": 2},
        "seeds": 3,
        "metrics": ["f1", "top_k_accuracy"],
    },
}  # fmt: skip
# The CNN cases again through a custom build function: branches, the stacks' controls.
CASES["cnn-branches"] = {**CASES["cnn"], "branches": True}
CASES["cnn-deep-branches"] = {**CASES["cnn-deep"], "branches": True}
# MNIST's rows as every contender splits them (validation_split 0.2), for the floors.
FIT_ROWS, VAL_ROWS, TEST_ROWS = 48_000, 12_000, 10_000
DEFAULTS = {
    "hidden_units": 64,
    "depth": 1,
    "dropout": 0.0,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "batch_size": 32,
    "epochs": 1,
    "patience": None,
    "lr_schedule": "constant",
}


def _quick(case: dict) -> dict:
    swept = {k: v[:2] for k, v in case["swept"].items()}
    fixed = {
        **case["fixed"],
        "epochs": min(case["fixed"]["epochs"], 2 if "patience" in swept else 1),
    }
    return {**case, "swept": swept, "fixed": fixed, "seeds": 2}


def _configs(case: dict) -> list[dict]:
    names = list(case["swept"])
    return [
        {**DEFAULTS, **case["fixed"], **dict(zip(names, values, strict=True))}
        for values in itertools.product(*case["swept"].values())
    ]


def _fmt(value) -> str:
    """A value as nnsweep's rows write it (tuples as 16-32), so labels match across runs."""
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value)
    return str(value)


def _label(config: dict, case: dict) -> str:
    return " ".join(f"{k}={_fmt(config[k])}" for k in case["swept"])


def _quiet_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from nnsweep._keras import import_keras

    return import_keras()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the contenders (each runs in its own subprocess) --------------------------------------


def run_nnsweep(cfg: dict) -> dict:
    # TensorFlow is imported before the clock starts, as for the other contenders; loading
    # MNIST stays inside the timed run (the others load it before their clocks start).
    _quiet_keras()
    from nnsweep import run_sweep

    case = cfg["case"]
    sweep = case_sweep(case)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = run_sweep(sweep, results=tmp)
        seconds = time.perf_counter() - t0
    acc: dict[str, list[float]] = {}
    epochs: dict[str, list[int]] = {}
    for row in summary.rows:
        config = {**DEFAULTS, **case["fixed"], **{k: row[k] for k in case["swept"]}}
        acc.setdefault(_label(config, case), []).append(row["test_accuracy"])
        epochs.setdefault(_label(config, case), []).append(int(row["epochs_run"]))
    packs = sorted({row["pack_size"] for row in summary.rows})
    return {
        "seconds": seconds,
        "test_accuracy": acc,
        "epochs": epochs,
        "rss_mb": _rss_mb(),
        "packs": packs,
    }


def case_sweep(case: dict) -> Any:
    """A case as nnsweep's ``Sweep`` (on MNIST)."""
    from nnsweep import Sweep

    space = {**case["fixed"], **case["swept"]}
    if "filters" in case["swept"]:  # tuples arrive from JSON as lists (a list is swept)
        space["filters"] = [tuple(v) if isinstance(v, list) else v for v in space["filters"]]
    return Sweep(
        name="bench",
        data="mnist",
        model=_cnn_branch if case.get("branches") else case.get("model", "mlp"),
        space=space,
        seeds=case["seeds"],
        metrics=case.get("metrics", ()),
    )


def _cnn_branch(params, spec):
    """nnsweep's built-in CNN from a custom build function: a model of its own (a branch)."""
    from nnsweep import build_model

    params = {**params, "filters": tuple(_ints(params["filters"]))}
    return build_model("cnn", params, spec)


def _mnist():
    from nnsweep.data import load_dataset

    ds = load_dataset("mnist")
    return ds.x_train, ds.y_train, ds.x_test, ds.y_test


def _build(keras, config: dict, model: str = "mlp", added: tuple = ()):
    from nnsweep.data import DataSpec
    from nnsweep.training.models import keras_metrics

    metrics = ["accuracy", *keras_metrics(added, DataSpec("mnist", "multiclass", (28, 28), 10))]
    if model == "cnn":  # nnsweep's own CNN, so every contender trains the same network
        from nnsweep.data import load_dataset
        from nnsweep.training.models import build_model, compile_for_task

        spec = load_dataset("mnist").spec
        mlp_only = ("hidden_units", "depth", "patience")
        params = {k: v for k, v in config.items() if k not in mlp_only}
        params["filters"] = tuple(_ints(config["filters"]))
        net = build_model("cnn", params, spec)
        return compile_for_task(net, params, spec)
    layers = [keras.Input((28, 28)), keras.layers.Flatten()]
    for _ in range(config["depth"]):
        layers.append(keras.layers.Dense(config["hidden_units"], activation="relu"))
        if config["dropout"]:
            layers.append(keras.layers.Dropout(config["dropout"]))
    model = keras.Sequential([*layers, keras.layers.Dense(10, activation="softmax")])
    optimizer = {"adam": "Adam", "rmsprop": "RMSprop", "sgd": "SGD"}[config["optimizer"]]
    model.compile(
        getattr(keras.optimizers, optimizer)(_rate(config)),
        "sparse_categorical_crossentropy",
        metrics=metrics,
    )
    return model


def _ints(value) -> list[int]:
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def _schedule(config: dict):
    from nnsweep.training.schedules import trial_schedule

    return trial_schedule(config, config["learning_rate"], FIT_ROWS, "max")


def _rate(config: dict):
    """The learning rate as Keras takes it: a number, or Keras's own schedule object."""
    if config["lr_schedule"] == "constant":
        return config["learning_rate"]
    from nnsweep.training.schedules import keras_schedule

    return keras_schedule(_schedule(config))


def _callbacks(keras, config: dict) -> list:
    out = []
    if config["lr_schedule"] == "plateau":  # on the objective, as nnsweep's plateau does
        from nnsweep.training.schedules import keras_plateau

        out.append(keras_plateau(_schedule(config), "val_accuracy"))
    if config["patience"] is not None:
        out.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=config["patience"], restore_best_weights=True
            )
        )
    return out


def run_keras_loop(cfg: dict) -> dict:
    keras = _quiet_keras()
    x, y, xt, yt = _mnist()
    case = cfg["case"]
    t0 = time.perf_counter()
    acc: dict[str, list[float]] = {}
    for config in _configs(case):
        for seed in range(case["seeds"]):
            keras.utils.set_random_seed(seed)
            model = _build(keras, config, case.get("model", "mlp"), case.get("metrics", ()))
            model.fit(
                x,
                y,
                validation_split=0.2,
                epochs=config["epochs"],
                batch_size=config["batch_size"],
                callbacks=_callbacks(keras, config),
                verbose=0,
            )
            a = model.evaluate(xt, yt, batch_size=1024, verbose=0, return_dict=True)["accuracy"]
            acc.setdefault(_label(config, case), []).append(a)
            keras.backend.clear_session()
    return {"seconds": time.perf_counter() - t0, "test_accuracy": acc, "rss_mb": _rss_mb()}


def run_kt(cfg: dict) -> dict:
    keras = _quiet_keras()
    import keras_tuner as kt

    x, y, xt, yt = _mnist()
    case = cfg["case"]
    configs = _configs(case)

    class Grid(kt.HyperModel):
        """One trial per configuration, chosen by index (the grid in a fixed order)."""

        def build(self, hp):
            config = configs[hp.Choice("config", list(range(len(configs))))]
            return _build(keras, config, case.get("model", "mlp"), case.get("metrics", ()))

        def fit(self, hp, model, *args, **kwargs):
            config = configs[hp.get("config")]
            kwargs["callbacks"] = kwargs.get("callbacks", []) + _callbacks(keras, config)
            return model.fit(*args, batch_size=config["batch_size"], **kwargs)

    with tempfile.TemporaryDirectory() as tmp:
        tuner = kt.GridSearch(
            Grid(),
            objective="val_accuracy",
            executions_per_trial=case["seeds"],
            directory=tmp,
            project_name="bench",
            overwrite=True,
        )
        epochs = max(c["epochs"] for c in configs)
        t0 = time.perf_counter()
        tuner.search(x, y, validation_split=0.2, epochs=epochs, verbose=0)
        seconds = time.perf_counter() - t0
        # Keras Tuner keeps one checkpoint per trial, not per execution: test that one.
        acc = {}
        for trial in tuner.oracle.trials.values():
            model = tuner.load_model(trial)
            a = model.evaluate(xt, yt, batch_size=1024, verbose=0, return_dict=True)["accuracy"]
            acc[_label(configs[trial.hyperparameters.get("config")], case)] = [a]
    return {"seconds": seconds, "test_accuracy": acc, "rss_mb": _rss_mb()}


def run_tiny_nnsweep(cfg: dict) -> dict:
    _quiet_keras()  # as for Keras Tuner, whose import is outside its clock
    from nnsweep import Sweep, run_sweep

    sweep = Sweep(
        name="tiny",
        data="digits",
        space={"hidden_units": TINY_UNITS, "learning_rate": TINY_LRS, "epochs": 1},
        seeds=1,
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = run_sweep(sweep, results=tmp)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "trials": len(summary.rows), "rss_mb": _rss_mb()}


def run_tiny_kt_random(cfg: dict) -> dict:
    keras = _quiet_keras()
    import keras_tuner as kt

    from nnsweep.data import load_dataset

    ds = load_dataset("digits")

    def build(hp):
        model = keras.Sequential(
            [
                keras.Input((8, 8)),
                keras.layers.Flatten(),
                keras.layers.Dense(hp.Choice("units", TINY_UNITS), activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        opt = keras.optimizers.Adam(hp.Choice("lr", TINY_LRS))
        model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    with tempfile.TemporaryDirectory() as tmp:
        tuner = kt.RandomSearch(
            build,
            objective="val_accuracy",
            max_trials=len(TINY_UNITS) * len(TINY_LRS),
            directory=tmp,
            project_name="tiny",
            overwrite=True,
            seed=0,
        )
        t0 = time.perf_counter()
        tuner.search(ds.x_train, ds.y_train, validation_split=0.2, epochs=1, verbose=0)
        seconds = time.perf_counter() - t0
        trials = len(tuner.oracle.trials)
    return {"seconds": seconds, "trials": trials, "rss_mb": _rss_mb()}


def run_matmul(cfg: dict) -> dict:
    """float32 matmul throughput of this machine, through TensorFlow (the same kernels)."""
    _quiet_keras()
    import tensorflow as tf

    n = 2048
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.linalg.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - t0)
    return {"gflops": 2 * n**3 / best / 1e9}


def run_conv_rate(cfg: dict) -> dict:
    """float32 convolution throughput of each shape (H, W, C_in, C_out, k, first) as
    training runs it, on one large batch: the forward convolution and its gradients (the
    kernel's; the input's too unless the layer is the first, whose input needs none)."""
    _quiet_keras()
    import tensorflow as tf

    rates = {}
    batch = 512
    for h, w, cin, cout, k, first in cfg["shapes"]:
        x = tf.Variable(tf.random.normal((batch, h, w, cin)))
        kernel = tf.Variable(tf.random.normal((k, k, cin, cout)))
        wanted = [kernel] if first else [kernel, x]

        @tf.function
        def step(x=x, kernel=kernel, wanted=wanted):
            with tf.GradientTape() as tape:
                y = tf.reduce_sum(tf.nn.conv2d(x, kernel, 1, "VALID"))
            return tape.gradient(y, wanted)

        step()
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            [g.numpy() for g in step()]
            best = min(best, time.perf_counter() - t0)
        macs = k * k * cin * cout * (h - k + 1) * (w - k + 1) * batch
        flops = 2 * macs * (1 + len(wanted))
        rates[json.dumps([h, w, cin, cout, k, first])] = flops / best / 1e9
    return {"gflops": rates}


def run_import(cfg: dict) -> dict:
    """A process that imports TensorFlow and nothing else: the whole-process floor's start."""
    import tensorflow  # noqa: F401

    return {}


CONTENDERS = {
    "nnsweep": run_nnsweep,
    "keras-loop": run_keras_loop,
    "kt": run_kt,
    "tiny-nnsweep": run_tiny_nnsweep,
    "tiny-kt-random": run_tiny_kt_random,
    "matmul": run_matmul,
    "conv-rate": run_conv_rate,
    "import": run_import,
}


# -- floors ----------------------------------------------------------------------------------


def _weighted_layers(config: dict, model: str) -> list[tuple[str, int, list[int] | None]]:
    """Each weighted layer of a configuration, the first first: (dense or conv,
    multiply-adds per row, the conv shape [H, W, C_in, C_out, k, first] or None)."""
    if model != "cnn":
        widths = [config["hidden_units"]] * config["depth"]
        dims = [784, *widths, 10]
        return [("dense", a * b + b, None) for a, b in zip(dims[:-1], dims[1:], strict=True)]
    k, pool = config.get("kernel_size", 3), config.get("pool_size", 2)
    h = w = 28
    cin = 1
    out = []
    filters = _ints(config["filters"])
    if len(filters) == 1:
        filters = filters * config.get("conv_layers", 1)
    for cout in filters:
        shape = [h, w, cin, cout, k, not out]
        out.append(("conv", k * k * cin * cout * (h - k + 1) * (w - k + 1), shape))
        h, w, cin = (h - k + 1) // pool, (w - k + 1) // pool, cout
    dims = [h * w * cin, *([config["dense_units"]] if config.get("dense_units") else []), 10]
    out += [("dense", a * b + b, None) for a, b in zip(dims[:-1], dims[1:], strict=True)]
    return out


def conv_shapes(case: dict) -> list[list[int]]:
    shapes = {
        json.dumps(shape)
        for config in _configs(case)
        for kind, _, shape in _weighted_layers(config, case.get("model", "mlp"))
        if kind == "conv"
    }
    return [json.loads(s) for s in sorted(shapes)]


def floor_seconds(
    case: dict,
    epochs: dict[str, list[int]],
    matmul: float,
    conv: dict,
    strict: bool = True,
    parts: tuple[str, ...] = ("train", "val", "test"),
) -> float:
    """The arithmetic a case's trials must do, in seconds at this machine's rates: per
    training row and epoch 6 FLOPs a multiply-add (forward, and the gradients of the input
    and the weights), 4 in the first layer (its input needs no gradient; ``strict=False``
    counts 6 there too, the issue's rough estimate), 2 per validation and test row.
    ``parts``: which of training, validation and test to count."""
    seconds = 0.0
    for config in _configs(case):
        for e in epochs[_label(config, case)]:  # each seed's epochs, as nnsweep ran them
            layers = _weighted_layers(config, case.get("model", "mlp"))
            for i, (kind, macs, shape) in enumerate(layers):
                train = 4 if strict and i == 0 else 6
                rows = {"train": train * FIT_ROWS * e, "val": 2 * VAL_ROWS * e}
                rows["test"] = 2 * TEST_ROWS
                flops = macs * sum(rows[p] for p in parts)
                rate = matmul if kind == "dense" else conv[json.dumps(shape)]
                seconds += flops / (rate * 1e9)
    return seconds


# -- the driver ------------------------------------------------------------------------


def _spawn(name: str, cfg: dict) -> dict:
    # "NAME-jax" runs contender NAME on Keras's JAX backend (TensorFlow otherwise).
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if name.endswith("-jax"):
        env["KERAS_BACKEND"] = "jax"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", name.removesuffix("-jax"), json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=3600,
        env=env,
    )
    process_seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    # The whole process: Python's start, imports (TensorFlow's ~9 s), data, training, exit.
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "process": process_seconds}


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return mean, std


def _case(name: str, case: dict, contenders: list[str], rates: dict[str, Any]) -> dict[str, float]:
    if case.get("branches"):  # a control for nnsweep's stacks: the others train alike
        contenders = [c for c in contenders if c.startswith("nnsweep")]
    n = len(_configs(case)) * case["seeds"]
    print(f"\n{name}: {n} models ({', '.join(f'{k} {v}' for k, v in case['swept'].items())}; "
          f"{case['seeds']} seeds)")  # fmt: skip
    out = {c: _spawn(c, {"case": case}) for c in contenders}
    ratios = {}
    if "nnsweep" in out:
        conv = (
            _spawn("conv-rate", {"shapes": conv_shapes(case)})["gflops"]
            if case.get("model") == "cnn"
            else {}
        )
        for shape, rate in conv.items():
            print(f"  convolution {shape} (H, W, C_in, C_out, k, first), training: {rate:.1f} "
                  "GFLOP/s")  # fmt: skip
        floor = floor_seconds(case, out["nnsweep"]["epochs"], rates["matmul"], conv)
        rough = floor_seconds(case, out["nnsweep"]["epochs"], rates["matmul"], conv, False)
        whole = floor + rates["import"]
        mine = out["nnsweep"]
        ratios["nnsweep/floor"] = mine["seconds"] / floor
        ratios["nnsweep/floor whole"] = mine["process"] / whole
        ratios["nnsweep/6x-floor whole"] = mine["process"] / (rough + rates["import"])
        print(f"  floor: {floor:.1f} s of arithmetic ({whole:.1f} s as a whole process, with "
              f"the {rates['import']:.1f} s TensorFlow import; {rough:.1f} s counting 6 FLOPs "
              f"a multiply-add in the first layer too); nnsweep at {ratios['nnsweep/floor']:.2f}x "
              f"the floor ({ratios['nnsweep/floor whole']:.2f}x as whole processes, "
              f"{ratios['nnsweep/6x-floor whole']:.2f}x by the rough count)")  # fmt: skip
    for c, r in out.items():
        packs = f"  packs of {r['packs']}" if "packs" in r else ""
        print(f"  {c:<12} {r['seconds']:7.1f} s  (whole process {r['process']:6.1f} s)  "
              f"RSS {r['rss_mb']:.0f} MB{packs}")  # fmt: skip
    for a in contenders:
        for b in contenders:
            if a.startswith("nnsweep") and not b.startswith("nnsweep"):
                ratios[f"{a}/{b}"] = out[b]["seconds"] / out[a]["seconds"]
                whole = out[b]["process"] / out[a]["process"]
                ratios[f"{a}/{b} whole"] = whole
                print(f"  {a} is {ratios[f'{a}/{b}']:.2f}x faster than {b} "
                      f"({whole:.2f}x as whole processes)")  # fmt: skip
    if "nnsweep" in out and "keras-loop" in out:
        print("  test accuracy per configuration, mean ± std over seeds (nnsweep | plain loop)")
        off = 0
        for label, values in out["nnsweep"]["test_accuracy"].items():
            m1, s1 = _mean_std(values)
            m2, s2 = _mean_std(out["keras-loop"]["test_accuracy"][label])
            flag = ""
            if abs(m1 - m2) > 2 * max(s1, s2, 2e-3):
                off += 1
                flag = "  <- beyond two seed std"
            print(f"    {label:<48} {m1:.4f} ± {s1:.4f} | {m2:.4f} ± {s2:.4f}{flag}")
        total = len(out["nnsweep"]["test_accuracy"])
        print(f"  configurations whose means differ beyond two seed std: {off} of {total}")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", choices=list(CASES), help="default: all")
    parser.add_argument("--quick", action="store_true", help="1 epoch, fewer values: a smoke run")
    parser.add_argument("--skip-tiny", action="store_true", help="leave out the tiny trials")
    parser.add_argument(
        "--only",
        nargs="*",
        help="contenders (nnsweep, keras-loop, kt; NAME-jax runs one on Keras's JAX backend)",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, cfg = args.child
        print(json.dumps(CONTENDERS[name](json.loads(cfg))))
        return

    python = sys.version.split()[0]
    print(f"{time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores; python {python}")
    ceiling = _spawn("matmul", {})["gflops"]
    print(f"float32 matmul (2048x2048, TensorFlow): {ceiling:.1f} GFLOP/s")
    imported = min(_spawn("import", {})["process"] for _ in range(2))
    print(f"a process that only imports TensorFlow: {imported:.1f} s")
    rates = {"matmul": ceiling, "import": imported}
    contenders = args.only or ["nnsweep", "keras-loop", "kt"]
    summary = {}
    for name in args.cases or list(CASES):
        case = _quick(CASES[name]) if args.quick else CASES[name]
        summary[name] = _case(name, case, contenders, rates)
    print("\nsummary (wall-time ratios):")
    for name, ratios in summary.items():
        print(f"  {name:<13} " + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    pair = summary.get("schedules", {}), summary.get("constant-lr", {})
    if all("nnsweep/floor" in r for r in pair):
        # Same shapes, same arithmetic: equal ratios to the floor mean schedules cost nothing.
        ratio = pair[0]["nnsweep/floor"] / pair[1]["nnsweep/floor"]
        print(f"  schedules take {ratio:.2f}x the time of constant rates of the same shapes")
    for stacked in ("cnn", "cnn-deep"):
        pair = summary.get(stacked, {}), summary.get(f"{stacked}-branches", {})
        if all("nnsweep/floor" in r for r in pair):
            # The same CNNs, stacked and as branches: the ratio is what stacking saves.
            ratio = pair[1]["nnsweep/floor"] / pair[0]["nnsweep/floor"]
            print(f"  {stacked}: stacked CNNs are {ratio:.2f}x faster than the same as branches")
    pair = summary.get("metrics", {}), summary.get("hidden-units", {})
    if all("nnsweep/floor" in r for r in pair):
        # Same sweep, same arithmetic: the ratio is what recording the metrics costs.
        ratio = pair[0]["nnsweep/floor"] / pair[1]["nnsweep/floor"]
        print(f"  recording f1 and top-5 accuracy takes {ratio:.2f}x the time without them")

    if args.skip_tiny or args.quick:
        return
    print(f"\ntiny: {len(TINY_UNITS) * len(TINY_LRS)} digits MLP trials, 1 epoch each")
    tiny = {n: _spawn(n, {}) for n in ("tiny-nnsweep", "tiny-kt-random")}
    for n, r in tiny.items():
        rate = r["trials"] / r["seconds"] * 60
        print(f"  {n:<15} {r['trials']} trials in {r['seconds']:6.1f} s = {rate:7.1f} trials/min"
              f"  RSS after the last trial {r['rss_mb']:.0f} MB")  # fmt: skip
    # Per trial: RandomSearch may stop short of 100 when its draws repeat a configuration.
    rate = {n: r["trials"] / r["seconds"] for n, r in tiny.items()}
    ratio = rate["tiny-nnsweep"] / rate["tiny-kt-random"]
    print(f"  nnsweep trains {ratio:.2f}x more trials per minute than Keras Tuner RandomSearch")


if __name__ == "__main__":
    main()
