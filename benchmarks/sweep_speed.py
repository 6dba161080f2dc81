"""How much faster is nnsweep than a plain Keras loop and Keras Tuner? Run side by side.

Case 1, the hidden-units sweep: MNIST (from the data directory), one hidden layer of 8..512
units, 3 seeds each, 2 epochs, batch 128, RMSprop: 21 models, trained three ways, each in a
fresh subprocess, one after another:
  nnsweep     ``run_sweep`` with its defaults (packing on);
  keras-loop  one ``fit`` per model, as a user would write it;
  kt-grid     Keras Tuner ``GridSearch(executions_per_trial=3)``.
For each: wall seconds, useful GFLOP/s (6 x params x samples x epochs / seconds), that as a
fraction of this machine's float32 matmul throughput, ratios, and test accuracy per width.

Case 2, many tiny trials: 100 configurations of a digits MLP, 1 epoch each, nnsweep vs
Keras Tuner ``RandomSearch``: trials per minute and RSS after the last trial.

    NNSWEEP_DATA_DIR=../shared/datasets python benchmarks/sweep_speed.py [--quick]

``--quick`` runs case 1 with 1 epoch and two widths, to check that the script works;
``--only nnsweep nnsweep-jax kt-grid`` compares the TensorFlow and JAX backends too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTHS = [8, 16, 32, 64, 128, 256, 512]
SEEDS = 3
EPOCHS = 2
BATCH = 128
LR = 1e-3
TINY_UNITS = [4, 8, 12, 16, 24, 32, 48, 64, 96, 128]
TINY_LRS = [3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2, 3e-2, 5e-2]


def _quiet_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from nnsweep._keras import import_keras

    return import_keras()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _mlp_params(units: int, inputs: int = 784, classes: int = 10) -> int:
    return inputs * units + units + units * classes + classes


# -- the contenders (each runs in its own subprocess) --------------------------------------


def run_nnsweep(cfg: dict) -> dict:
    # TensorFlow is imported before the clock starts, as for the other contenders; loading
    # MNIST stays inside the timed run (the others load it before their clocks start).
    _quiet_keras()
    from nnsweep import Sweep, run_sweep

    sweep = Sweep(
        name="bench",
        data="mnist",
        model="mlp",
        space={
            "hidden_units": cfg["widths"],
            "depth": 1,
            "optimizer": "rmsprop",
            "learning_rate": LR,
            "batch_size": BATCH,
            "epochs": cfg["epochs"],
        },
        seeds=SEEDS,
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = run_sweep(sweep, results=tmp, **cfg.get("run_kwargs", {}))
        seconds = time.perf_counter() - t0
    acc = {}
    for row in summary.rows:
        acc.setdefault(str(row["hidden_units"]), []).append(row["test_accuracy"])
    return {"seconds": seconds, "test_accuracy": acc, "rss_mb": _rss_mb()}


def _mnist(keras):
    from nnsweep.data import load_dataset

    ds = load_dataset("mnist")
    return ds.x_train, ds.y_train, ds.x_test, ds.y_test


def _build(keras, units: int):
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.RMSprop(LR), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def run_keras_loop(cfg: dict) -> dict:
    keras = _quiet_keras()
    x, y, xt, yt = _mnist(keras)
    t0 = time.perf_counter()
    acc = {}
    for units in cfg["widths"]:
        for seed in range(SEEDS):
            keras.utils.set_random_seed(seed)
            model = _build(keras, units)
            model.fit(x, y, validation_split=0.2, epochs=cfg["epochs"], batch_size=BATCH, verbose=0)
            _, a = model.evaluate(xt, yt, batch_size=1024, verbose=0)
            acc.setdefault(str(units), []).append(a)
            keras.backend.clear_session()
    return {"seconds": time.perf_counter() - t0, "test_accuracy": acc, "rss_mb": _rss_mb()}


def run_kt_grid(cfg: dict) -> dict:
    keras = _quiet_keras()
    import keras_tuner as kt

    x, y, xt, yt = _mnist(keras)
    with tempfile.TemporaryDirectory() as tmp:
        tuner = kt.GridSearch(
            lambda hp: _build(keras, hp.Choice("units", cfg["widths"])),
            objective="val_accuracy",
            executions_per_trial=SEEDS,
            directory=tmp,
            project_name="bench",
            overwrite=True,
        )
        t0 = time.perf_counter()
        tuner.search(x, y, validation_split=0.2, epochs=cfg["epochs"], batch_size=BATCH, verbose=0)
        seconds = time.perf_counter() - t0
        # Keras Tuner keeps one checkpoint per trial, not per execution: test that one.
        acc = {}
        for trial in tuner.oracle.trials.values():
            model = tuner.load_model(trial)
            _, a = model.evaluate(xt, yt, batch_size=1024, verbose=0)
            acc[str(trial.hyperparameters.get("units"))] = [a]
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


CONTENDERS = {
    "nnsweep": run_nnsweep,
    "keras-loop": run_keras_loop,
    "kt-grid": run_kt_grid,
    "tiny-nnsweep": run_tiny_nnsweep,
    "tiny-kt-random": run_tiny_kt_random,
    "matmul": run_matmul,
}


# -- the driver ------------------------------------------------------------------------


def _spawn(name: str, cfg: dict) -> dict:
    # "NAME-jax" runs contender NAME on Keras's JAX backend (TensorFlow otherwise).
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if name.endswith("-jax"):
        env["KERAS_BACKEND"] = "jax"
    proc = subprocess.run(
        [sys.executable, __file__, "--child", name.removesuffix("-jax"), json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=3600,
        env=env,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return mean, std


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch, 2 widths: a smoke run")
    parser.add_argument("--skip-tiny", action="store_true", help="only case 1")
    parser.add_argument(
        "--only",
        nargs="*",
        help="run only these case-1 contenders (nnsweep, keras-loop, kt-grid; "
        "NAME-jax runs one on Keras's JAX backend, e.g. nnsweep-jax)",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, cfg = args.child
        print(json.dumps(CONTENDERS[name](json.loads(cfg))))
        return

    cfg = {"widths": [8, 512] if args.quick else WIDTHS, "epochs": 1 if args.quick else EPOCHS}
    samples = 48_000  # MNIST's 60,000 training rows less the 20 % validation split
    flops = sum(6 * _mlp_params(u) * samples * cfg["epochs"] * SEEDS for u in cfg["widths"])
    python = sys.version.split()[0]
    print(f"{time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores; python {python}")
    ceiling = _spawn("matmul", {})["gflops"]
    print(f"float32 matmul (2048x2048, TensorFlow): {ceiling:.1f} GFLOP/s")
    print(f"\ncase 1: {len(cfg['widths'])} widths x {SEEDS} seeds, {cfg['epochs']} epochs, "
          f"MNIST; useful work {flops / 1e9:.1f} GFLOP")  # fmt: skip
    names = args.only or ["nnsweep", "keras-loop", "kt-grid"]
    out = {}
    for name in names:
        out[name] = _spawn(name, cfg)
        r = out[name]
        gflops = flops / r["seconds"] / 1e9
        print(f"  {name:<11} {r['seconds']:7.1f} s  {gflops:6.2f} GFLOP/s  "
              f"{gflops / ceiling:6.1%} of matmul  RSS {r['rss_mb']:.0f} MB")  # fmt: skip
    for a in names:
        for b in names:
            if a.startswith("nnsweep") and not b.startswith("nnsweep"):
                print(f"  {a} is {out[b]['seconds'] / out[a]['seconds']:.2f}x faster than {b}")
    print("\n  test accuracy per width (mean ± std over seeds; kt-grid: its one kept checkpoint)")
    print("  " + f"{'units':>6} " + " ".join(f"{n:>18}" for n in names))
    for units in cfg["widths"]:
        cells = []
        for n in names:
            m, s = _mean_std(out[n]["test_accuracy"][str(units)])
            cells.append(f"{m:.4f} ± {s:.4f}".rjust(18))
        print(f"  {units:>6} " + " ".join(cells))
    if "nnsweep" in out and "keras-loop" in out:
        ok = True
        for units in cfg["widths"]:
            m1, s1 = _mean_std(out["nnsweep"]["test_accuracy"][str(units)])
            m2, s2 = _mean_std(out["keras-loop"]["test_accuracy"][str(units)])
            if abs(m1 - m2) > 2 * max(s1, s2, 1e-3):
                ok = False
                print(f"  width {units}: nnsweep {m1:.4f} vs loop {m2:.4f} differ beyond 2 std")
        print(f"  per-width means within two seed std of the plain loop: {'yes' if ok else 'NO'}")

    if args.skip_tiny or args.quick:
        return
    print(f"\ncase 2: {len(TINY_UNITS) * len(TINY_LRS)} digits MLP trials, 1 epoch each")
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
