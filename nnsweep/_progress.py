"""What a run shows while it trains: the hooks a front end overrides (``Progress``), the
command line's one progress line on stderr (``ProgressLine``) and a run's closing lines."""

from __future__ import annotations

import inspect
import math
import numbers
import os
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from nnsweep.definition.sweep import Sweep, Trial


class Progress:
    """Hooks a front end overrides to show a run's progress; all do nothing here."""

    def start(
        self, sweep: Sweep, total: int | None, done: int, *, objective: str | None = None
    ) -> None:
        """A run begins: ``total`` trials planned (None: a search), ``done`` already in its
        table; ``objective``, the validation metric that ranks (a row's ``best_<objective>``)."""

    def pack_start(self, pack: Sequence[Trial]) -> None: ...

    def epoch_end(self, trial: Trial, epoch: int, logs: dict[str, float]) -> None: ...

    def pack_fallback(self, pack: Sequence[Trial], error: BaseException) -> None:
        """A pack failed as a whole; its trials train again one by one."""

    def trial_end(self, trial: Trial, row: dict[str, Any]) -> None: ...


class ProgressLine(Progress):
    """A one-line progress display: count, elapsed, ETA and the running trial."""

    def __init__(self, verbose: bool = False, debug: bool = False) -> None:
        self.verbose, self.debug = verbose, debug
        self.tty = sys.stderr.isatty()
        self.total: int | None = None
        self.done = 0
        self.new = 0
        self.t0 = time.monotonic()
        self.current = ""
        self.swept: tuple[str, ...] = ()
        self.objective: str | None = None
        # The ETA's basis: the trials of a pack come back together, so it is extrapolated
        # from whole packs back (their count and sizes), as of the last one's return.
        self._pack_of: dict[str, int] = {}  # trial id -> its pack's number
        self._sizes: list[int] = []  # trials per pack started
        self._back: set[int] = set()  # packs with rows back
        self._last_back = 0.0  # seconds from t0 to the last pack's return

    def start(
        self, sweep: Any, total: int | None, done: int, *, objective: str | None = None
    ) -> None:
        self.total, self.done, self.swept = total, done, sweep.swept
        self.objective = objective
        self.t0 = time.monotonic()
        # Printed once the sweep, its data and its results folder have passed every check,
        # so that bad input gives one line: the error.
        question = sweep.description.splitlines()[0] if sweep.description else ""
        click.echo(f"sweep {sweep.name}: {question}".rstrip(": "), err=True)
        todo = f"{total - done} to train" if total is not None else "searching"
        click.echo(f"{done} of {total if total is not None else '?'} trials done; {todo}", err=True)

    def pack_start(self, pack: Sequence[Any]) -> None:
        for x in pack:
            self._pack_of[x.trial_id] = len(self._sizes)
        self._sizes.append(len(pack))
        configs = {t.config_id: t for t in pack}
        t = next(iter(configs.values()))
        params = param_text(t.params, self.swept)
        if len(configs) == 1:
            seeds = ",".join(str(x.seed) for x in pack)
            self.current = f"{params} seed={seeds}".strip()
        else:
            self.current = f"{len(pack)} trials as one pack ({params}, ...)"
        self._draw("")

    def epoch_end(self, trial: Any, epoch: int, logs: dict[str, float]) -> None:
        if self.verbose:
            params = param_text(trial.params, self.swept)
            values = " ".join(f"{k} {v:.4f}" for k, v in logs.items())
            self._print(f"  epoch {epoch}: {params} seed={trial.seed}: {values}")
        elif self.tty:
            self._draw(f"epoch {epoch}")

    def pack_fallback(self, pack: Sequence[Any], error: BaseException) -> None:
        from nnsweep.training.train import first_line

        if self.debug:
            traceback.print_exception(error)
        self._print(
            f"warning: a pack of {len(pack)} trials failed as a whole "
            f"({type(error).__name__}: {first_line(str(error))}); training them one by one"
        )

    def _print(self, line: str) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
        click.echo(line, err=True)
        if self.tty:
            self._draw("")

    def trial_end(self, trial: Any, row: dict[str, Any]) -> None:
        self.done += 1
        self.new += 1
        pack = self._pack_of.pop(trial.trial_id, None)
        if pack is not None and pack not in self._back:
            self._back.add(pack)
            self._last_back = time.monotonic() - self.t0
        status = row["status"]
        if status == "ok":
            what = self._objective_text(row)
        elif status == "pruned":
            what = f"pruned at epoch {row['epochs_run']}"
        else:
            what = f"{status}: {row['error']}"
        line = f"{param_text(trial.params, self.swept)} seed={trial.seed}".strip()
        if self.tty:
            sys.stderr.write("\r\033[K")
        click.echo(f"{self._counter()} {line} -> {what}", err=True)
        if self.tty:
            self._draw("")

    def _objective_text(self, row: dict[str, Any]) -> str:
        """``best_val_accuracy=0.9743``: the value that ranks the trial (its test metric is
        no part of the choice)."""
        if self.objective is not None:
            key: str | None = f"best_{self.objective}"
        else:  # a caller that does not say: the row's one best_ column names it
            key = next((k for k in row if k.startswith("best_") and k != "best_epoch"), None)
        value = row.get(key) if key is not None else None
        if key is None or not isinstance(value, (int, float)) or math.isnan(value):
            return "ok"
        return f"{key}={value:.4f}"

    def eta(self) -> float | None:
        """Seconds left, from the packs back so far (None before the first: no basis yet)."""
        if not self.total or not self._back:
            return None
        back = [self._sizes[i] for i in self._back]
        left = self.total - (self.done - self.new) - sum(back)
        if left <= 0:
            return 0.0
        packs_left = math.ceil(left / (sum(back) / len(back)))
        at_last = self._last_back / len(back) * packs_left
        return max(at_last - (time.monotonic() - self.t0 - self._last_back), 0.0)

    def _counter(self) -> str:
        elapsed = time.monotonic() - self.t0
        if self.total:
            width = len(str(self.total))
            eta = self.eta()
            pct = 100 * self.done / self.total
            return (
                f"[{self.done:>{width}}/{self.total}] {pct:3.0f}% {clock(elapsed)} elapsed"
                + (f", eta {clock(eta)}" if eta is not None else "")
                + " |"
            )
        return f"[{self.done}] {clock(elapsed)} elapsed |"

    def _draw(self, extra: str) -> None:
        if not self.tty:
            return
        text = f"{self._counter()} training {self.current} {extra}".rstrip()
        width = os.get_terminal_size(sys.stderr.fileno()).columns if self.tty else 120
        sys.stderr.write("\r\033[K" + text[: width - 1])
        sys.stderr.flush()


def print_summary(summary: Any) -> None:
    """The closing lines of a run: what trained, in how many packs, what fell back."""
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts.items())) or "nothing new"
    packs = f" in {summary.packs} pack{'s' if summary.packs != 1 else ''}" if summary.packs else ""
    fallbacks = ""
    if summary.fallbacks:
        fallbacks = (
            f"; {summary.fallbacks} of them failed as a whole and trained one by one "
            "(see the warnings above)"
        )
    click.echo(
        f"trained {len(summary.rows)} trials{packs} in {clock(summary.seconds)} ({counts}); "
        f"{summary.done_before} were already done{fallbacks}",
        err=True,
    )
    for note in summary.notes:
        click.echo(note, err=True)
    if summary.remaining:
        click.echo(f"{summary.remaining} trials remain; run the same command to go on", err=True)


def start_progress(
    progress: Progress, sweep: Any, total: int | None, done: int, objective: str
) -> None:
    """``progress.start`` with the objective where its front end takes it: a ``start``
    written before the keyword (three arguments) still works."""
    params = inspect.signature(progress.start).parameters
    if "objective" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        progress.start(sweep, total, done, objective=objective)
    else:
        progress.start(sweep, total, done)


def value_text(value: Any) -> str:
    """A hyperparameter value for a line of text: floats compactly (0.001, not
    0.0010000000000000002), everything else as it is."""
    real = isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)
    return f"{value:g}" if real else str(value)


def param_text(params: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``hidden_units=64 learning_rate=0.001``: the ``keys`` of ``params`` for one line."""
    return " ".join(f"{k}={value_text(params[k])}" for k in keys)


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
