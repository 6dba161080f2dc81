"""Running a sweep: validate, load data once, train pack by pack, append each result.

The library entry point behind ``nnsweep run``; it reports progress through a
``Progress`` object and raises ``NnsweepError`` subclasses, never printing itself.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnsweep._progress import Progress
from nnsweep.errors import (
    ResultsMismatchError,
    SweepDefinitionError,
    SweepFailedError,
    SweepInterrupted,
)
from nnsweep.prepare import Prepared, ctrl_c_sets, prepare
from nnsweep.pruning import Prune, RungBook
from nnsweep.results import DEFAULT_RESULTS, ResultsStore, read_rows
from nnsweep.strategies import GridStrategy, Strategy
from nnsweep.strategies.tuner import (
    TunerStrategy,
    make_oracle,
    open_local_oracle,
)
from nnsweep.sweep import Sweep, Trial
from nnsweep.training.packing import DEFAULT_PACK_SIZE, make_packs

if TYPE_CHECKING:
    from nnsweep.confirm import Confirm
    from nnsweep.distributed import Worker


class _Logged(Progress):
    """A front end's progress, with each trial also logged for TensorBoard as it trains."""

    def __init__(self, inner: Progress, log: Any, swept: Sequence[str]) -> None:
        self.inner, self.log, self.swept = inner, log, swept

    def start(self, sweep: Sweep, total: int | None, done: int) -> None:
        self.inner.start(sweep, total, done)

    def pack_start(self, pack: Sequence[Trial]) -> None:
        self._restart(pack)
        self.inner.pack_start(pack)

    def _restart(self, pack: Sequence[Trial]) -> None:
        from nnsweep.tensorboard import trial_values

        for t in pack:
            self.log.start(t.trial_id, trial_values(t.params, self.swept, t.seed, t.fold))

    def epoch_end(self, trial: Trial, epoch: int, logs: dict[str, float]) -> None:
        self.log.epoch(trial.trial_id, epoch, logs)
        self.inner.epoch_end(trial, epoch, logs)

    def pack_fallback(self, pack: Sequence[Trial], error: BaseException) -> None:
        self._restart(pack)  # each trial trains again from its first epoch
        self.inner.pack_fallback(pack, error)

    def trial_end(self, trial: Trial, row: dict[str, Any]) -> None:
        self.log.finish(trial.trial_id, row)
        self.inner.trial_end(trial, row)


@dataclass
class RunSummary:
    """What one ``run_sweep`` call did."""

    sweep: str
    results_dir: Path
    planned: int | None
    done_before: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    packs: int = 0
    fallbacks: int = 0  # packs that failed as a whole and trained again one by one
    notes: list[str] = field(default_factory=list)  # what the strategy says of its run

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r["status"] for r in self.rows))

    @property
    def remaining(self) -> int | None:
        if self.planned is None:
            return None
        return self.planned - self.done_before - len(self.rows)


def _until_stopped(batches: Iterable[Sequence[Trial]], stop: threading.Event) -> Iterator:
    for batch in batches:
        if stop.is_set():
            raise KeyboardInterrupt
        yield batch
    if stop.is_set():
        raise KeyboardInterrupt


def plan(sweep: Sweep) -> list[Trial] | None:
    """The trials a run would train (None when a search strategy decides as it goes);
    with adaptive seeds, those of the first round."""
    if sweep.strategy != "grid":
        return None
    if sweep.adaptive is not None:
        return [
            t
            for p in sweep.configurations()
            for t in sweep.trials_for(p, range(sweep.adaptive.min))
        ]
    from nnsweep.strategies import GridStrategy

    return GridStrategy(sweep).planned()


def run_sweep(
    sweep: Sweep,
    *,
    results: str | Path = DEFAULT_RESULTS,
    data_dir: str | Path | None = None,
    max_trials: int | None = None,
    fresh: bool = False,
    pack_size: int = DEFAULT_PACK_SIZE,
    verbose: bool = False,
    debug: bool = False,
    progress: Progress | None = None,
    worker: Worker | None = None,
    threads: int | None = None,
    confirm: Confirm | None = None,
    tensorboard: bool = False,
) -> RunSummary:
    """Train every trial of ``sweep`` not already in its results folder.

    Trials train ``pack_size`` at a time as one TensorFlow program, whatever their
    hyperparameters (1 trains them one by one); the rows are the same either way. Search
    strategies ask a Keras Tuner oracle for each configuration: a local one, or with
    ``worker`` a chief's (see ``nnsweep.distributed``), writing into the shared folder.
    ``confirm`` trains the best configurations on fresh seeds instead (``nnsweep.confirm``),
    into the same table with ``phase`` confirm. ``tensorboard`` logs every trial as it
    trains under ``results/<sweep>/tensorboard/`` (``nnsweep.tensorboard``). Bad input
    (sweep, data, results folder) raises before anything is written. (Long for its
    signature and this text: one keyword per option of a run; the steps are ``_Loop``'s.)
    """
    from nnsweep._keras import set_threads

    progress = progress or Progress()
    _check_options(sweep, max_trials, pack_size, fresh, worker, confirm)
    if confirm is None and not fresh:
        _check_confirm_seeds(sweep, ResultsStore(results, sweep.name))
        _check_old_hyperband(sweep, ResultsStore(results, sweep.name))
    if threads is not None:
        set_threads(threads)
    if worker is not None:
        shared = ResultsStore(results, sweep.name, shared=True)
        finished = _finished_already(sweep, shared)
        if finished:
            # A worker started after its chief finished: no chief to wait for.
            if worker.log is not None:
                worker.log(f"every trial of {sweep.name} is already in {shared.dir}; nothing to do")
            return RunSummary(sweep.name, shared.dir, finished, finished)
    client = worker.connect(sweep) if worker is not None else None
    phase = "confirm" if confirm is not None else "search"
    run = prepare(
        sweep,
        results=results,
        data_dir=data_dir,
        shared=worker is not None,
        verbose=verbose,
        debug=debug,
        phase=phase,
    )
    t0 = time.perf_counter()
    with run.store, ctrl_c_sets(run.ctx.stop):
        done = run.store.open(run.record, run.columns, run.history_columns, fresh=fresh)
        log = None
        if tensorboard:
            from nnsweep.tensorboard import TensorBoardLog

            log = TensorBoardLog(run.store.dir, run.record)
            log.declare()
            progress = _Logged(progress, log, sweep.swept)
        strategy = _pick_strategy(sweep, run, client, worker, confirm)
        book = _rung_book(sweep, run) if confirm is None else None
        loop = _Loop(sweep, run, strategy, done, progress, log, max_trials, pack_size, book)
        try:
            loop.train_all()
        except KeyboardInterrupt:
            loop.summary.seconds = time.perf_counter() - t0
            # Counted by the store: a Ctrl-C held back during a write arrives just after it.
            appended = loop.summary.done_before + run.store.appended
            raise SweepInterrupted(appended, loop.summary.planned) from None
        finally:
            if log is not None:
                log.close()  # an interrupted pack's runs stay open-ended: never completed
    return _finish(loop.summary, strategy, time.perf_counter() - t0, run.store)


class _Loop:
    """The run's loop: batches from the strategy, packs from each batch, rows as they come."""

    def __init__(
        self,
        sweep: Sweep,
        run: Prepared,
        strategy: Strategy,
        done: set[str],
        progress: Progress,
        log: Any,
        max_trials: int | None,
        pack_size: int,
        book: RungBook | None = None,
    ) -> None:
        self.sweep, self.run, self.strategy, self.done = sweep, run, strategy, done
        self.progress, self.log = progress, log
        self.max_trials, self.pack_size = max_trials, pack_size
        self.book = book  # pruning's committed evidence (None: every trial to its end)
        planned = strategy.planned()
        before = len(done) if planned is None else sum(t.trial_id in done for t in planned)
        self.summary = RunSummary(
            sweep.name, run.store.dir, len(planned) if planned else None, before
        )
        progress.start(sweep, self.summary.planned, before)

    def train_all(self) -> None:
        for batch in _until_stopped(self.strategy.batches(self.done), self.run.ctx.stop):
            if not self.train_batch(batch):
                break  # --max-trials reached; a tuner trial left open resumes next run

    def train_batch(self, batch: Sequence[Trial]) -> bool:
        """Train what of a batch is not written yet; False when --max-trials cut it short."""
        from nnsweep._keras import backend_name

        # Rows written before (an earlier run, a fellow worker) are not trained again.
        have = self.run.store.completed_rows(t.trial_id for t in batch)
        bracket = getattr(self.strategy, "rung_book", None)  # hyperband's, per bracket
        book = bracket() if bracket is not None else self.book
        plan = make_packs(
            # With pruning, the whole batch is planned and each pack then loses its done
            # trials: a resumed run trains the same packs, so each is judged on the same
            # evidence (earlier packs on disk, its own trials) as in one straight run.
            batch if book is not None else [t for t in batch if t.trial_id not in have],
            model=self.sweep.model,
            max_size=self.pack_size,
            input_size=int(math.prod(self.run.dataset.spec.input_shape)),
            backend=backend_name(),
            whole_configs=book is not None,
        )
        packs = [
            replace(p, trials=tuple(t for t in p if t.trial_id not in have))
            for p in plan
            if any(t.trial_id not in have for t in p)
        ]
        whole = True
        if self.max_trials is not None:
            room = self.max_trials - len(self.summary.rows)
            whole = room >= sum(len(p) for p in packs)
            packs = _first_trials(packs, room)
        rows = dict(have)
        for pack in packs:
            if self.run.ctx.stop.is_set():
                raise KeyboardInterrupt
            rows.update(self.train_pack(pack, book))
        if whole:
            self.strategy.tell([rows[t.trial_id] for t in batch if t.trial_id in rows])
        return whole

    def train_pack(
        self, pack: Sequence[Trial], book: RungBook | None = None
    ) -> dict[str, dict[str, Any]]:
        """Train one pack (pruned at its rungs by ``book``'s evidence); each result is saved
        the moment it comes back, so a crash loses only the trials still in flight."""
        from nnsweep.training.train import train_pack

        self.progress.pack_start(pack)
        self.summary.packs += 1
        rows = {}
        trained = train_pack(pack, self.run.ctx, self.progress.epoch_end, self.fell_back, book)
        for trial, result in zip(pack, trained, strict=True):
            if self.run.store.append(result.row, result.history):
                if book is not None:  # decisions count once their rows are on disk
                    book.commit(result.row, result.history)
                self.summary.rows.append(result.row)
                self.progress.trial_end(trial, result.row)
            elif self.log is not None:  # a fellow worker's row came first
                self.log.abandon(trial.trial_id)
            rows[trial.trial_id] = result.row
        return rows

    def fell_back(self, pack: Sequence[Trial], error: BaseException) -> None:
        self.summary.fallbacks += 1
        self.progress.pack_fallback(pack, error)


def _first_trials(packs: Sequence[Any], n: int) -> list[Any]:
    """The packs' first ``n`` trials, in order (the last pack cut short where it falls)."""
    out = []
    for pack in packs:
        if n <= 0:
            break
        out.append(replace(pack, trials=tuple(pack)[:n]))
        n -= len(out[-1])
    return out


def _rung_book(sweep: Sweep, run: Prepared) -> RungBook | None:
    """Pruning's evidence, read from the rows already on disk (None without pruning)."""
    if not isinstance(sweep.prune, Prune):
        return None
    book = RungBook(sweep.prune, run.objective, run.direction, sweep.max_epochs)
    store = run.store
    if store.trials_path.is_file():
        history = read_rows(store.history_path) if store.history_path.is_file() else []
        book.load(read_rows(store.trials_path), history)
    return book


def _pick_strategy(
    sweep: Sweep, run: Prepared, client: Any, worker: Worker | None, confirm: Confirm | None
) -> Strategy:
    """Confirmation's trials, or the sweep's own strategy (see ``_strategy``)."""
    if confirm is not None:
        from nnsweep.confirm import ConfirmStrategy

        return ConfirmStrategy(sweep, run.store.trials_path, run.objective, run.direction, confirm)
    return _strategy(sweep, run.store, client, worker, run.objective, run.direction, run.ctx)


def _finish(
    summary: RunSummary, strategy: Strategy, seconds: float, store: ResultsStore
) -> RunSummary:
    """The run's summary with the strategy's words; a run whose every trial failed raises."""
    summary.seconds = seconds
    pruning = _pruning_note(summary.rows)
    if pruning:
        summary.notes.append(pruning)
    describe_run = getattr(strategy, "describe_run", None)
    if describe_run is not None:
        summary.notes.extend(describe_run())
    if summary.rows and all(r["status"] == "failed" for r in summary.rows):
        first = summary.rows[0]["error"]
        raise SweepFailedError(
            f"all {len(summary.rows)} trials failed; the first with: {first} "
            f"(rows in {store.trials_path})"
        )
    return summary


def _pruning_note(rows: Sequence[dict[str, Any]]) -> str:
    """The run's pruning in one line: what stopped where, and the epochs it saved."""
    pruned = [r for r in rows if r["status"] == "pruned"]
    if not pruned:
        return ""
    from nnsweep.params import resolve

    at = Counter(int(r["epochs_run"]) for r in pruned)
    where = ", ".join(f"{n} at epoch {e}" for e, n in sorted(at.items()))
    trained = sum(int(r["epochs_run"]) for r in rows)
    full = sum(
        int(r["epochs_run"]) if r["status"] != "pruned" else resolve(_params_of(r), None)["epochs"]
        for r in rows
    )
    configs = len({r["config_id"] for r in pruned})
    return (
        f"pruning: {len(pruned)} trials of {configs} configurations stopped ({where}); "
        f"{trained} of {full} trial-epochs trained ({full / max(trained, 1):.2f}x fewer)"
    )


def _params_of(row: dict[str, Any]) -> dict[str, Any]:
    return {"epochs": int(row["epochs"])} if "epochs" in row else {}


def _check_options(
    sweep: Sweep,
    max_trials: int | None,
    pack_size: int,
    fresh: bool,
    worker: Worker | None,
    confirm: Confirm | None,
) -> None:
    """Refuse options that cannot go together, before anything is loaded or written."""
    if max_trials is not None and max_trials < 1:
        raise SweepDefinitionError("--max-trials", "must be >= 1", max_trials)
    if pack_size < 1:
        raise SweepDefinitionError("--pack-size", "must be >= 1", pack_size)
    if worker is not None and fresh:
        raise SweepDefinitionError("--fresh", "is for the chief, not a worker", True)
    if worker is not None and sweep.adaptive is not None:
        raise SweepDefinitionError(
            "seeds", "adaptive Seeds(...) run on one machine, not with --worker", sweep.seeds
        )
    if confirm is not None and fresh:
        raise SweepDefinitionError("--fresh", "would move aside the results to confirm", True)
    if worker is not None and sweep.prune is not None:
        # Each worker would judge from what it last read of the shared folder: decisions
        # would then depend on timing, and a resumed run could decide otherwise.
        raise SweepDefinitionError(
            "prune", "runs on one machine (not with --worker); use --no-prune", sweep.prune
        )


def _check_confirm_seeds(sweep: Sweep, store: ResultsStore) -> None:
    """Refuse search seeds that ``nnsweep confirm`` already used: those trials would be
    taken as done (same trial ids), and the confirmation's seeds would no longer be fresh."""
    if not store.trials_path.is_file():
        return
    used = {int(r["seed"]) for r in read_rows(store.trials_path) if r.get("phase") == "confirm"}
    clash = sorted(used & set(sweep.seed_list))
    if clash:
        raise SweepDefinitionError(
            "seeds",
            f"must avoid the seeds nnsweep confirm used in {store.dir} ({_seed_text(clash)}): "
            "declare other seeds, or start over with --fresh",
            sweep.seeds,
        )


def _check_old_hyperband(sweep: Sweep, store: ResultsStore) -> None:
    """Refuse to resume a hyperband folder that Keras Tuner's oracle wrote (a row per
    budget, each trained from scratch): its rows are not this hyperband's."""
    from nnsweep.strategies.tuner import TUNER_DIR

    if sweep.strategy == "hyperband" and (store.dir / TUNER_DIR / "oracle.json").exists():
        raise ResultsMismatchError(
            f"{store.dir} was written by an older nnsweep whose hyperband trained each budget "
            "from scratch (one row per budget); this one continues each configuration in "
            "one row: run with --fresh to move the old results aside and start over"
        )


def _seed_text(seeds: list[int]) -> str:
    more = f" and {len(seeds) - 5} more" if len(seeds) > 5 else ""
    return ", ".join(map(str, seeds[:5])) + more


def _finished_already(sweep: Sweep, store: ResultsStore) -> int:
    """How many trials the results folder holds when it holds the whole sweep, else 0."""
    if not store.trials_path.is_file():
        return 0
    rows = {r["trial_id"]: r for r in read_rows(store.trials_path)}
    if sweep.strategy == "grid":
        planned = {t.trial_id for t in sweep.grid_trials()}
        return len(planned) if planned <= rows.keys() else 0
    per_config = len(sweep.seed_list) * len(sweep.folds)
    configs = Counter(r["config_id"] for r in rows.values())
    complete = sum(n >= per_config for n in configs.values())
    return len(rows) if sweep.max_trials is not None and complete >= sweep.max_trials else 0


def _strategy(
    sweep: Sweep,
    store: ResultsStore,
    client: Any,
    worker: Worker | None,
    objective: str,
    direction: str,
    ctx: Any,
) -> Strategy:
    """The grid loop, a local Keras Tuner oracle (kept in the results folder) or a chief."""
    if client is not None and worker is not None:
        return TunerStrategy(
            sweep,
            client,
            objective,
            tuner_id=worker.worker_id,
            heartbeat_seconds=worker.heartbeat_seconds,
            stop=ctx.stop,
        )
    if sweep.adaptive is not None:
        from nnsweep.strategies.adaptive import AdaptiveSeedsStrategy

        return AdaptiveSeedsStrategy(sweep, store.trials_path, objective, direction)
    if sweep.strategy == "grid":
        return GridStrategy(sweep)
    if sweep.strategy == "hyperband":
        from nnsweep.strategies.hyperband import HyperbandStrategy

        return HyperbandStrategy(sweep, store.dir, objective, direction)
    oracle = open_local_oracle(make_oracle(sweep, objective, direction), store.dir)
    return TunerStrategy(sweep, oracle, objective, stop=ctx.stop)
