"""Training a pack of trials and turning Keras histories into result rows.

The only module that calls ``fit``. A pack of trials becomes one Keras model with one
branch (the trial's own model) and one loss per trial on a shared input, so one ``fit``
trains them all; a pack of one is the plain case. A trial that fails or diverges gets a
row that says so instead of raising.
"""

from __future__ import annotations

import math
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from nnsweep import _optimizers, _stacked
from nnsweep import params as _params
from nnsweep._keras import custom_gradients, forget_custom_gradients, import_keras
from nnsweep.data import Dataset
from nnsweep.errors import TrialError
from nnsweep.models import build_model, make_optimizer
from nnsweep.sweep import Sweep, Trial

_EVAL_BATCH = 1024
# Steps run in one call into TensorFlow: each call costs Python and dispatch time that a
# small pack's step does not hide (8 made MNIST steps 12 % faster than 1; 16 no faster).
_STEPS_PER_CALL = 8
EpochHook = Callable[[Trial, int, dict[str, float]], None]


@dataclass
class TrialResult:
    """One trial's row for trials.csv and its per-epoch rows for history.csv."""

    row: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.row["status"]


@dataclass(frozen=True)
class TrainContext:
    """What every trial of a sweep shares: the sweep, its data loaded once, and settings."""

    sweep: Sweep
    dataset: Dataset
    verbose: bool = False
    debug: bool = False
    # XLA made packs no faster on CPU and costs seconds of compiling: off by default.
    jit_compile: bool | str = False
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    # Set by the runner on Ctrl-C: packs stop at the next batch and nothing half-done is kept.
    stop: threading.Event = field(default_factory=threading.Event, compare=False)

    @property
    def objective(self) -> tuple[str, str]:
        """(metric column, 'min' or 'max') that picks the best epoch and configuration."""
        default, default_dir = self.dataset.spec.default_objective
        name = self.sweep.objective or default
        direction = self.sweep.direction
        if direction is None:
            direction = default_dir if name == default else guess_direction(name)
        return name, direction

    @property
    def epoch_metrics(self) -> list[str]:
        m = self.dataset.spec.metric
        return ["loss", m, "val_loss", f"val_{m}"]

    def shuffle_seed(self, fold: int) -> int:
        """The batch order's seed: shared by every trial of a fold, so packing is exact."""
        return self.sweep.split_seed * 7919 + fold


def guess_direction(metric: str) -> str:
    """'max' for accuracy-like metrics, 'min' for losses and errors."""
    return "max" if any(k in metric for k in ("accuracy", "auc", "precision", "recall")) else "min"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def train_pack(
    trials: Sequence[Trial], ctx: TrainContext, on_epoch: EpochHook | None = None
) -> Iterator[TrialResult]:
    """Train trials that share data and settings (see ``packing``); one result each, in order.

    If the packed ``fit`` itself fails (say, out of memory), each trial is retried alone so
    one oversized trial cannot fail its pack-mates.
    """
    keras = import_keras(ctx.debug)
    if len(trials) > 1 and any(t.params.get("patience") is not None for t in trials):
        # Early stopping ends a whole fit, so such trials always train alone.
        for trial in trials:
            yield from train_pack([trial], ctx, on_epoch)
        return
    rows = {t.trial_id: _new_row(t, ctx, keras, len(trials)) for t in trials}
    gradients = custom_gradients()
    try:
        results = _fit_pack(keras, list(trials), rows, ctx, on_epoch)
    except Exception as exc:  # noqa: BLE001 - any error inside a fit belongs to its trials
        if len(trials) == 1:
            _fail(rows[trials[0].trial_id], _message(exc))
            results = {trials[0].trial_id: TrialResult(rows[trials[0].trial_id])}
        else:
            _release(keras, gradients)
            for trial in trials:
                yield from train_pack([trial], ctx, on_epoch)
            return
    finally:
        _release(keras, gradients)
    for trial in trials:
        result = results[trial.trial_id]
        result.row["finished_at"] = _now()
        yield result


def _new_row(trial: Trial, ctx: TrainContext, keras: Any, pack_size: int) -> dict[str, Any]:
    return {
        "trial_id": trial.trial_id,
        "config_id": trial.config_id,
        **{k: _params.format_value(v) for k, v in trial.params.items()},
        "seed": trial.seed,
        "fold": trial.fold,
        "status": "ok",
        "error": "",
        "epochs_run": 0,
        "started_at": _now(),
        "backend": keras.backend.backend(),
        "pack_size": pack_size,
        "worker": ctx.worker,
    }


def _fit_pack(
    keras: Any,
    trials: list[Trial],
    rows: dict[str, dict[str, Any]],
    ctx: TrainContext,
    on_epoch: EpochHook | None,
) -> dict[str, TrialResult]:
    sweep, spec = ctx.sweep, ctx.dataset.spec
    results: dict[str, TrialResult] = {}
    t0 = time.perf_counter()
    # Build each branch under its own seed, exactly as the trial would be built alone.
    branches: list[tuple[Trial, Any]] = []
    for trial in trials:
        keras.utils.set_random_seed(trial.seed)
        try:
            branches.append((trial, build_model(sweep.model, trial.params, spec)))
        except Exception as exc:  # noqa: BLE001 - a failing build fails only its own trial
            _fail(rows[trial.trial_id], _message(exc))
            rows[trial.trial_id]["fit_seconds"] = round(time.perf_counter() - t0, 3)
            results[trial.trial_id] = TrialResult(rows[trial.trial_id])
    if not branches:
        return results
    names = {trial.trial_id: f"t{i}" for i, (trial, _) in enumerate(branches)}
    for trial, model in branches:
        model.name = f"{names[trial.trial_id]}_{model.name}"  # names must be unique in a pack
    first = trials[0]
    split = ctx.dataset.split(sweep.validation_split, sweep.split_seed, sweep.cv, first.fold)
    # Each seed has its own batch order (a seeded permutation of the fit rows), so seeds
    # differ in order as well as in weights; branches of one seed share their input.
    seeds = sorted({t.seed for t, _ in branches})
    orders = np.stack(
        [split.fit_idx[batch_order(s, first.fold, len(split.fit_idx))] for s in seeds], 1
    )
    column = {s: i for i, s in enumerate(seeds)}
    # One table holds the training rows and then the test rows, gathered by index.
    n_train = len(ctx.dataset.x_train)
    table_np, y_all = ctx.dataset.table()
    table = keras.Variable(table_np, trainable=False, name="data")
    stacks = _stacked.group(sweep.model, [t for t, _ in branches])
    if stacks is not None:
        packed, members = _stacked.build(keras, branches, names, stacks, column, table, spec)
        losses = {g: _stacked.loss_fn(keras, spec.task) for g in members}
        metrics = None

        def targets(cols_rows: np.ndarray) -> dict[str, np.ndarray]:
            by_name = {names[t.trial_id]: cols_rows[:, column[t.seed]] for t, _ in branches}
            return {g: np.stack([y_all[by_name[n]] for n in ns], 1) for g, ns in members.items()}
    else:
        rows_in = keras.Input(shape=(len(seeds),), dtype="int32", name="rows")
        views = _RowGather(keras, table, len(seeds))(rows_in)
        outputs = {names[t.trial_id]: mdl(views[column[t.seed]]) for t, mdl in branches}
        packed = keras.Model(rows_in, outputs, name="pack")
        losses = {n: spec.loss for n in outputs}
        metrics = {n: [spec.metric, _data_loss(keras, spec.task)] for n in outputs}

        # One-unit outputs get (n, 1) targets: Keras's cross-entropy metric will not squeeze.
        y_cols = y_all if spec.task == "multiclass" else y_all[:, None]

        def targets(cols_rows: np.ndarray) -> dict[str, np.ndarray]:
            return {names[t.trial_id]: y_cols[cols_rows[:, column[t.seed]]] for t, _ in branches}

    packed.compile(
        optimizer=_optimizers.fused(keras, make_optimizer(first.params)),
        loss=losses,
        metrics=metrics,
        jit_compile=ctx.jit_compile,
        steps_per_execution=_STEPS_PER_CALL,
    )
    p = _params.resolve(first.params, None)
    objective, direction = ctx.objective
    watch = _Watch(keras, [(t, names[t.trial_id]) for t, _ in branches], on_epoch, ctx.stop)
    callbacks = [watch]
    if p["patience"] is not None:  # packs of one only (see packing.pack_key)
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=objective,
                mode=direction,
                patience=p["patience"],
                restore_best_weights=True,
            )
        )
    val_rows = np.repeat(split.val_idx[:, None], len(seeds), axis=1)
    # Weights are drawn; the epochs' reshuffling is seeded by the fold alone, so a trial
    # sees the same batches whether it trains alone or in a pack.
    keras.utils.set_random_seed(ctx.shuffle_seed(first.fold))
    val_batch = max(_EVAL_BATCH, p["batch_size"])
    history = packed.fit(
        **_feed(keras, orders, targets(orders), p["batch_size"], ctx.shuffle_seed(first.fold)),
        validation_data=_feed(keras, val_rows, targets(val_rows), val_batch, as_pair=True),
        validation_batch_size=val_batch,
        epochs=p["epochs"],
        verbose=2 if ctx.verbose else 0,
        callbacks=callbacks,
    ).history
    if ctx.stop.is_set():
        raise KeyboardInterrupt  # a stopped pack is unfinished: none of its trials is kept
    fit_seconds = time.perf_counter() - t0
    live = [(t, mdl) for t, mdl in branches if t.trial_id not in watch.diverged]
    scores: dict[str, float] = {}
    if live and ctx.dataset.x_test is not None:
        test_rows = np.repeat(np.arange(n_train, len(table_np))[:, None], len(seeds), 1)
        scores = packed.evaluate(
            **_feed(keras, test_rows, targets(test_rows), _EVAL_BATCH), verbose=0, return_dict=True
        )
    total_params = sum(mdl.count_params() for _, mdl in branches) or 1
    for trial, mdl in branches:
        row, name = rows[trial.trial_id], names[trial.trial_id]
        row["n_params"] = mdl.count_params()
        row["pack_size"] = len(branches)
        # The pack's time is shared in proportion to each branch's size.
        row["fit_seconds"] = round(fit_seconds * row["n_params"] / total_params, 3)
        epochs = _history_rows(trial, history, name, ctx.epoch_metrics)
        row["epochs_run"] = len(epochs)
        row.update(_summarize(epochs, ctx.epoch_metrics, objective, direction))
        if trial.trial_id in watch.diverged:
            epoch, loss = watch.diverged[trial.trial_id]
            row["status"] = "diverged"
            row["error"] = f"loss became {loss} in epoch {epoch}"
            epochs = epochs[:epoch]
            row["epochs_run"] = epoch
            row.update(_summarize(epochs, ctx.epoch_metrics, objective, direction))
        elif scores:
            test = _branch_logs(scores, name)
            m = spec.metric
            row["test_loss"], row[f"test_{m}"] = test["loss"], test[m]
        results[trial.trial_id] = TrialResult(row, epochs)
    return results


def _feed(
    keras: Any,
    x: np.ndarray,
    y: Any,
    batch_size: int,
    shuffle_seed: int | None = None,
    as_pair: bool = False,
) -> Any:
    """``fit``/``evaluate`` input: on TensorFlow a ``tf.data`` pipeline of our own, else arrays.

    Keras's array adapter autotunes background threads that, on 2 cores, competed with
    training: MNIST packs ran 8.1-12.8 s with it and 8.2-8.9 s without. The shuffle
    permutes rows alike whatever they hold, so a trial's batches are the same alone or
    in a pack. ``as_pair`` gives validation data (a dataset, or an ``(x, y)`` pair).
    """
    x = x.astype("int32")  # the pack's rows input
    if keras.backend.backend() != "tensorflow":
        if as_pair:
            return (x, y)
        feed = {"x": x, "y": y, "batch_size": batch_size}
        return feed if shuffle_seed is None else {**feed, "shuffle": True}
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        data = data.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.deterministic = True
    data = data.batch(batch_size).prefetch(2).with_options(options)
    if as_pair:
        return data
    # fit's own shuffle stays off (it would warn): the dataset shuffles itself.
    return {"x": data} if shuffle_seed is None else {"x": data, "shuffle": False}


def batch_order(seed: int, fold: int, n: int) -> np.ndarray:
    """A trial's own permutation of its fit rows, from its seed and fold alone."""
    return np.random.RandomState((seed * 7919 + fold) % 2**32).permutation(n)


def _RowGather(keras: Any, table: Any, views: int) -> Any:
    """A layer reading the data table once, returning one batch per seed's rows."""

    class RowGather(keras.layers.Layer):
        def __init__(self) -> None:
            super().__init__(name="row_gather")
            self.table = table

        def call(self, rows: Any) -> list[Any]:
            return [keras.ops.take(self.table, rows[:, i], axis=0) for i in range(views)]

        def compute_output_spec(self, rows: Any) -> list[Any]:
            shape = (rows.shape[0], *table.shape[1:])
            return [keras.KerasTensor(shape, dtype="float32") for _ in range(views)]

    return RowGather()


def _data_loss(keras: Any, task: str) -> Any:
    """The task's loss as a metric: sample-weighted, and without regularization penalties.

    Keras's own per-output losses in a multi-output model weigh a short last batch like
    a full one, and its total loss adds l1/l2 penalties; this metric is computed the same
    way for a pack of one and a pack of many, so packing cannot change the table.
    """
    cls = {
        "multiclass": keras.metrics.SparseCategoricalCrossentropy,
        "binary": keras.metrics.BinaryCrossentropy,
        "regression": keras.metrics.MeanSquaredError,
    }[task]
    return cls(name="data_loss")


class _Watch:
    """Stops a pack once every branch has diverged; reports each branch's epochs."""

    def __new__(
        cls,
        keras: Any,
        named: list[tuple[Trial, str]],
        on_epoch: EpochHook | None,
        stop: threading.Event,
    ):
        class Watch(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.diverged: dict[str, tuple[int, float]] = {}

            def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
                if stop.is_set():
                    self.model.stop_training = True

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                logs = logs or {}
                for trial, name in named:
                    loss = _branch_logs(logs, name).get("loss")
                    if (
                        trial.trial_id not in self.diverged
                        and loss is not None
                        and not math.isfinite(loss)
                    ):
                        self.diverged[trial.trial_id] = (epoch + 1, loss)
                    if on_epoch is not None:
                        on_epoch(trial, epoch + 1, _branch_logs(logs, name))
                if len(self.diverged) == len(named):
                    self.model.stop_training = True

        return Watch()


def _branch_logs(logs: dict[str, float], name: str) -> dict[str, float]:
    """One branch's metrics out of the pack's logs, under the plain Keras names.

    ``loss`` is the data loss (see ``_data_loss``), not Keras's total.
    """
    single = f"{name}_data_loss" not in logs  # Keras does not prefix a single output
    out = {}
    for key, value in logs.items():
        for prefix in ("val_", ""):
            head = prefix if single else f"{prefix}{name}_"
            if key.startswith(head) and (prefix or not key.startswith("val_")):
                metric = key[len(head) :]
                if metric == "loss":
                    continue
                out[prefix + ("loss" if metric == "data_loss" else metric)] = float(value)
    return out


def _history_rows(
    trial: Trial, history: dict[str, list], name: str, metrics: list[str]
) -> list[dict[str, Any]]:
    n = len(history.get("loss", []))
    rows = []
    for i in range(n):
        epoch_logs = _branch_logs({k: v[i] for k, v in history.items()}, name)
        rows.append(
            {
                "trial_id": trial.trial_id,
                "config_id": trial.config_id,
                "seed": trial.seed,
                "fold": trial.fold,
                "epoch": i + 1,
                **{k: epoch_logs[k] for k in metrics if k in epoch_logs},
            }
        )
    return rows


def _summarize(rows: list[dict], metrics: list[str], objective: str, direction: str) -> dict:
    """Final-epoch metrics plus the best objective value and the epoch it was reached."""
    if not rows:
        return {}
    out = {m: rows[-1].get(m) for m in metrics}
    scored = [(r[objective], r["epoch"]) for r in rows if math.isfinite(r.get(objective, math.nan))]
    if scored:
        pick = max if direction == "max" else min
        value, epoch = pick(scored, key=lambda s: s[0])
        out[f"best_{objective}"] = value
        out["best_epoch"] = epoch
    return out


def _message(exc: BaseException) -> str:
    if isinstance(exc, TrialError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _fail(row: dict[str, Any], message: str) -> None:
    """Mark a row failed with the error's first informative line (a CSV cell, not a log)."""
    row["status"] = "failed"
    lines = [ln.strip() for ln in _ANSI.sub("", message).splitlines() if ln.strip()]
    # Keras wraps layer errors in "Exception encountered when calling X.call()."
    if len(lines) > 1 and "Exception encountered when calling" in lines[0]:
        head = lines[0].split(":", 1)[0] if ":" in lines[0] else ""
        lines = [f"{head}: {lines[1]}" if head else lines[1]]
    row["error"] = (lines[0] if lines else "unknown error")[:500]


def _release(keras: Any, gradients: frozenset[str]) -> None:
    # Free the graphs and weights of this pack before the next one is built; TensorFlow's
    # gradient registry would otherwise keep every pack's train step (see _keras). The
    # registry lets go first, so that clear_session's one garbage collection frees it all.
    forget_custom_gradients(keep=gradients)
    keras.backend.clear_session()
