"""What does pruning save, and what does it cost? MNIST grids with and without, side by side.

Three MNIST grids (from the data directory), each run three times by ``nnsweep run`` as a
whole process, one after the other: with ``--prune`` (the defaults: rungs at epochs 1, 2,
4, 8, alpha 0.05), with ``--no-prune``, and with ``Prune(keep=0.5)`` (successive halving
on top of the noise rule).

  batch-lr     batch size {64, 128, 256} x learning rate {1e-4, 1e-3, 1e-2}, Adam,
               128 units, 10 epochs, 3 seeds (sweeps/batch_lr.py at 10 epochs)
  hidden-units one hidden layer of 8..512 units, RMSprop, batch 128, 10 epochs, 3 seeds
  opt-lr       optimizer {sgd, rmsprop, adam} x learning rate {1e-4, 1e-3, 1e-2},
               128 units, batch 128, 10 epochs, 3 seeds

For each: wall seconds of the whole process (Python's start, imports, data, training),
trial-epochs trained, and the configuration each run chooses (best mean validation
accuracy over the configurations it trained to the end), with whether the pruned run's
choice is the unpruned run's, or within its seed noise there (Welch's test on the
unpruned run's rows, p >= 0.05).

Then hyperband: nnsweep's (brackets as packs that prune inside) against Keras Tuner's
``Hyperband`` (factor 3, the same largest budget, one iteration, one seed, the same
space), each in a fresh process: wall seconds and the best validation accuracy found.

    NNSWEEP_DATA_DIR=../shared/datasets python benchmarks/prune_speed.py [--cases ...] [--quick]

``--quick``: 3 epochs, two values a hyperparameter, a smoke run of the script.
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

CASES = {
    "batch-lr": {
        "hidden_units": 128,
        "optimizer": "adam",
        "batch_size": [64, 128, 256],
        "learning_rate": [1e-4, 1e-3, 1e-2],
    },
    "hidden-units": {
        "hidden_units": [8, 16, 32, 64, 128, 256, 512],
        "optimizer": "rmsprop",
        "learning_rate": 1e-3,
        "batch_size": 128,
    },
    "opt-lr": {
        "hidden_units": 128,
        "optimizer": ["sgd", "rmsprop", "adam"],
        "learning_rate": [1e-4, 1e-3, 1e-2],
        "batch_size": 128,
    },
}
EPOCHS, SEEDS = 10, 3
HB_EPOCHS = 9  # Keras Tuner's brackets for 9 epochs: 9, 5 and 3 configurations
HB_SPACE = {"units": (32, 512, 32), "lr": (1e-4, 1e-2)}

SWEEP_FILE = """
from nnsweep import Prune, Sweep

sweep = Sweep(name="bench", data="mnist", model="mlp", space={space}, seeds={seeds}{extra})
"""

HB_FILE = """
from nnsweep import Float, Int, Sweep

sweep = Sweep(
    name="hb",
    data="mnist",
    model="mlp",
    space={{
        "hidden_units": Int({u0}, {u1}, step={us}),
        "learning_rate": Float({l0}, {l1}, log=True),
        "optimizer": "adam",
        "batch_size": 128,
        "epochs": {epochs},
    }},
    strategy="hyperband",
    max_trials={trials},
)
"""


def _nnsweep(folder: Path, sweep_text: str, *flags: str) -> tuple[float, list[dict]]:
    """Run ``nnsweep run`` as a whole process; its seconds and its rows."""
    import csv

    sweep_file = folder / "sweep.py"
    sweep_file.write_text(sweep_text)
    results = folder / "results"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "nnsweep", "run", str(sweep_file), "--results", str(results),
         *flags],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"nnsweep {' '.join(flags)} failed:\n{proc.stderr[-3000:]}")
    (name,) = [p for p in results.iterdir() if p.is_dir()]
    with open(name / "trials.csv") as f:
        return seconds, list(csv.DictReader(f))


def _chosen(rows: list[dict], swept: list[str]) -> tuple[str, dict[str, list[float]]]:
    """The best configuration by mean val_accuracy over those trained to the end, and every
    such configuration's values."""
    pruned = {r["config_id"] for r in rows if r["status"] == "pruned"}
    values: dict[str, list[float]] = {}
    for r in rows:
        if r["status"] == "ok" and r["config_id"] not in pruned:
            values.setdefault(r["config_id"], []).append(float(r["val_accuracy"]))
    best = max(values, key=lambda c: sum(values[c]) / len(values[c]))
    return best, values


def _label(rows: list[dict], cid: str, swept: list[str]) -> str:
    row = next(r for r in rows if r["config_id"] == cid)
    return " ".join(f"{k}={row[k]}" for k in swept)


def _welch_p(a: list[float], b: list[float]) -> float:
    from scipy import stats

    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def grid_case(name: str, space: dict, epochs: int, seeds: int) -> dict:
    swept = [k for k, v in space.items() if isinstance(v, list)]
    text = SWEEP_FILE.format(space=repr({**space, "epochs": epochs}), seeds=seeds, extra="")
    halving = SWEEP_FILE.format(
        space=repr({**space, "epochs": epochs}), seeds=seeds, extra=", prune=Prune(keep=0.5)"
    )
    out = {}
    for mode, sweep_text, flags in (
        ("--prune", text, ["--prune"]),
        ("--no-prune", text, ["--no-prune"]),
        ("keep=0.5", halving, []),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            out[mode] = _nnsweep(Path(tmp), sweep_text, *flags)
    (t_p, rows_p), (t_f, rows_f) = out["--prune"], out["--no-prune"]
    epochs_p = sum(int(r["epochs_run"]) for r in rows_p)
    epochs_f = sum(int(r["epochs_run"]) for r in rows_f)
    pruned = len({r["config_id"] for r in rows_p if r["status"] == "pruned"})
    configs = len({r["config_id"] for r in rows_f})
    choice_p, _ = _chosen(rows_p, swept)
    choice_f, values_f = _chosen(rows_f, swept)
    same = choice_p == choice_f
    p = 1.0 if same else _welch_p(values_f[choice_f], values_f[choice_p])
    verdict = "the same" if same else ("within seed noise" if p >= 0.05 else "WORSE")
    print(f"\n{name}: {configs} configurations x {seeds} seeds, {epochs} epochs")
    print(f"  --prune     {t_p:7.1f} s  {epochs_p:5d} trial-epochs  "
          f"({pruned} of {configs} configurations pruned)")  # fmt: skip
    print(f"  --no-prune  {t_f:7.1f} s  {epochs_f:5d} trial-epochs")
    print(f"  pruning is {t_f / t_p:.2f}x faster (whole processes), "
          f"{epochs_f / epochs_p:.2f}x fewer trial-epochs")  # fmt: skip
    m = sum(values_f[choice_f]) / len(values_f[choice_f])
    print(f"  unpruned choice: {_label(rows_f, choice_f, swept)} (val_accuracy {m:.4f})")
    mp = sum(values_f[choice_p]) / len(values_f[choice_p])
    print(f"  pruned choice:   {_label(rows_p, choice_p, swept)} (unpruned val_accuracy "
          f"{mp:.4f}): {verdict}" + ("" if same else f" (Welch p={p:.2g})"))  # fmt: skip
    t_h, rows_h = out["keep=0.5"]
    choice_h, _ = _chosen(rows_h, swept)
    p_h = 1.0 if choice_h == choice_f else _welch_p(values_f[choice_f], values_f[choice_h])
    verdict_h = (
        "the same" if choice_h == choice_f else ("within seed noise" if p_h >= 0.05 else "WORSE")
    )
    epochs_h = sum(int(r["epochs_run"]) for r in rows_h)
    print(f"  Prune(keep=0.5) {t_h:7.1f} s  {epochs_h:5d} trial-epochs: {t_f / t_h:.2f}x faster, "
          f"choice {_label(rows_h, choice_h, swept)}: {verdict_h}")  # fmt: skip
    return {
        "speed": t_f / t_p,
        "epochs": epochs_f / epochs_p,
        "choice": verdict,
        "halving": t_f / t_h,
        "halving_choice": verdict_h,
    }


def hyperband_case(epochs: int) -> dict:
    from nnsweep.strategies.hyperband import bracket_plan

    trials = sum(n for n, _, _ in bracket_plan(epochs))
    u0, u1, us = HB_SPACE["units"]
    l0, l1 = HB_SPACE["lr"]
    text = HB_FILE.format(u0=u0, u1=u1, us=us, l0=l0, l1=l1, epochs=epochs, trials=trials)
    with tempfile.TemporaryDirectory() as tmp:
        t_nn, rows = _nnsweep(Path(tmp), text)
    best_nn = max(float(r["best_val_accuracy"]) for r in rows if r["status"] == "ok")
    total = sum(int(r["epochs_run"]) for r in rows)
    cfg = {"epochs": epochs, "units": HB_SPACE["units"], "lr": HB_SPACE["lr"]}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child-kt", json.dumps(cfg)],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    t_kt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"Keras Tuner failed:\n{proc.stderr[-3000:]}")
    kt = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nhyperband: largest budget {epochs} epochs, factor 3, {trials} configurations, 1 seed")
    print(f"  nnsweep      {t_nn:7.1f} s  best val_accuracy {best_nn:.4f}  "
          f"({total} trial-epochs, {len(rows)} trials)")  # fmt: skip
    print(f"  keras-tuner  {t_kt:7.1f} s  best val_accuracy {kt['best']:.4f}  "
          f"({kt['epochs']} trial-epochs, {kt['trials']} tuner trials)")  # fmt: skip
    print(f"  nnsweep is {t_kt / t_nn:.2f}x faster; best found {best_nn - kt['best']:+.4f}")
    return {"speed": t_kt / t_nn, "best": best_nn - kt["best"]}


def run_kt(cfg: dict) -> dict:
    """Keras Tuner's Hyperband on the same MNIST MLP space (its own training loop)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from nnsweep._keras import import_keras

    keras = import_keras()
    import keras_tuner as kt

    from nnsweep.data import load_dataset

    ds = load_dataset("mnist")
    x, y = ds.x_train, ds.y_train
    u0, u1, us = cfg["units"]
    l0, l1 = cfg["lr"]
    epochs_done = []

    class Count(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epochs_done.append(1)

    def build(hp):
        model = keras.Sequential([
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(hp.Int("units", u0, u1, step=us), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])  # fmt: skip
        opt = keras.optimizers.Adam(hp.Float("lr", l0, l1, sampling="log"))
        model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    with tempfile.TemporaryDirectory() as tmp:
        tuner = kt.Hyperband(
            build, objective="val_accuracy", max_epochs=cfg["epochs"], factor=3,
            hyperband_iterations=1, directory=tmp, project_name="hb", overwrite=True, seed=1,
        )  # fmt: skip
        tuner.search(x, y, validation_split=0.2, batch_size=128, verbose=0, callbacks=[Count()])
        best = tuner.oracle.get_best_trials(1)[0].score
        trials = len(tuner.oracle.trials)
    return {"best": float(best), "epochs": len(epochs_done), "trials": trials}


def matmul_rate() -> float:
    """float32 matmul GFLOP/s through TensorFlow, in a fresh process."""
    code = (
        "import os, time; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'\n"
        "import tensorflow as tf\n"
        "a = tf.random.normal((2048, 2048)); b = tf.random.normal((2048, 2048))\n"
        "tf.linalg.matmul(a, b).numpy(); best = 1e9\n"
        "for _ in range(5):\n"
        "    t = time.perf_counter(); tf.linalg.matmul(a, b).numpy()\n"
        "    best = min(best, time.perf_counter() - t)\n"
        "print(2 * 2048**3 / best / 1e9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", choices=[*CASES, "hyperband"], help="default: all")
    parser.add_argument("--quick", action="store_true", help="3 epochs, fewer values")
    parser.add_argument("--child-kt", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_kt:
        print(json.dumps(run_kt(json.loads(args.child_kt))))
        return
    print(f"{time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores; "
          f"float32 matmul {matmul_rate():.0f} GFLOP/s")  # fmt: skip
    epochs = 3 if args.quick else EPOCHS
    summary = {}
    for name in args.cases or [*CASES, "hyperband"]:
        if name == "hyperband":
            summary[name] = hyperband_case(3 if args.quick else HB_EPOCHS)
            continue
        space = CASES[name]
        if args.quick:
            space = {k: v[:2] if isinstance(v, list) else v for k, v in space.items()}
        summary[name] = grid_case(name, space, epochs, 2 if args.quick else SEEDS)
    print("\nsummary:")
    for name, r in summary.items():
        words = [f"{r['speed']:.2f}x faster"]
        if "epochs" in r:
            words += [f"{r['epochs']:.2f}x fewer trial-epochs", f"choice {r['choice']}"]
            words += [f"keep=0.5 {r['halving']:.2f}x faster, choice {r['halving_choice']}"]
        else:
            words.append(f"best val_accuracy {r['best']:+.4f} vs Keras Tuner")
        print(f"  {name:<13} " + ", ".join(words))


if __name__ == "__main__":
    main()
