"""What a run shows while it trains: the hooks a front end overrides (``Progress``), and
the command line's one progress line on stderr (``ProgressLine``)."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from nnsweep.definition.sweep import Sweep, Trial


class Progress:
    """Hooks a front end overrides to show a run's progress; all do nothing here."""

    def start(self, sweep: Sweep, total: int | None, done: int) -> None: ...

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

    def start(self, sweep: Any, total: int | None, done: int) -> None:
        self.total, self.done, self.swept = total, done, sweep.swept
        self.t0 = time.monotonic()
        # Printed once the sweep, its data and its results folder have passed every check,
        # so that bad input gives one line: the error.
        question = sweep.description.splitlines()[0] if sweep.description else ""
        click.echo(f"sweep {sweep.name}: {question}".rstrip(": "), err=True)
        todo = f"{total - done} to train" if total is not None else "searching"
        click.echo(f"{done} of {total if total is not None else '?'} trials done; {todo}", err=True)

    def pack_start(self, pack: Sequence[Any]) -> None:
        configs = {t.config_id: t for t in pack}
        t = next(iter(configs.values()))
        params = " ".join(f"{k}={t.params[k]}" for k in self.swept)
        if len(configs) == 1:
            seeds = ",".join(str(x.seed) for x in pack)
            self.current = f"{params} seed={seeds}".strip()
        else:
            self.current = f"{len(pack)} trials as one pack ({params}, ...)"
        self._draw("")

    def epoch_end(self, trial: Any, epoch: int, logs: dict[str, float]) -> None:
        if self.verbose:
            params = " ".join(f"{k}={trial.params[k]}" for k in self.swept)
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
        status = row["status"]
        if status == "ok":
            keys = [k for k in row if k.startswith("test_") and k != "test_loss"]
            what = (
                f"{keys[0]}={row[keys[0]]:.4f}" if keys and row.get(keys[0]) is not None else "ok"
            )
        elif status == "pruned":
            what = f"pruned at epoch {row['epochs_run']}"
        else:
            what = f"{status}: {row['error']}"
        params = " ".join(f"{k}={trial.params[k]}" for k in self.swept)
        line = f"{params} seed={trial.seed}".strip()
        if self.tty:
            sys.stderr.write("\r\033[K")
        click.echo(f"{self._counter()} {line} -> {what}", err=True)
        if self.tty:
            self._draw("")

    def _counter(self) -> str:
        elapsed = time.monotonic() - self.t0
        if self.total:
            width = len(str(self.total))
            left = self.total - self.done
            eta = elapsed / self.new * left if self.new else None
            pct = 100 * self.done / self.total
            return (
                f"[{self.done:>{width}}/{self.total}] {pct:3.0f}% {clock(elapsed)} elapsed, "
                f"eta {clock(eta) if eta is not None else '?'} |"
            )
        return f"[{self.done}] {clock(elapsed)} elapsed |"

    def _draw(self, extra: str) -> None:
        if not self.tty:
            return
        text = f"{self._counter()} training {self.current} {extra}".rstrip()
        width = os.get_terminal_size(sys.stderr.fileno()).columns if self.tty else 120
        sys.stderr.write("\r\033[K" + text[: width - 1])
        sys.stderr.flush()


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
