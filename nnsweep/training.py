"""Training a pack of trials and turning Keras histories into result rows.

The only module that calls ``fit``. ``train_pack`` takes several trials and returns one
result each; a trial that fails or diverges gets a row that says so instead of raising.
"""

from __future__ import annotations

import gc
import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from nnsweep import params as _params
from nnsweep._keras import import_keras
from nnsweep.data import Dataset
from nnsweep.errors import TrialError
from nnsweep.models import build_model, compile_for_task
from nnsweep.sweep import Sweep, Trial

_EVAL_BATCH = 1024


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
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

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


def guess_direction(metric: str) -> str:
    """'max' for accuracy-like metrics, 'min' for losses and errors."""
    return "max" if any(k in metric for k in ("accuracy", "auc", "precision", "recall")) else "min"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def train_pack(
    trials: Sequence[Trial],
    ctx: TrainContext,
    on_epoch: Callable[[Trial, int, dict[str, float]], None] | None = None,
) -> Iterator[TrialResult]:
    """Train trials that share data and settings; yield one result per trial, in order.

    Trials are trained one after another here, each result yielded as soon as it exists;
    a packed implementation keeps this signature so the runner and table do not change.
    """
    for trial in trials:
        yield _train_one(trial, ctx, 1, on_epoch)


class _Watch:
    """Keras callback: stop a trial whose loss is no longer finite, and report epochs."""

    def __init__(self, keras: Any, trial: Trial, on_epoch: Callable | None) -> None:
        outer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                logs = logs or {}
                loss = logs.get("loss")
                if loss is not None and not math.isfinite(loss):
                    outer.diverged_epoch = epoch + 1
                    self.model.stop_training = True
                if on_epoch is not None:
                    on_epoch(trial, epoch + 1, dict(logs))

        self.diverged_epoch: int | None = None
        self.callback = Callback()


def _train_one(
    trial: Trial, ctx: TrainContext, pack_size: int, on_epoch: Callable | None
) -> TrialResult:
    keras = import_keras(ctx.debug)
    sweep, spec = ctx.sweep, ctx.dataset.spec
    p = _params.resolve(trial.params, None)
    objective, direction = ctx.objective
    row: dict[str, Any] = {
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
    history_rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        split = ctx.dataset.split(sweep.validation_split, sweep.split_seed, sweep.cv, trial.fold)
        keras.utils.set_random_seed(trial.seed)
        model = build_model(sweep.model, trial.params, spec)
        compile_for_task(model, trial.params, spec)
        row["n_params"] = model.count_params()
        watch = _Watch(keras, trial, on_epoch)
        callbacks = [watch.callback]
        if p["patience"] is not None:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=objective,
                    mode=direction,
                    patience=p["patience"],
                    restore_best_weights=True,
                )
            )
        history = model.fit(
            split.x_fit,
            split.y_fit,
            validation_data=(split.x_val, split.y_val),
            batch_size=p["batch_size"],
            epochs=p["epochs"],
            verbose=2 if ctx.verbose else 0,
            callbacks=callbacks,
        ).history
        row["fit_seconds"] = round(time.perf_counter() - t0, 3)
        history_rows = _history_rows(trial, history, ctx.epoch_metrics)
        row["epochs_run"] = len(history_rows)
        row.update(_summarize(history_rows, ctx.epoch_metrics, objective, direction))
        if watch.diverged_epoch is not None:
            row["status"] = "diverged"
            row["error"] = f"loss became {history['loss'][-1]} in epoch {watch.diverged_epoch}"
        elif ctx.dataset.x_test is not None:
            scores = model.evaluate(
                ctx.dataset.x_test, ctx.dataset.y_test, batch_size=_EVAL_BATCH, verbose=0
            )
            row["test_loss"], row[f"test_{spec.metric}"] = (float(s) for s in scores[:2])
    except TrialError as exc:
        _fail(row, str(exc))
    except Exception as exc:  # noqa: BLE001 - any error inside one trial is that trial's
        _fail(row, f"{type(exc).__name__}: {exc}")
    finally:
        row.setdefault("fit_seconds", round(time.perf_counter() - t0, 3))
        row["finished_at"] = _now()
        # Free the graph and weights of this trial before the next one is built.
        keras.backend.clear_session()
        gc.collect()
    return TrialResult(row, history_rows)


def _fail(row: dict[str, Any], message: str) -> None:
    row["status"] = "failed"
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    row["error"] = first[:500]


def _history_rows(trial: Trial, history: dict[str, list], metrics: list[str]) -> list[dict]:
    n = len(history.get("loss", []))
    return [
        {
            "trial_id": trial.trial_id,
            "config_id": trial.config_id,
            "seed": trial.seed,
            "fold": trial.fold,
            "epoch": i + 1,
            **{m: float(history[m][i]) for m in metrics if m in history},
        }
        for i in range(n)
    ]


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
