"""The run's loop: strategy -> executor -> store.

Batches come from the strategy (one at a time, or several where it is ``concurrent``);
each batch is planned into packs; packs go to the executor while it has free slots; each
trial's row that comes back is appended to the store (the only writer), committed to
pruning's evidence, and shown; a batch whose rows are all written is told to the
strategy. With pruning and several packs in flight, a batch's packs run in *waves* of as
many packs as the executor holds: each pack is judged against the rows of the waves
before its own and its own trials, never against a pack that trained beside it, so the
decisions do not depend on which pack finished first (a resumed run plans the same packs
and waves).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from nnsweep.definition.pruning import RungBook
from nnsweep.definition.sweep import Trial
from nnsweep.run.executors import Done, Job
from nnsweep.strategies._base import WAIT
from nnsweep.training.packing import make_packs


@dataclass
class _Batch:
    """A batch in flight: its trials, the rows written so far, what is still to come."""

    trials: Sequence[Trial]
    rows: dict[str, dict[str, Any]]
    waiting: set[str]
    book: RungBook | None
    whole: bool = True  # False: --max-models cut it (it is not told)
    lost: int = 0  # trials whose pack came back without rows
    waves: dict[int, int] = field(default_factory=dict)  # wave -> packs not yet back


class Loop:
    """One run's loop; ``run()`` trains until the strategy is done, --max-models is
    reached, or Ctrl-C (``KeyboardInterrupt``); ``summary`` says what it did."""

    def __init__(
        self, sweep: Any, run: Any, strategy: Any, done: set[str], progress: Any, log: Any,
        executor: Any, summary: Any, *, max_trials: int | None, pack_size: int,
        book: RungBook | None, keeper: Any = None,
    ) -> None:  # fmt: skip
        self.sweep, self.prepared, self.strategy, self.done = sweep, run, strategy, done
        self.progress, self.log, self.executor, self.summary = progress, log, executor, summary
        self.max_trials, self.pack_size, self.book = max_trials, pack_size, book
        self.keeper = keeper  # run.keep.ModelKeeper, with --keep-models
        self.batches: dict[int, _Batch] = {}
        self.queue: deque[Job] = deque()
        self.promised = 0  # trials queued or in flight: what --max-models counts ahead

    def run(self) -> None:
        source = iter(self.strategy.batches(self.done))
        exhausted = cut = waiting = False
        number = 0
        while True:
            if self.prepared.ctx.stop.is_set():
                raise KeyboardInterrupt
            while not (exhausted or cut or waiting) and self._want_batch():
                batch = next(source, None)
                if batch is None:
                    exhausted = True
                elif batch is WAIT:
                    waiting = True
                else:
                    cut = not self._plan(number, batch)
                    number += 1
            self._submit()
            if not self.executor.in_flight():
                if self.queue:
                    continue  # a wave whose packs all came back: the next one goes now
                if exhausted or cut or waiting:
                    # WAIT with nothing in flight: what it waits for (a batch that lost its
                    # rows, or was cut) cannot come in this run; the next run resumes it.
                    return
                continue
            for done in self.executor.wait():
                self._take(done)
            waiting = False  # a batch may have been told: the strategy may have more

    def _want_batch(self) -> bool:
        if self.batches and not getattr(self.strategy, "concurrent", False):
            return False
        return len(self.queue) < max(self.executor.free(), 0) or not self.batches

    # -- planning ----------------------------------------------------------------------

    def _plan(self, number: int, batch: Sequence[Trial]) -> bool:
        """Plan a batch into packs and queue them; False when --max-models cut it."""
        from nnsweep._keras import backend_name

        have = self.prepared.store.completed_rows(t.trial_id for t in batch)
        bracket = getattr(self.strategy, "rung_book", None)  # hyperband's, per bracket
        book = bracket() if bracket is not None else self.book
        plan = make_packs(
            # With pruning, the whole batch is planned and each pack then loses its done
            # trials: a resumed run trains the same packs (and waves), so each is judged
            # on the same evidence as in one straight run.
            batch if book is not None else [t for t in batch if t.trial_id not in have],
            model=self.sweep.model,
            max_size=self.pack_size,
            input_size=int(math.prod(self.prepared.dataset.spec.input_shape)),
            input_shape=tuple(self.prepared.dataset.spec.input_shape),
            backend=backend_name(),
            whole_configs=book is not None,
        )
        width = self.executor.slots if book is not None else len(plan) or 1
        jobs = []
        for i, pack in enumerate(plan):
            pending = tuple(t for t in pack if t.trial_id not in have)
            if pending:
                jobs.append((replace(pack, trials=pending), i // width, pack))
        whole = True
        if self.max_trials is not None:
            room = self.max_trials - len(self.summary.rows) - self.promised
            whole = room >= sum(len(p) for p, _, _ in jobs)
            jobs = _first(jobs, room)
        state = _Batch(batch, dict(have), {t.trial_id for p, _, _ in jobs for t in p}, book)
        state.whole = whole
        self.batches[number] = state
        for pack, wave, full in jobs:
            state.waves[wave] = state.waves.get(wave, 0) + 1
            beside = frozenset(
                t.trial_id for p, w, f in jobs if w == wave and f is not full for t in f
            )
            self.queue.append(Job(pack, book, number, wave, beside))
            self.promised += len(pack)
        if not jobs:
            self._finish(number)
        return whole

    def _submit(self) -> None:
        while self.queue and self.executor.free() > 0:
            job = self.queue[0]
            state = self.batches[job.batch]
            if any(w < job.wave and n for w, n in state.waves.items()):
                return  # the waves before it are still training: its evidence is not in
            self.queue.popleft()
            if job.book is not None and self.executor.slots > 1:
                # What it is judged on: the committed rows, less its wave's other packs
                # (some may already be on disk, in a resumed run).
                job.book = job.book.without(job.beside)
            self.progress.pack_start(job.pack)
            self.summary.packs += 1
            self.executor.submit(job)

    # -- results -----------------------------------------------------------------------

    def _take(self, done: Done) -> None:
        state = self.batches[done.job.batch]
        self.promised -= 1
        tid = done.trial.trial_id
        state.waiting.discard(tid)
        if done.row is None:
            state.lost += 1
            self.summary.lost.append(f"{tid}: {done.lost}")
        else:
            if not self.executor.live:
                # A pack trained elsewhere: its epochs reach the hooks (and TensorBoard) now.
                for h in done.history:
                    logs = {k: v for k, v in h.items() if k not in _KEYS}
                    self.progress.epoch_end(done.trial, int(h["epoch"]), logs)
            if self.prepared.store.append(done.row, done.history):
                if state.book is not None:  # decisions count once their rows are on disk
                    state.book.commit(done.row, done.history)
                self.summary.rows.append(done.row)
                self.progress.trial_end(done.trial, done.row)
                if self.keeper is not None:
                    self.keeper.offer(done.trial, done.row, done.weights)
            elif self.log is not None:
                self.log.abandon(tid)  # a second row of a trial (a pack Ray ran twice)
            state.rows[tid] = done.row
        if done.trial is done.job.pack[-1]:  # the pack is back whole
            state.waves[done.job.wave] -= 1
            if self.keeper is not None:  # its rows are on disk: the ranking counts them
                self.keeper.pack_done()
        if not state.waiting:
            self._finish(done.job.batch)

    def _finish(self, number: int) -> None:
        state = self.batches.pop(number)
        if state.whole and not state.lost:
            rows = [state.rows[t.trial_id] for t in state.trials if t.trial_id in state.rows]
            self.strategy.tell(state.trials, rows)


_KEYS = frozenset({"trial_id", "config_id", "seed", "fold", "epoch"})


def _first(jobs: list[tuple[Any, int, Any]], n: int) -> list[tuple[Any, int, Any]]:
    """The jobs' first ``n`` trials, in order (the last pack cut short where it falls)."""
    out = []
    for pack, wave, full in jobs:
        if n <= 0:
            break
        out.append((replace(pack, trials=tuple(pack)[:n]), wave, full))
        n -= len(out[-1][0])
    return out
