"""Sweeps over many machines, on Keras Tuner's own distributed mode.

The chief serves the sweep's oracle with Keras Tuner's gRPC ``OracleServicer``; each
worker asks it for trials through Keras Tuner's ``OracleClient`` (with the
``KERASTUNER_TUNER_ID`` / ``KERASTUNER_ORACLE_IP`` / ``KERASTUNER_ORACLE_PORT`` variables
set for it), trains them and appends their rows to the shared results folder. Two things
are added on the chief: a worker that goes silent (no heartbeat) loses its trial to the
next worker that asks, and workers wait, rather than exit, while trials are still running
elsewhere, so a dead worker's trial is trained again, never silently missing.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnsweep.errors import ChiefError, SweepDefinitionError
from nnsweep.results import DEFAULT_RESULTS
from nnsweep.strategies.tuner import (
    IDLE_POLL_SECONDS,
    _kt,
    hyperparameters,
    make_oracle,
    open_local_oracle,
)
from nnsweep.sweep import Sweep

DEFAULT_PORT = 8000
DEFAULT_WORKER_TIMEOUT = 60.0  # seconds without a heartbeat before a trial changes hands
DEFAULT_CONNECT_TIMEOUT = 120.0  # seconds a worker keeps trying to reach its chief
HEARTBEAT_SECONDS = 5.0


def parse_address(address: str, option: str = "--chief") -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT`` for this machine) as a host and a port number;
    ``option`` names the command-line option in the message."""
    host, sep, port = str(address).rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise SweepDefinitionError(option, "must be HOST:PORT (a port in 1-65535)", address)
    return host or "127.0.0.1", int(port)


def _check_port(host: str, port: int) -> None:
    """Refuse a port that is taken before anything is written (gRPC would only log it)."""
    if port == 0:
        return  # any free port
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as exc:
        raise SweepDefinitionError(
            "--port",
            f"cannot be listened on at {host} ({exc.strerror}); pick another port, or check --host",
            port,
        ) from None


def _set_keras_tuner_env(tuner_id: str, host: str, port: int) -> None:
    os.environ["KERASTUNER_TUNER_ID"] = tuner_id
    os.environ["KERASTUNER_ORACLE_IP"] = host
    os.environ["KERASTUNER_ORACLE_PORT"] = str(port)


def default_worker_id() -> str:
    return f"worker-{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Worker:
    """How a worker reaches its chief; ``run_sweep(worker=...)`` trains what it hands out.

    Restarting a worker with the same ``worker_id`` gives it back the trial it had.
    """

    chief: str
    worker_id: str = field(default_factory=default_worker_id)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    call_timeout: float = 120.0
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    log: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        parse_address(self.chief, "--worker")  # refused before anything is opened

    def connect(self, sweep: Sweep) -> Any:
        """A Keras Tuner oracle client for the chief, once it answers (bounded wait)."""
        import grpc

        host, port = parse_address(self.chief, "--worker")
        if not self.worker_id or "chief" in self.worker_id:
            # Keras Tuner takes any id containing "chief" for the chief itself.
            raise SweepDefinitionError(
                "--worker-id", "must be non-empty, without 'chief'", self.worker_id
            )
        _set_keras_tuner_env(self.worker_id, host, port)
        t0 = time.monotonic()
        while True:
            channel = grpc.insecure_channel(f"{host}:{port}")
            try:
                grpc.channel_ready_future(channel).result(timeout=min(5.0, self.connect_timeout))
                break
            except grpc.FutureTimeoutError:
                channel.close()
                waited = time.monotonic() - t0
                if waited >= self.connect_timeout:
                    raise ChiefError(
                        f"cannot reach the chief at {host}:{port} after {waited:.0f} s; start "
                        f"it with `nnsweep run SWEEP --chief --port {port}` on that machine, "
                        "and check that the port is open"
                    ) from None
                if self.log:
                    self.log(f"waiting for the chief at {host}:{port} ({waited:.0f} s so far)")
        channel.close()
        _kt()  # Keras Tuner imports TensorFlow: quietly, through nnsweep's import
        from nnsweep._tuner_classes import Client

        client = Client(host, port, self.call_timeout)
        theirs = client.get_space()
        # Compared after the same trip through Keras Tuner's protocol, which reorders.
        ours = type(theirs).from_proto(hyperparameters(sweep).to_proto())
        if sweep.strategy != "grid" and theirs.get_config() != ours.get_config():
            raise ChiefError(
                f"the chief at {host}:{port} runs another search space than {sweep.name}"
            )
        return client


class ChiefOracle:
    """The chief's oracle as workers see it: Keras Tuner's, plus heartbeats and takeover."""

    def __init__(self, oracle: Any, worker_timeout: float, log: Callable[[str], None]) -> None:
        self.oracle = oracle
        self.worker_timeout = worker_timeout
        self.log = log
        self.seen: dict[str, float] = {}
        self.finished_at: float | None = None
        self.ended = 0
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.oracle, name)

    def create_trial(self, tuner_id: str) -> Any:
        from nnsweep._compat import trial_class, trial_status

        Trial, TrialStatus = trial_class(), trial_status()  # noqa: N806

        with self._lock:
            now = time.monotonic()
            self.seen[tuner_id] = now
            o = self.oracle
            if tuner_id in o.ongoing_trials:
                return o.ongoing_trials[tuner_id]
            for holder, trial in list(o.ongoing_trials.items()):
                silent = now - self.seen.get(holder, now)
                if silent > self.worker_timeout:
                    # The holder died (or hangs): its trial goes to whoever asks next.
                    del o.ongoing_trials[holder]
                    o.tuner_ids.discard(holder)
                    o.tuner_ids.add(tuner_id)
                    o.ongoing_trials[tuner_id] = trial
                    o.save()
                    self.log(
                        f"trial {trial.trial_id}: {holder} silent for {silent:.0f} s; "
                        f"handed to {tuner_id}"
                    )
                    return trial
            trial = o.create_trial(tuner_id)
            if trial.status == TrialStatus.STOPPED and o.ongoing_trials:
                # Stay around: a running trial may still need someone to take it over.
                o.tuner_ids.add(tuner_id)
                return Trial(o.hyperparameters.copy(), trial_id="idle", status=TrialStatus.IDLE)
            if trial.status == TrialStatus.STOPPED and self.finished_at is None:
                self.finished_at = now
            if trial.status == TrialStatus.RUNNING:
                self.log(f"trial {trial.trial_id} -> {tuner_id}")
            return trial

    def get_trial(self, trial_id: str) -> Any:
        with self._lock:
            for holder, trial in self.oracle.ongoing_trials.items():
                if trial.trial_id == trial_id:
                    self.seen[holder] = time.monotonic()  # a heartbeat
            return self.oracle.get_trial(trial_id)

    def update_trial(self, trial_id: str, metrics: Any, step: int = 0) -> Any:
        with self._lock:
            if trial_id in self.oracle.end_order:
                # A late report from a worker whose trial was taken over.
                return self.oracle.trials[trial_id]
            return self.oracle.update_trial(trial_id, dict(metrics), step=step)

    def end_trial(self, trial: Any) -> None:
        with self._lock:
            if trial.trial_id in self.oracle.end_order:
                return
            self.oracle.end_trial(trial)
            self.ended += 1
            self.log(f"trial {trial.trial_id} {trial.status.lower()} ({self.ended} ended)")

    def done(self) -> bool:
        """The search is over, nothing runs, and every worker heard so (or went silent)."""
        with self._lock:
            if self.finished_at is None or self.oracle.ongoing_trials:
                return False
            now = time.monotonic()
            return all(
                now - self.seen.get(t, 0.0) > 3 * IDLE_POLL_SECONDS for t in self.oracle.tuner_ids
            )


@dataclass
class ChiefSummary:
    """What a chief served."""

    results_dir: Path
    address: str
    ended: int
    seconds: float


def serve_chief(
    sweep: Sweep,
    *,
    port: int = DEFAULT_PORT,
    host: str = "0.0.0.0",
    results: str | Path = DEFAULT_RESULTS,
    data_dir: str | Path | None = None,
    fresh: bool = False,
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT,
    log: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    ready: Callable[[int], None] | None = None,
) -> ChiefSummary:
    """Serve the sweep's oracle until every trial is done; workers do the training.

    The oracle's state lives in ``results/<sweep>/tuner/``: a chief started again resumes
    the search, and trials that were running are handed out again.
    """
    from nnsweep.prepare import ctrl_c_sets, prepare

    if sweep.adaptive is not None:
        raise SweepDefinitionError(
            "seeds", "adaptive Seeds(...) run on one machine, not with --chief", sweep.seeds
        )
    if sweep.strategy == "hyperband":
        # Its brackets are batches of packs that prune inside: one machine's runner.
        raise SweepDefinitionError(
            "strategy", "hyperband runs on one machine, not with --chief", sweep.strategy
        )
    if sweep.prune is not None:
        raise SweepDefinitionError(
            "prune", "runs on one machine (not with --chief); use --no-prune", sweep.prune
        )
    log = log or (lambda message: None)
    stop = stop or threading.Event()
    _check_port(host, port)
    run = prepare(sweep, results=results, data_dir=data_dir, shared=True)
    store, objective, direction = run.store, run.objective, run.direction
    _set_keras_tuner_env("chief", host, port)
    t0 = time.monotonic()
    with store, ctrl_c_sets(stop):
        store.open(run.record, run.columns, run.history_columns, fresh=fresh)
        oracle = open_local_oracle(make_oracle(sweep, objective, direction), store.dir)
        chief = ChiefOracle(oracle, worker_timeout, log)
        server, bound = _start_server(chief, host, port)
        address = f"{host}:{bound}"
        log(f"chief for {sweep.name} listening on {address}; start workers with "
            f"`nnsweep run SWEEP --worker {socket.gethostname()}:{bound}`")  # fmt: skip
        if ready:
            ready(bound)
        try:
            while not chief.done():
                if stop.wait(0.5):
                    raise KeyboardInterrupt
        finally:
            server.stop(grace=1.0)
    return ChiefSummary(store.dir, address, chief.ended, time.monotonic() - t0)


def _start_server(chief: ChiefOracle, host: str, port: int) -> tuple[Any, int]:
    """Keras Tuner's gRPC servicer over ``chief``, listening; the server and its port."""
    import grpc

    _kt()  # Keras Tuner imports TensorFlow: quietly, through nnsweep's import
    from nnsweep._compat import oracle_servicer, protos

    # Without SO_REUSEPORT a port in use is an error, not a second chief beside the first.
    server = grpc.server(_thread_pool(), options=[("grpc.so_reuseport", 0)])
    protos().get_service_grpc().add_OracleServicer_to_server(oracle_servicer()(chief), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise ChiefError(f"cannot listen on {host}:{port} (in use, or not this machine's)")
    server.start()
    return server, bound


def _thread_pool() -> Any:
    from concurrent import futures

    # More than one thread, so heartbeats are answered while another call waits its turn.
    return futures.ThreadPoolExecutor(max_workers=4)
