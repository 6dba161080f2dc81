"""Training a pack of trials and turning what they learned into result rows.

The only module that trains. On TensorFlow a pack trains as one program (``_engine``):
built-in MLPs as stacks, other models as branches, each trial with its own settings. On
other Keras backends each trial trains alone through Keras's own ``fit`` (``_keras_fit``);
``packing`` plans packs of one there. A trial that fails or diverges gets a row that says
so instead of raising; a pack whose training fails as a whole is retrained one trial at a
time, and says so through ``on_fallback``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nnsweep._keras import custom_gradients, forget_custom_gradients, import_keras
from nnsweep.definition import params as _params
from nnsweep.definition.pruning import PackJudge, RungBook, rungs_text
from nnsweep.definition.sweep import Trial
from nnsweep.errors import TrialError
from nnsweep.training.context import (  # noqa: F401 - the names training is known by
    EarlyStop,
    EpochHook,
    FallbackHook,
    Ledger,
    Outcome,
    TrainContext,
)


@dataclass
class TrialResult:
    """One trial's row for trials.csv and its per-epoch rows for history.csv."""

    row: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    weights: list[Any] | None = None  # its model's weights, when the run keeps models

    @property
    def status(self) -> str:
        return self.row["status"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def train_pack(
    trials: Sequence[Trial],
    ctx: TrainContext,
    on_epoch: EpochHook | None = None,
    on_fallback: FallbackHook | None = None,
    rungs: RungBook | None = None,
) -> Iterator[TrialResult]:
    """Train a pack (see ``packing``); one result per trial, in order.

    If the pack's training fails as a whole (say, out of memory), ``on_fallback`` hears
    why and each trial is retried alone, so one bad trial cannot fail its pack-mates.
    ``rungs``: pruning's committed evidence; each training of a pack judges afresh from it.
    """
    keras = import_keras(ctx.debug)
    rows = {t.trial_id: _new_row(t, ctx, keras, len(trials)) for t in trials}
    gradients = custom_gradients()
    judge = rungs.pack() if rungs is not None else None
    try:
        results = _fit(keras, list(trials), rows, ctx, on_epoch, judge)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - any error inside a fit belongs to its trials
        if len(trials) == 1:
            _fail(rows[trials[0].trial_id], _message(exc))
            results = {trials[0].trial_id: TrialResult(rows[trials[0].trial_id])}
        else:
            _release(keras, gradients)
            if on_fallback is not None:
                on_fallback(trials, exc)
            for trial in trials:
                yield from train_pack([trial], ctx, on_epoch, on_fallback, rungs)
            return
    finally:
        _release(keras, gradients)
    for trial in trials:
        result = results[trial.trial_id]
        result.row["finished_at"] = _now()
        yield result


def failed_row(trial: Trial, ctx: TrainContext, message: str, pack_size: int) -> dict[str, Any]:
    """A failed trial's row where it could not train at all (its Ray task raised outside
    the trials)."""
    from nnsweep._keras import backend_name

    row = _new_row(trial, ctx, None, pack_size, backend_name())
    _fail(row, message)
    row["finished_at"] = _now()
    return row


def _new_row(
    trial: Trial, ctx: TrainContext, keras: Any, pack_size: int, backend: str | None = None
) -> dict[str, Any]:
    return {
        "trial_id": trial.trial_id,
        "config_id": trial.config_id,
        **{k: _params.format_value(v) for k, v in trial.params.items()},
        "seed": trial.seed,
        "fold": trial.fold,
        "phase": ctx.phase,
        "status": "ok",
        "error": "",
        "epochs_run": 0,
        "started_at": _now(),
        "backend": backend or keras.backend.backend(),
        "pack_size": pack_size,
        "worker": ctx.worker,
    }


def _fit(
    keras: Any,
    trials: list[Trial],
    rows: dict[str, dict[str, Any]],
    ctx: TrainContext,
    on_epoch: EpochHook | None,
    judge: PackJudge | None,
) -> dict[str, TrialResult]:
    t0 = time.perf_counter()
    results: dict[str, TrialResult] = {}
    if keras.backend.backend() != "tensorflow":
        from nnsweep.training._keras_fit import fit_alone

        (trial,) = trials  # packing plans packs of one off TensorFlow
        outcomes = {trial.trial_id: fit_alone(keras, trial, ctx, on_epoch, judge)}
        live = trials
    else:
        live, outcomes = _fit_pack(keras, trials, rows, ctx, on_epoch, judge, results, t0)
    seconds = time.perf_counter() - t0
    total = sum(o.n_params for o in outcomes.values()) or 1
    for trial in live:
        o, row = outcomes[trial.trial_id], rows[trial.trial_id]
        row["n_params"] = o.n_params
        row["pack_size"] = len(live)
        # The pack's time is shared in proportion to each trial's size.
        row["fit_seconds"] = round(seconds * o.n_params / total, 3)
        results[trial.trial_id] = TrialResult(row, _row_of(trial, o, row, ctx), o.weights)
    return results


def _fit_pack(keras, trials, rows, ctx, on_epoch, judge, results, t0):
    """Build the branches (a failing build fails its own trial), then train the pack."""
    from nnsweep.training import _engine
    from nnsweep.training._units import plan_units
    from nnsweep.training.models import build_model

    sweep, spec = ctx.sweep, ctx.dataset.spec
    inputs = math.prod(spec.input_shape)
    _, branch_idx = plan_units(sweep.model, trials, inputs)
    models: dict[str, Any] = {}
    for i in branch_idx:
        trial = trials[i]
        keras.utils.set_random_seed(trial.seed)  # built exactly as it would be alone
        try:
            models[trial.trial_id] = build_model(sweep.model, trial.params, spec)
        except Exception as exc:  # noqa: BLE001 - a failing build fails only its own trial
            _fail(rows[trial.trial_id], _message(exc))
            rows[trial.trial_id]["fit_seconds"] = round(time.perf_counter() - t0, 3)
            results[trial.trial_id] = TrialResult(rows[trial.trial_id])
    live = [t for t in trials if t.trial_id not in results]
    if not live:
        return [], {}
    stacks, branch_idx = plan_units(sweep.model, live, inputs)
    branches = {i: models[live[i].trial_id] for i in branch_idx}
    outcomes = _engine.train(live, ctx, stacks, branches, on_epoch, judge)
    if ctx.stop.is_set():
        raise KeyboardInterrupt  # a stopped pack is unfinished: none of its trials is kept
    return live, {t.trial_id: o for t, o in zip(live, outcomes, strict=True)}


def _row_of(trial: Trial, o: Outcome, row: dict[str, Any], ctx: TrainContext) -> list[dict]:
    """Fill ``row`` from a trial's outcome; return its history.csv rows."""
    objective, direction = ctx.objective
    epochs = [
        {
            "trial_id": trial.trial_id,
            "config_id": trial.config_id,
            "seed": trial.seed,
            "fold": trial.fold,
            "epoch": i + 1,
            **{k: logs[k] for k in ctx.history_keys if k in logs},
        }
        for i, logs in enumerate(o.history)
    ]
    if o.diverged is not None:
        epoch, loss = o.diverged
        epochs = epochs[:epoch]
        row["status"] = "diverged"
        row["error"] = f"loss became {loss} in epoch {epoch}"
    elif o.pruned is not None:
        row["status"] = "pruned"
        row["pruned_by"] = o.pruned
    if o.rungs:
        row["rungs"] = rungs_text(o.rungs)
    row["epochs_run"] = len(epochs)
    row.update(_summarize(epochs, ctx.epoch_metrics, objective, direction))
    if o.diverged is None and o.pruned is None and o.test:
        row.update({f"test_{k}": v for k, v in o.test.items()})
    return epochs


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
_ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception)\w*:")


def first_line(message: str) -> str:
    """A message's first informative line (TensorFlow and Keras wrap errors in preambles)."""
    lines = [ln.strip() for ln in _ANSI.sub("", message).splitlines() if ln.strip()]
    if lines and lines[0].endswith("in user code:"):
        # An error raised while TensorFlow traces comes after the user's stack.
        errors = [i for i, ln in enumerate(lines) if _ERROR_LINE.match(ln)]
        lines = lines[errors[-1] :] if errors else lines
    if lines and lines[0].endswith("Graph execution error:"):
        lines = [_graph_error(lines)]
    # Keras wraps layer errors in "Exception encountered when calling X.call()."
    if len(lines) > 1 and "Exception encountered when calling" in lines[0]:
        head = lines[0].split(":", 1)[0] if ":" in lines[0] else ""
        lines = [f"{head}: {lines[1]}" if head else lines[1]]
    return lines[0] if lines else "unknown error"


_FRAME = re.compile(r'^File "(?P<file>[^"]+)", line (?P<line>\d+)')


def _graph_error(lines: list[str]) -> str:
    """TensorFlow's runtime errors put the cause after the stack of the node that failed:
    keep it, with the last frame outside the installed libraries (the user's code)."""
    frames = [i for i, ln in enumerate(lines) if _FRAME.match(ln)]
    after = lines[frames[-1] + 1 :] if frames else lines[1:]
    cause = next((ln for ln in after if not ln.startswith("[[")), "")
    if not cause:
        return lines[0]
    where = ""
    for i in reversed(frames):
        match = _FRAME.match(lines[i])
        if match and "-packages" not in match["file"] and not match["file"].startswith("<"):
            where = f" (at {Path(match['file']).name}:{match['line']})"
            break
    return f"{lines[0]} {cause}{where}"


def _fail(row: dict[str, Any], message: str) -> None:
    """Mark a row failed with the error's first informative line (a CSV cell, not a log)."""
    row["status"] = "failed"
    row["error"] = first_line(message)[:500]


def _release(keras: Any, gradients: frozenset[str]) -> None:
    # Free the graphs and weights of this pack before the next one is built; TensorFlow's
    # gradient registry would otherwise keep every pack's train step (see _keras). The
    # registry lets go first, so that clear_session's one garbage collection frees it all.
    forget_custom_gradients(keep=gradients)
    keras.backend.clear_session()
