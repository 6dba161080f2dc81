"""Setting up a run: everything checked before the results folder is opened.

Loading and checking the data, checking the objective, the sweep's record for sweep.json,
the tables' columns, and Ctrl-C's two-step behaviour: everything that must hold before the
results folder is opened, so bad input raises before anything is written.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnsweep.definition.metrics import check_metrics_task
from nnsweep.definition.params import check_space_task
from nnsweep.definition.sweep import Sweep, located
from nnsweep.errors import SweepDefinitionError
from nnsweep.store.results import ResultsStore, history_columns, trial_columns
from nnsweep.strategies.tuner import param_names

if TYPE_CHECKING:
    from nnsweep.data import Dataset
    from nnsweep.training.train import TrainContext

_VERSIONED = ("nnsweep", "keras", "tensorflow", "keras-tuner", "numpy", "pandas")


def load_data(sweep: Sweep, data_dir: str | Path | None) -> Dataset:
    """The sweep's dataset, checked against its model and its splits."""
    from nnsweep.data import load_dataset
    from nnsweep.training.models import check_compatible

    dataset = load_dataset(
        sweep.data, data_dir=data_dir, options=sweep.data_options, target=sweep.target
    )
    check_compatible(sweep.model, dataset.spec)
    try:
        check_space_task(sweep.space, dataset.spec.task, dataset.spec.n_classes)
        check_metrics_task(sweep.metrics, dataset.spec.task)
    except SweepDefinitionError as exc:
        raise located(sweep, exc) from None
    dataset.check_splits(sweep.validation_split, sweep.split_seed, sweep.cv)
    return dataset


@dataclass
class Prepared:
    """A run ready to open its results folder: the data, the context, what to write."""

    store: ResultsStore
    dataset: Dataset
    ctx: TrainContext
    objective: str
    direction: str
    record: dict[str, Any]  # sweep.json
    columns: list[str]  # trials.csv
    history_columns: list[str]  # history.csv


def prepare(
    sweep: Sweep,
    *,
    results: str | Path,
    data_dir: str | Path | None,
    **context: Any,
) -> Prepared:
    """Check everything a run needs, in order, before its results folder is touched.

    ``context``: settings of the ``TrainContext`` (verbose, debug, phase).
    """
    from nnsweep._keras import import_keras
    from nnsweep.training.train import TrainContext

    import_keras(bool(context.get("debug")))  # a backend that cannot load says so first
    store = ResultsStore(results, sweep.name)
    store.check_writable()
    dataset = load_data(sweep, data_dir)
    ctx = TrainContext(sweep, dataset, **context)
    try:
        objective, direction = checked_objective(ctx)
    except SweepDefinitionError as exc:
        raise located(sweep, exc) from None
    spec = dataset.spec
    return Prepared(
        store,
        dataset,
        ctx,
        objective,
        direction,
        sweep_record(sweep, spec, objective, direction, dataset.digest()),
        trial_columns(param_names(sweep), spec.metric, objective, sweep.metrics),
        history_columns(spec.metric, ctx.records_learning_rate, sweep.metrics),
    )


def checked_objective(ctx: Any) -> tuple[str, str]:
    """The sweep's objective and direction, refused unless training logs that metric."""
    objective, direction = ctx.objective
    if objective not in ctx.epoch_metrics:
        raise SweepDefinitionError(
            "objective", f"must be one of {', '.join(ctx.epoch_metrics)}", objective
        )
    return objective, direction


def versions() -> dict[str, str]:
    """What a run's numbers depend on besides the sweep: the libraries' versions, Python's,
    nnsweep's own source and the processor (its kernels' instruction set)."""
    import platform

    from nnsweep.store.provenance import code_fingerprint, processor

    out = {}
    for pkg in _VERSIONED:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    out["python"] = platform.python_version()
    out["nnsweep_source"] = code_fingerprint()
    out.update(processor())
    return out


def sweep_record(
    sweep: Sweep, spec: Any, objective: str, direction: str, digest: str | None = None
) -> dict[str, Any]:
    """What sweep.json holds: the definition, what the data turned out to be, versions.

    The fingerprint gains what the sweep file cannot say: the data's content (``digest``)
    and, where an oracle or pruning judged rows by it, the resolved objective."""
    record = sweep.to_json()
    fingerprint = dict(record["fingerprint"])
    if digest is not None:
        fingerprint["data_content"] = digest
    if sweep.strategy != "grid" or sweep.prune:
        fingerprint["objective"] = f"{objective} ({direction})"
    return {
        **record,
        "fingerprint": fingerprint,
        "objective": objective,
        "direction": direction,
        "task": spec.task,
        "metric": spec.metric,
        "input_shape": list(spec.input_shape),
        "n_classes": spec.n_classes,
        "versions": versions(),
    }


@contextmanager
def ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C asks the running pack to stop at its next batch; a second one
    interrupts at once. A KeyboardInterrupt raised inside TensorFlow's tracing can come
    out as an unrelated error, so the first is only a request."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    # SIGTERM and SIGHUP too where the console script made them Ctrl-C (``nnsweep._entry``).
    signals = [signal.SIGINT] + [
        s
        for s in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(s) is signal.default_int_handler
    ]
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
