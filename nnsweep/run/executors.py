"""Where packs train: in this process (``LocalExecutor``) or as Ray tasks (``RayExecutor``).

The contract, for the runner, its only caller and the only writer of the results: while
``free()`` is above zero, ``submit`` a pack (with its pruning evidence); ``wait()`` yields
a ``Done`` for each trial of at least one submitted pack, as the results come back (a
pack's own in its order); ``close()`` cancels what is still in flight. An executor writes
nothing. A Ray task is a function of its inputs that returns its rows (Ray may run it
again when its worker or node dies; the store drops a second row of a trial).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from nnsweep.definition.pruning import RungBook
from nnsweep.definition.sweep import Trial
from nnsweep.errors import ClusterError, SweepDefinitionError
from nnsweep.training import pool_paths

# A pack whose Ray task dies this many times more (its worker or node lost) is left
# unwritten: the next run of the same command trains it again.
TASK_RETRIES = 3
# How often the driver looks up from waiting for a pack, to honour Ctrl-C.
_POLL_SECONDS = 0.5


@dataclass
class Job:
    """A pack to train: its trials, its pruning evidence, the batch it belongs to, its wave
    (see ``run._loop``) and the trials of the packs that train beside it in that wave."""

    pack: Sequence[Trial]
    book: RungBook | None = None
    batch: int = 0
    wave: int = 0
    beside: frozenset[str] = frozenset()


@dataclass
class Done:
    """One trial's result, as an executor gives it back."""

    job: Job
    trial: Trial
    row: dict[str, Any] | None  # None: the pack could not be trained (see ``lost``)
    history: list[dict[str, Any]] = field(default_factory=list)
    lost: str = ""  # why a pack's trials came back without rows
    weights: list[Any] | None = None  # its model's weights, when the run keeps models


class LocalExecutor:
    """Trains one pack at a time in this process, each trial's row the moment it is ready
    (epochs reach the progress hooks live)."""

    live = True  # epochs reach ``on_epoch`` as they are trained

    def __init__(
        self,
        ctx: Any,
        on_epoch: Callable[..., None] | None,
        on_fallback: Callable[..., None] | None,
    ) -> None:
        self.ctx, self.on_epoch, self.on_fallback = ctx, on_epoch, on_fallback
        self.slots = 1
        self._job: Job | None = None

    def free(self) -> int:
        return 0 if self._job is not None else 1

    def in_flight(self) -> int:
        return 0 if self._job is None else 1

    def submit(self, job: Job) -> None:
        assert self._job is None, "one pack at a time"
        self._job = job

    def wait(self) -> Iterator[Done]:
        from nnsweep.training.train import train_pack

        job, self._job = self._job, None
        assert job is not None, "nothing submitted"
        trained = train_pack(job.pack, self.ctx, self.on_epoch, self.on_fallback, job.book)
        for trial, result in zip(job.pack, trained, strict=True):
            yield Done(job, trial, result.row, result.history, weights=result.weights)

    def close(self) -> None:
        self._job = None


# -- Ray -------------------------------------------------------------------------------------


def import_ray() -> Any:
    """Ray, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SweepDefinitionError(
            "--ray",
            "needs Ray: pip install 'nnsweep[ray]' (on the driver and on every node)",
            "not installed",
        ) from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where and how packs run on Ray: the cluster, and each pack task's resources."""

    address: str = "local"  # "local" (start Ray here), "auto", or HOST:PORT
    cpus: float = 1.0  # CPUs a pack task takes (TensorFlow computes with as many threads)
    gpus: float = 0.0
    threads: int | None = None  # TensorFlow's threads in a task (default: its CPUs)

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or not self.address:
            raise SweepDefinitionError("--ray", "must be auto, HOST:PORT or empty", self.address)
        if self.address not in ("local", "auto"):
            host, sep, port = self.address.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise SweepDefinitionError(
                    "--ray", "must be auto, HOST:PORT (a port in 1-65535) or empty", self.address
                )
        if not self.cpus > 0:
            raise SweepDefinitionError("--ray-cpus", "must be > 0", self.cpus)
        if self.gpus < 0:
            raise SweepDefinitionError("--ray-gpus", "must be >= 0", self.gpus)


def connect(options: RayOptions) -> Any:
    """Join (or start) the Ray cluster; ClusterError in one line when that fails, and when
    it lacks what one pack task asks for."""
    ray = import_ray()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        # "local" always starts a Ray of its own (never a stray one a killed run left).
        kwargs["address"] = options.address
        if options.address == "local":
            kwargs["include_dashboard"] = False
        if options.address not in ("local", "auto"):
            _probe(options.address)
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            auth = ""
            if options.address != "local" and os.environ.get("RAY_AUTH_MODE") != "token":
                auth = (
                    "; if the cluster uses token authentication (ray start's default), set "
                    "RAY_AUTH_MODE=token with its token in ~/.ray/auth_token"
                )
            raise ClusterError(
                f"cannot reach the Ray cluster at {options.address} ({first}); start it with "
                "`ray start --head` on its head node, or run with --ray (no address) to "
                f"start Ray on this machine{auth}"
            ) from None
    have = ray.cluster_resources()
    for name, need in (("CPU", options.cpus), ("GPU", options.gpus)):
        if need and have.get(name, 0) < need:
            raise ClusterError(
                f"the Ray cluster has {have.get(name, 0):g} {name}s, and a pack task asks for "
                f"{need:g} (--ray-{name.lower()}s); add nodes or ask for less"
            )
    return ray


# Ray's own connection to an address where nothing listens retries for minutes; a plain
# TCP connection tells within this many seconds.
_PROBE_SECONDS = 10.0


def _probe(address: str) -> None:
    """ClusterError at once when nothing listens at ``address`` (HOST:PORT)."""
    import socket

    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=_PROBE_SECONDS).close()
    except OSError as exc:
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it with "
            "`ray start --head` on its head node (the port it prints), or run with --ray (no "
            "address) to start Ray on this machine"
        ) from None


def _pack_task(
    sweep: Any, dataset: Any, pack: Sequence[Trial], book: Any, settings: dict[str, Any]
) -> dict[str, Any]:
    """Train one pack on a Ray worker; its rows, histories and fallbacks (nothing written)."""
    from nnsweep.run.prepare import versions
    from nnsweep.store.provenance import this_process
    from nnsweep.training.train import TrainContext, train_pack

    ctx = TrainContext(
        sweep,
        dataset,
        phase=settings["phase"],
        debug=settings["debug"],
        keep_weights=settings["keep_weights"],
    )
    fallbacks: list[str] = []

    def fell_back(trials: Sequence[Trial], error: BaseException) -> None:
        fallbacks.append(f"{type(error).__name__}: {error}")

    pool_paths.taken()  # a reused worker's earlier tasks' choices went back with them
    results = [(r.row, r.history, r.weights) for r in train_pack(pack, ctx, None, fell_back, book)]
    return {
        "results": results,
        "fallbacks": fallbacks,
        "worker": this_process(),
        "versions": versions(),
        "pool_paths": pool_paths.taken(),  # for the driver's summary
    }


class RayExecutor:
    """Trains packs as Ray tasks, as many at once as the cluster's CPUs (or GPUs) hold;
    the dataset goes into Ray's object store once."""

    live = False  # a pack's epochs come back with its rows

    def __init__(
        self,
        ray: Any,
        options: RayOptions,
        ctx: Any,
        on_fallback: Callable[..., None] | None,
        on_worker: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.ray, self.options, self.ctx = ray, options, ctx
        self.on_fallback, self.on_worker = on_fallback, on_worker
        have = ray.cluster_resources()
        slots = int(have.get("CPU", 0) // options.cpus)
        if options.gpus:
            slots = min(slots, int(have.get("GPU", 0) // options.gpus))
        self.slots = max(1, slots)
        threads = options.threads or max(1, int(options.cpus))
        env = {
            "TF_NUM_INTRAOP_THREADS": str(threads),
            "TF_NUM_INTEROP_THREADS": str(threads),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        self._task = ray.remote(_pack_task).options(
            num_cpus=options.cpus,
            num_gpus=options.gpus,
            max_retries=TASK_RETRIES,
            retry_exceptions=False,
            runtime_env={"env_vars": env},
        )
        self._sweep = ray.put(ctx.sweep)
        self._data = ray.put(ctx.dataset)
        self._settings = {"phase": ctx.phase, "debug": ctx.debug, "keep_weights": ctx.keep_weights}
        self._flight: dict[Any, Job] = {}
        self._stop: threading.Event = ctx.stop

    def free(self) -> int:
        return self.slots - len(self._flight)

    def in_flight(self) -> int:
        return len(self._flight)

    def submit(self, job: Job) -> None:
        ref = self._task.remote(self._sweep, self._data, tuple(job.pack), job.book, self._settings)
        self._flight[ref] = job

    def wait(self) -> Iterator[Done]:
        ray = self.ray
        ready: list[Any] = []
        while not ready:
            if self._stop.is_set():
                raise KeyboardInterrupt
            ready, _ = ray.wait(list(self._flight), num_returns=1, timeout=_POLL_SECONDS)
        ref = ready[0]
        job = self._flight.pop(ref)
        try:
            out = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            # An error outside the trials (they fail in their rows): the pack failed as a
            # whole where no fallback could run. Each trial gets a failed row saying why.
            message = str(exc.cause if getattr(exc, "cause", None) else exc)
            yield from self._failed(job, message)
            return
        except (ray.exceptions.RayError, OSError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            for trial in job.pack:
                yield Done(job, trial, None, lost=f"{type(exc).__name__}: {first}")
            return
        if self.on_worker is not None:
            self.on_worker(out["worker"], out["versions"])
        for choice in out.get("pool_paths", ()):
            pool_paths.note(choice)  # the summary names the paths the workers took
        if out["fallbacks"] and self.on_fallback is not None:
            for message in out["fallbacks"]:
                self.on_fallback(job.pack, RuntimeError(message))
        for trial, (row, history, weights) in zip(job.pack, out["results"], strict=True):
            yield Done(job, trial, row, history, weights=weights)

    def _failed(self, job: Job, message: str) -> Iterator[Done]:
        from nnsweep.training.train import failed_row

        for trial in job.pack:
            yield Done(job, trial, failed_row(trial, self.ctx, message, len(job.pack)))

    def close(self) -> None:
        for ref in self._flight:
            self.ray.cancel(ref, force=True)
        self._flight.clear()
