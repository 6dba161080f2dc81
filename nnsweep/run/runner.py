"""Running a sweep: validate, reach the cluster, load data once, then the loop (strategy
-> executor -> store, in ``_loop``) until every trial is written.

The library entry point behind ``nnsweep run``; it reports progress through a
``Progress`` object and raises ``NnsweepError`` subclasses, never printing itself.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnsweep._progress import Progress, start_progress
from nnsweep.definition.pruning import Prune, RungBook
from nnsweep.definition.sweep import Sweep, Trial, located
from nnsweep.errors import (
    ResultsMismatchError,
    SweepDefinitionError,
    SweepFailedError,
    SweepInterrupted,
)
from nnsweep.run._loop import Loop
from nnsweep.run.keep import keep_setting
from nnsweep.run.prepare import Prepared, ctrl_c_sets, prepare
from nnsweep.store.results import DEFAULT_RESULTS, ResultsStore, read_rows
from nnsweep.strategies import GridStrategy, Strategy
from nnsweep.strategies.tuner import (
    TunerStrategy,
    make_oracle,
    open_local_oracle,
)
from nnsweep.training import pool_paths
from nnsweep.training.packing import DEFAULT_PACK_SIZE

if TYPE_CHECKING:
    from nnsweep.run.confirm import Confirm
    from nnsweep.run.executors import RayOptions


class _Logged(Progress):
    """A front end's progress, with each trial also logged for TensorBoard as it trains."""

    def __init__(self, inner: Progress, log: Any, swept: Sequence[str]) -> None:
        self.inner, self.log, self.swept = inner, log, swept

    def start(
        self, sweep: Sweep, total: int | None, done: int, *, objective: str | None = None
    ) -> None:
        if objective is None:
            self.inner.start(sweep, total, done)
        else:
            start_progress(self.inner, sweep, total, done, objective)

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
    # Trials whose pack came back without rows (its Ray task died past its retries):
    # "trial_id: why". Unwritten, so the next run of the same command trains them.
    lost: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r["status"] for r in self.rows))

    @property
    def remaining(self) -> int | None:
        if self.planned is None:
            return None
        return self.planned - self.done_before - len(self.rows)


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
    threads: int | None = None,
    confirm: Confirm | None = None,
    tensorboard: bool = False,
    ray: RayOptions | None = None,
    keep_models: int | str | None = None,
    max_model_disk: int | None = None,
) -> RunSummary:
    """Train every trial of ``sweep`` not already in its results folder.

    Trials train ``pack_size`` at a time as one TensorFlow program, whatever their
    hyperparameters (1 trains them one by one); the rows are the same either way. Search
    strategies ask a Keras Tuner oracle (in this process) for each configuration.
    ``confirm`` trains the best configurations on fresh seeds instead (``nnsweep.run.confirm``),
    into the same table with ``phase`` confirm. ``tensorboard`` logs every trial under
    ``results/<sweep>/tensorboard/`` (``nnsweep.tensorboard``). ``ray``: packs train as Ray
    tasks on a cluster (``nnsweep.run.executors``); this process stays the only writer of the
    results. ``keep_models`` (default: the sweep's): the K best configurations' trained
    models (or "all"), kept under ``results/<sweep>/models/`` (``nnsweep.run.keep``), in at
    most ``max_model_disk`` bytes. Bad input (sweep, data, results folder, cluster) raises
    before anything is written. (Long for its signature and this text: one keyword per
    option of a run; the steps are ``_loop.Loop``'s.)
    """
    from nnsweep._keras import set_threads

    progress = progress or Progress()
    _check_options(sweep, max_trials, pack_size, fresh, confirm, threads)
    pool_paths.drain()  # what an earlier run in this process took is not this run's
    keep = keep_setting(sweep, keep_models, max_model_disk)
    if confirm is None and not fresh:
        _check_confirm_seeds(sweep, ResultsStore(results, sweep.name))
        _check_old_hyperband(sweep, ResultsStore(results, sweep.name))
    cluster = None
    if ray is not None:
        from nnsweep.run.executors import connect

        cluster = connect(ray)  # before anything is written: an unreachable one says so
    elif threads is not None:
        set_threads(threads)
    phase = "confirm" if confirm is not None else "search"
    run = prepare(
        sweep,
        results=results,
        data_dir=data_dir,
        verbose=verbose,
        debug=debug,
        phase=phase,
        keep_weights=keep is not None,
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
        summary = RunSummary(sweep.name, run.store.dir, None, 0)
        keeper = None
        if keep is not None:
            from nnsweep.run.keep import ModelKeeper

            keeper = ModelKeeper(
                run.store.dir, sweep, run.dataset.spec, run.record, keep, max_model_disk
            )
        executor = _executor(run, progress, summary, cluster, ray, threads)
        strategy = _pick_strategy(sweep, run, confirm, executor.slots)
        planned = strategy.planned()
        summary.planned = len(planned) if planned else None
        summary.done_before = (
            len(done) if planned is None else sum(t.trial_id in done for t in planned)
        )
        start_progress(progress, sweep, summary.planned, summary.done_before, run.objective)
        book = _rung_book(sweep, run) if confirm is None else None
        loop = Loop(
            sweep, run, strategy, done, progress, log, executor, summary,
            max_trials=max_trials, pack_size=pack_size, book=book, keeper=keeper,
        )  # fmt: skip
        try:
            loop.run()
        except KeyboardInterrupt:
            summary.seconds = time.perf_counter() - t0
            # Counted by the store: a Ctrl-C held back during a write arrives just after it.
            appended = summary.done_before + run.store.appended
            raise SweepInterrupted(appended, summary.planned) from None
        finally:
            executor.close()  # Ray: the packs still in flight are cancelled
            if log is not None:
                log.close()  # an interrupted pack's runs stay open-ended: never completed
    if keeper is not None:
        summary.notes.extend(keeper.notes())
    return _finish(summary, strategy, time.perf_counter() - t0, run.store)


def _executor(
    run: Prepared,
    progress: Progress,
    summary: RunSummary,
    cluster: Any,
    ray: RayOptions | None,
    threads: int | None,
) -> Any:
    """Where the packs train: this process, or the Ray cluster ``cluster``."""
    from nnsweep.run.executors import LocalExecutor, RayExecutor

    def fell_back(pack: Sequence[Trial], error: BaseException) -> None:
        summary.fallbacks += 1
        progress.pack_fallback(pack, error)

    if cluster is None or ray is None:
        return LocalExecutor(run.ctx, progress.epoch_end, fell_back)
    seen: set[str] = set()

    def worker_seen(worker: str, versions: dict[str, Any]) -> None:
        if worker not in seen:  # runs.jsonl: which process (and versions) trained rows
            seen.add(worker)
            run.store.log_run(versions, worker)

    return RayExecutor(cluster, replace(ray, threads=threads), run.ctx, fell_back, worker_seen)


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


def _pick_strategy(sweep: Sweep, run: Prepared, confirm: Confirm | None, slots: int) -> Strategy:
    """Confirmation's trials, or the sweep's own strategy (see ``_strategy``)."""
    if confirm is not None:
        from nnsweep.run.confirm import ConfirmStrategy

        return ConfirmStrategy(sweep, run.store.trials_path, run.objective, run.direction, confirm)
    return _strategy(sweep, run.store, run.objective, run.direction, slots)


def _finish(
    summary: RunSummary, strategy: Strategy, seconds: float, store: ResultsStore
) -> RunSummary:
    """The run's summary with the strategy's words; a run whose every trial failed raises."""
    summary.seconds = seconds
    summary.notes.extend(pool_paths.drain())
    pruning = _pruning_note(summary.rows)
    if pruning:
        summary.notes.append(pruning)
    if summary.lost:
        summary.notes.append(
            f"warning: {len(summary.lost)} trials came back without rows, their Ray task "
            f"lost past its retries (the first: {summary.lost[0]}); run the same command "
            "to train them"
        )
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
    from nnsweep.definition.params import resolve

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
    confirm: Confirm | None,
    threads: int | None,
) -> None:
    """Refuse options that cannot go together, before anything is loaded or written."""
    from nnsweep._keras import check_threads

    if threads is not None:
        check_threads(threads)
    pool_paths.forced()  # a bad NNSWEEP_CONV_POOL says so before anything is written
    if max_trials is not None and max_trials < 1:
        raise SweepDefinitionError("max_trials", "must be >= 1", max_trials)
    if pack_size < 1:
        raise SweepDefinitionError("--pack-size", "must be >= 1", pack_size)
    if confirm is not None and fresh:
        raise SweepDefinitionError("--fresh", "would move aside the results to confirm", True)


def _check_confirm_seeds(sweep: Sweep, store: ResultsStore) -> None:
    """Refuse search seeds that ``nnsweep confirm`` already used: those trials would be
    taken as done (same trial ids), and the confirmation's seeds would no longer be fresh."""
    if not store.trials_path.is_file():
        return
    used = {int(r["seed"]) for r in read_rows(store.trials_path) if r.get("phase") == "confirm"}
    clash = sorted(used & set(sweep.seed_list))
    if clash:
        raise located(
            sweep,
            SweepDefinitionError(
                "seeds",
                f"must avoid the seeds nnsweep confirm used in {store.dir} ({_seed_text(clash)}): "
                "declare other seeds, or start over with --fresh",
                sweep.seeds,
            ),
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


def _strategy(
    sweep: Sweep, store: ResultsStore, objective: str, direction: str, slots: int
) -> Strategy:
    """The grid loop, adaptive seeds, hyperband, or a Keras Tuner oracle kept in the
    results folder (asked for up to ``slots`` configurations at once)."""
    if sweep.adaptive is not None:
        from nnsweep.strategies.adaptive import AdaptiveSeedsStrategy

        return AdaptiveSeedsStrategy(sweep, store.trials_path, objective, direction)
    if sweep.strategy == "grid":
        return GridStrategy(sweep)
    if sweep.strategy == "hyperband":
        from nnsweep.strategies.hyperband import HyperbandStrategy

        return HyperbandStrategy(sweep, store.dir, objective, direction)
    oracle = open_local_oracle(make_oracle(sweep, objective, direction), store.dir)
    return TunerStrategy(sweep, oracle, objective, slots=slots)
