"""The results store: append-safe CSVs under ``results/<sweep>/``, resume, locking.

A trial's history rows are written before its trials.csv row, and each write is flushed
and fsynced: a row in trials.csv means the trial is complete. On open, a torn last line
(a kill mid-write) is cut off and history rows without a trial row are dropped. Readers
(``load_results``, ``nnsweep show``) skip a torn last line and change nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnsweep.definition.space import stable_name
from nnsweep.errors import (
    CorruptResultsError,
    ResultsError,
    ResultsLockedError,
    ResultsMismatchError,
)
from nnsweep.store._table_files import (
    TRIALS,
    _append,
    _cut_torn_line,
    _read_table,
    _rewrite,
    _signals_deferred,
    _write_error,
    write_text_whole,
)
from nnsweep.store.provenance import RUNS, log_run

if TYPE_CHECKING:
    pass


from nnsweep.store._layout import (
    BASE_COLUMNS,
    DEFAULT_RESULTS,
    HISTORY,
    HISTORY_KEYS,
    LATE_COLUMNS,
    LOCK,
    PHASE,
    RUN_COLUMNS,
    SWEEP_JSON,
    TAIL_COLUMNS,
    history_columns,
    trial_columns,
    with_late_columns,
)
from nnsweep.store._readers import (
    list_result_dirs,
    load_history,
    load_results,
    load_sweep_json,
    quick_looks,
    read_rows,
    results_dir_for,
)

__all__ = [  # the store, its layout and its readers: importable from here
    "BASE_COLUMNS", "DEFAULT_RESULTS", "HISTORY", "HISTORY_KEYS", "LATE_COLUMNS", "LOCK",
    "PHASE", "RUN_COLUMNS", "SWEEP_JSON", "TAIL_COLUMNS", "TRIALS", "ResultsStore",
    "history_columns", "list_result_dirs", "load_history", "load_results", "load_sweep_json",
    "locked", "quick_looks", "read_rows", "results_dir_for", "trial_columns",
    "with_late_columns",
]  # fmt: skip


class ResultsStore:
    """One sweep's results folder, held under an exclusive lock while a run writes to it."""

    def __init__(self, root: str | Path, name: str) -> None:
        self.root = Path(root)
        self.dir = self.root / name
        self._written: set[str] = set()  # trial ids in trials.csv: a second row is dropped
        self._lock_fd: int | None = None
        self._trial_columns: list[str] | None = None
        self._history_columns: list[str] | None = None
        self.appended = 0  # trials written since open(): what an interrupted run reports
        self._upgrade = False  # an older trials.csv without the phase column

    @property
    def trials_path(self) -> Path:
        return self.dir / TRIALS

    @property
    def history_path(self) -> Path:
        return self.dir / HISTORY

    # -- opening ----------------------------------------------------------------------

    def check_writable(self) -> None:
        """Fail early, writing nothing, when the results folder cannot be created or written."""
        probe = self.dir if self.dir.exists() else self.root
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir():
            raise ResultsError(f"results path {probe} is not a folder")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise ResultsError(f"results folder {probe} is not writable")

    def open(
        self,
        sweep_json: dict[str, Any],
        trial_columns: list[str],
        history_columns: list[str],
        *,
        fresh: bool = False,
    ) -> set[str]:
        """Lock the folder, check it matches the sweep, repair it; return done trial ids.

        Every check that can refuse (an incompatible sweep, corrupt or foreign tables, a
        live holder of the lock) runs before anything in the folder changes. ``fresh``
        moves an existing folder aside instead of checking it.
        """
        self.check_writable()
        self._trial_columns = trial_columns
        self._history_columns = history_columns
        if not fresh:
            old = self._read_sweep_json()
            if old is not None:
                _check_compatible(old, sweep_json, self.dir)
            # Read-only: a concurrent writer only appends, and a torn last line is skipped.
            self._check_tables()
        if self.dir.exists():
            self._lock()
            if fresh:
                self._unlock()
                self.move_aside()
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._lock_fd is None:
            self._lock()
        done = self._repair()
        write_text_whole(
            self.dir / SWEEP_JSON,
            json.dumps(sweep_json, indent=2, default=stable_name, ensure_ascii=False) + "\n",
        )
        self.log_run(sweep_json.get("versions", {}))
        self._written = set(done)
        return done

    def log_run(self, versions: dict[str, Any], who: str | None = None) -> None:
        """A line in runs.jsonl for a process that trains this sweep's rows (this one, or a
        Ray worker the first time its rows come back)."""
        try:
            log_run(self.dir, versions, who)
        except OSError as exc:
            raise _write_error(self.dir / RUNS, exc) from exc

    def move_aside(self) -> Path:
        """Rename the folder to ``<name>.old-<time>`` (``--fresh`` never deletes)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.dir.with_name(f"{self.dir.name}.old-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.dir.with_name(f"{self.dir.name}.old-{stamp}-{n}")
        self.dir.rename(target)
        return target

    def _read_sweep_json(self) -> dict[str, Any] | None:
        path = self.dir / SWEEP_JSON
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CorruptResultsError(f"{path} cannot be read: {exc}; use --fresh") from exc
        if not isinstance(data, dict):
            raise CorruptResultsError(f"{path} does not hold a sweep (a JSON object); use --fresh")
        return data

    def _lock(self, advice: str = "wait for it or stop it") -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ResultsLockedError(f"{self.dir} is in use by {holder}; {advice}") from None
        # The kernel drops a flock when its process dies, so a dead holder never blocks.
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def close(self) -> None:
        """Release the lock (the lock file stays; it is harmless when unlocked)."""
        self._unlock()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- repair and resume ------------------------------------------------------------

    def _check_tables(self) -> tuple[list[str], list[dict[str, str]], list[str], list[dict]]:
        """Parse both tables (a torn last line skipped) and refuse foreign columns."""
        header, trials = _read_table(self.trials_path)
        expected = set(self._trial_columns or [])
        late = [c for c in LATE_COLUMNS if c not in header]
        if trials and late and set(header) | set(late) == expected:
            # An older table: _repair writes the columns it lacks.
            header = with_late_columns(header)
            for row in trials:
                for column in late:
                    row[column] = LATE_COLUMNS[column]
            self._upgrade = True
        if trials and set(header) == set(self._trial_columns or []):
            # The same columns in another order (the space's keys reordered): keep the
            # table's order, since rows are written by name.
            self._trial_columns = list(header)
        if trials and header != self._trial_columns:
            missing = [c for c in self._trial_columns or [] if c not in header]
            extra = [c for c in header if c not in (self._trial_columns or [])]
            raise ResultsMismatchError(
                f"{self.trials_path} has other columns than this sweep writes "
                f"(missing: {', '.join(missing) or 'none'}; extra: {', '.join(extra) or 'none'})"
                "; use --fresh to move the old results aside and start over"
            )
        hist_header, history = _read_table(self.history_path)
        done = {r["trial_id"] for r in trials}
        if hist_header != self._history_columns and any(r["trial_id"] in done for r in history):
            raise ResultsMismatchError(
                f"{self.history_path} has other columns than this sweep writes "
                f"({', '.join(hist_header)}); use --fresh to move the old results aside"
            )
        return header, trials, hist_header, history

    def _repair(self) -> set[str]:
        """Under the lock: undo what a kill left half done; return the completed trial ids."""
        for name in (TRIALS, HISTORY, SWEEP_JSON):
            # A kill inside write_text_whole leaves its temporary file; the original is intact.
            (self.dir / (name + ".tmp")).unlink(missing_ok=True)
        header, trials, hist_header, history = self._check_tables()
        _cut_torn_line(self.trials_path)
        _cut_torn_line(self.history_path)
        if self._upgrade:
            _rewrite(self.trials_path, self._trial_columns, trials)
        if header and not trials and header != self._trial_columns:
            # Only a header (its first row was torn off): nothing to keep, start it anew.
            self.trials_path.unlink()
        done = {r["trial_id"] for r in trials}
        kept = [r for r in history if r["trial_id"] in done]
        if len(kept) != len(history) or (hist_header and hist_header != self._history_columns):
            # Orphan epochs belong to a trial that did not finish: it will run again.
            _rewrite(self.history_path, self._history_columns, kept)
        return done

    # -- appending --------------------------------------------------------------------

    def append(self, row: dict[str, Any], history: Iterable[dict[str, Any]]) -> bool:
        """Write one finished trial: its epochs first, then its row (the commit marker).

        False (nothing written) for a trial that already has its row: a pack that Ray ran
        twice (its worker died after it had sent its rows) brings each of its trials again.
        """
        assert self._trial_columns is not None, "open() the store first"
        if row["trial_id"] in self._written:
            return False
        # Ctrl-C (or a polite kill) waits until the trial is written whole: its epochs
        # without its row would be dropped on resume, and the finished trial trained again.
        with _signals_deferred():
            assert self._history_columns is not None, "open() the store first"
            _append(self.history_path, self._history_columns, list(history))
            _append(self.trials_path, self._trial_columns, [row])
            self.appended += 1
            self._written.add(row["trial_id"])
        return True

    def completed_rows(self, trial_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """The rows already written for these trials (by this run or an earlier one), by
        trial id."""
        wanted = set(trial_ids)
        return {r["trial_id"]: r for r in read_rows(self.trials_path) if r["trial_id"] in wanted}


@contextmanager
def locked(folder: str | Path, advice: str) -> Iterator[None]:
    """Hold a sweep folder's lock, the one a run holds, while a command other than a run
    rewrites files in it (``nnsweep tensorboard``). While a live process holds it, raise
    ResultsLockedError (``advice`` says what to do) before anything changes."""
    store = ResultsStore(Path(folder).parent, Path(folder).name)
    store._lock(advice)
    try:
        yield
    finally:
        store.close()


def _check_compatible(old: dict[str, Any], new: dict[str, Any], where: Path) -> None:
    before, after = old.get("fingerprint", {}), new.get("fingerprint", {})
    changed = list(_differences(before, after))
    if changed:
        details = "; ".join(changed)
        raise ResultsMismatchError(
            f"the sweep changed what every trial depends on since {where} was written "
            f"({details}); run with --fresh to move the old results aside and start over"
        )


# Fingerprint entries that only some runs record: compared when both runs recorded them
# (an older nnsweep wrote none; --no-prune judges nothing).
_WHEN_BOTH = ("data_content", "objective", "strategy", "searched", "search_seed")


def _differences(before: dict[str, Any], after: dict[str, Any]) -> Iterator[str]:
    """``name: old -> new`` for each fingerprint entry that changed; dicts entry by entry."""
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new or (key in _WHEN_BOTH and (key not in before or key not in after)):
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            name = "space" if key == "fixed" else key  # as the user wrote it: space['epochs']
            for sub in sorted(set(old) | set(new)):
                if old.get(sub) != new.get(sub):
                    yield f"{name}[{sub!r}]: {old.get(sub)!r} -> {new.get(sub)!r}"
        else:
            yield f"{key}: {old!r} -> {new!r}"
