"""TensorBoard logs of a sweep: one run per trial, for the HParams dashboard and Scalars.

``results/<sweep>/tensorboard/`` holds the sweep's hyperparameter domains (written once,
so the dashboard shows the whole grid) and a folder per trial: its hyperparameters (seed
and fold among them) when it starts, its training and validation metrics at every epoch
as it trains, and, once its row is in trials.csv, its test metrics and a session end.
A trial is logged from its start again when it trains again (a resumed or fallen-back
pack), so no point appears twice, and a trial without a row never has a completed run.
Written with TensorBoard's own protobufs and event writer: no TensorFlow import, so
``nnsweep tensorboard NAME`` rebuilds the logs from the CSVs in about a second.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

TENSORBOARD = "tensorboard"
# TensorBoard groups each folder under the log directory as one run; these hold the
# experiment's domains, apart from the trials' runs.
_DOMAINS = "_experiment"
# TensorBoard has no "pruned" status: a pruned trial ends Unknown, and its metric
# ``pruned_at_epoch`` (declared for sweeps that prune) says where it stopped.
_STATUS = {
    "ok": "STATUS_SUCCESS",
    "failed": "STATUS_FAILURE",
    "diverged": "STATUS_FAILURE",
    "pruned": "STATUS_UNKNOWN",
}
PRUNED_METRIC = "pruned_at_epoch"


def log_dir(results_dir: Path) -> Path:
    """Where a sweep's TensorBoard logs go: ``results/<sweep>/tensorboard``."""
    return Path(results_dir) / TENSORBOARD


def _value(v: Any) -> Any:
    """A hyperparameter value as TensorBoard takes it: a number, a bool, or text."""
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
        return float(v)
    from nnsweep.definition.params import format_value

    return str(format_value(v))


def _numeric(text: str) -> Any:
    """A CSV cell back to a number where it is one (hyperparameters are written as text)."""
    try:
        return float(text)
    except ValueError:
        return {"True": True, "False": False}.get(text, text)


class _Events:
    """One run's event file, flushed after every write so the dashboard sees it live.

    TensorBoard's own ``RecordWriter`` over a plain file: its ``EventFileWriter`` would
    import TensorFlow (for ``tf.io.gfile``) whenever TensorFlow is installed.
    """

    _count = 0

    def __init__(self, folder: Path) -> None:
        import os
        import socket

        from tensorboard.summary.writer.record_writer import RecordWriter

        folder.mkdir(parents=True, exist_ok=True)
        _Events._count += 1  # two runs opened in one second by one process stay apart
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        path = folder / f"{name}.{os.getpid()}.{_Events._count}"
        self._writer = RecordWriter(open(path, "wb"))  # noqa: SIM115 - closed by close()
        self._write(file_version="brain.Event:2")

    def _write(self, step: int = 0, **fields: Any) -> None:
        from tensorboard.compat.proto import event_pb2

        event = event_pb2.Event(wall_time=time.time(), step=step, **fields)
        self._writer.write(event.SerializeToString())
        self._writer.flush()

    def write(self, summary: Any, step: int = 0) -> None:
        self._write(step, summary=summary)

    def close(self) -> None:
        self._writer.close()


def _scalars(values: Mapping[str, float]) -> Any:
    """A Summary of scalars, built from TensorBoard's protobufs alone (its ``scalar.pb``
    helper would import TensorFlow, and mix TensorFlow's protobuf classes in)."""
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorboard.plugins.scalar import metadata

    out = summary_pb2.Summary()
    for tag, v in values.items():
        if v is None or not math.isfinite(float(v)):
            continue
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
            float_val=[float(v)],
        )
        out.value.add(tag=tag, tensor=tensor, metadata=metadata.create_summary_metadata(tag, None))
    return out


def _session_end(status: str) -> Any:
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    info = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.Status.Value(status), end_time_secs=time.time()
    )
    content = plugin_data_pb2.HParamsPluginData(session_end_info=info)
    out = summary_pb2.Summary()
    out.value.add(
        tag=metadata.SESSION_END_INFO_TAG, metadata=metadata.create_summary_metadata(content)
    )
    return out


class TensorBoardLog:
    """A sweep's TensorBoard logs, written as its trials train (or from its CSVs)."""

    def __init__(self, results_dir: Path, info: Mapping[str, Any]) -> None:
        self.dir = log_dir(results_dir)
        self.info = info
        self.metric = str(info.get("metric") or "accuracy")
        self.added = [str(m) for m in info.get("metrics") or []]  # ``Sweep.metrics``
        self.swept = [str(n) for n in info.get("swept") or []]
        self._open: dict[str, _Events] = {}

    # -- the experiment -------------------------------------------------------------------

    def declare(self, rows: Sequence[Mapping[str, Any]] = ()) -> None:
        """Write the hyperparameter domains and metrics once (again only if they changed)."""
        from tensorboard.plugins.hparams import summary_v2 as hp

        from nnsweep.store._layout import epoch_columns

        hparams = [hp.HParam(n, self._domain(n, rows)) for n in [*self.swept, "seed", "fold"]]
        names = epoch_columns(self.metric, self.added)
        names += epoch_columns(self.metric, self.added, "test_")
        if self.info.get("prune"):
            names.append(PRUNED_METRIC)
        metrics = [hp.Metric(n, display_name=n) for n in names]
        summary = hp.hparams_config_pb(hparams, metrics)
        folder = self.dir / _DOMAINS
        stamp = folder / "config.pb"
        if stamp.exists() and stamp.read_bytes() == summary.SerializeToString():
            return
        shutil.rmtree(folder, ignore_errors=True)
        events = _Events(folder)
        events.write(summary)
        events.close()
        stamp.write_bytes(summary.SerializeToString())

    def _domain(self, name: str, rows: Sequence[Mapping[str, Any]]) -> Any:
        """The values a hyperparameter takes: the sweep's list, else those the rows hold."""
        from tensorboard.plugins.hparams import summary_v2 as hp

        space = (self.info.get("space") or {}).get(name)
        if name == "seed":
            values = list(self.info.get("seeds") or [])
        elif name == "fold":
            values = list(range(self.info.get("cv") or 1))
        elif isinstance(space, list):
            values = space
        elif isinstance(space, dict) and "choice" in space:
            values = space["choice"]
        elif isinstance(space, dict) and ("int" in space or "float" in space):
            low, high = space["int"] if "int" in space else space["float"]
            return hp.IntInterval(low, high) if "int" in space else hp.RealInterval(low, high)
        else:
            values = []
        values = [_value(v) for v in values] + [
            _numeric(str(r[name])) for r in rows if name in r and r[name] != ""
        ]
        kinds = {type(v) for v in values}
        if len(kinds) > 1:  # mixed (a number and None): all as text
            values = [str(v) for v in values]
        return hp.Discrete(sorted(set(values), key=lambda v: (str(type(v)), v))) if values else None

    # -- trials ---------------------------------------------------------------------------

    def start(self, trial_id: str, values: Mapping[str, Any]) -> None:
        """Begin a trial's run from scratch: its hyperparameters, nothing else yet."""
        from tensorboard.plugins.hparams import summary_v2 as hp

        self.discard([trial_id])
        events = self._open[trial_id] = _Events(self.dir / trial_id)
        events.write(hp.hparams_pb({k: _value(v) for k, v in values.items()}, trial_id=trial_id))

    def epoch(self, trial_id: str, epoch: int, logs: Mapping[str, float]) -> None:
        events = self._open.get(trial_id)
        if events is not None:
            events.write(_scalars(logs), step=epoch)

    def finish(self, trial_id: str, row: Mapping[str, Any]) -> None:
        """The trial's row is written: its test metrics, then the session's end."""
        events = self._open.pop(trial_id, None)
        if events is None:
            return
        step = int(float(row.get("epochs_run") or 0))
        tests = {k: row[k] for k in row if k.startswith("test_") and row[k] not in ("", None)}
        if row.get("status") == "pruned":
            tests = {PRUNED_METRIC: step}
        events.write(_scalars({k: float(v) for k, v in tests.items()}), step=step)
        events.write(_session_end(_STATUS.get(str(row.get("status")), "STATUS_UNKNOWN")))
        events.close()

    def abandon(self, trial_id: str) -> None:
        """Stop logging a trial whose row another worker wrote first (its run is theirs)."""
        events = self._open.pop(trial_id, None)
        if events is not None:
            events.close()

    def discard(self, trial_ids: Iterable[str]) -> None:
        """Forget what was logged of these trials (they train again, or never finished)."""
        for tid in trial_ids:
            events = self._open.pop(tid, None)
            if events is not None:
                events.close()
            shutil.rmtree(self.dir / tid, ignore_errors=True)

    def close(self) -> None:
        """Close the runs still open (an interrupted pack): they stay without an end."""
        for events in self._open.values():
            events.close()
        self._open.clear()


def trial_values(params: Mapping[str, Any], swept: Sequence[str], seed: int, fold: int) -> dict:
    """What the dashboard shows of a trial: its swept hyperparameters, seed and fold."""
    return {**{k: params[k] for k in swept if k in params}, "seed": seed, "fold": fold}


def write_logs(results_dir: Path) -> tuple[Path, int]:
    """Rebuild a sweep's logs from trials.csv and history.csv (idempotent); return the log
    folder and how many trials it holds. Runs of trials not in the table are removed.

    Under the results folder's lock: a live run's trials are not in the table yet, so a
    rebuild would remove the runs it is writing; while a run holds the folder, this raises
    ResultsLockedError and changes nothing.
    """
    from nnsweep.store.results import load_sweep_json, locked

    results_dir = Path(results_dir)
    info = load_sweep_json(results_dir)  # no sweep.json: an error, and no folder made
    advice = (
        "try again when it ends (nnsweep tensorboard rewrites the logs, and a run with "
        "--tensorboard writes them as it trains)"
    )
    with locked(results_dir, advice):
        return _rebuild(results_dir, info)


def _rebuild(results_dir: Path, info: Mapping[str, Any]) -> tuple[Path, int]:
    """``write_logs`` under the lock: every run rewritten from the tables."""
    from nnsweep.store._layout import epoch_columns
    from nnsweep.store.results import HISTORY, TRIALS, read_rows

    rows = read_rows(results_dir / TRIALS)
    history: dict[str, list[dict[str, str]]] = {}
    if (results_dir / HISTORY).exists():
        for h in read_rows(results_dir / HISTORY):
            history.setdefault(h["trial_id"], []).append(h)
    log = TensorBoardLog(results_dir, info)
    log.declare(rows)
    done = {r["trial_id"] for r in rows}
    if log.dir.exists():
        stale = [p.name for p in log.dir.iterdir() if p.is_dir() and p.name not in done]
        log.discard(n for n in stale if n != _DOMAINS)
    metric_names = epoch_columns(log.metric, log.added)
    for r in rows:
        values = {k: _numeric(r[k]) for k in log.swept if k in r}
        log.start(r["trial_id"], {**values, "seed": int(r["seed"]), "fold": int(r["fold"])})
        for h in sorted(history.get(r["trial_id"], []), key=lambda h: int(h["epoch"])):
            logs = {k: float(h[k]) for k in metric_names if h.get(k) not in (None, "")}
            log.epoch(r["trial_id"], int(h["epoch"]), logs)
        log.finish(r["trial_id"], r)
    return log.dir, len(rows)
