"""The CSV tables' files, written so that nothing is lost: appends flushed and fsynced, whole
files replaced atomically, signals held back during a write, torn last lines cut off, and
reading that checks every line (``nnsweep.store.results`` builds the store on these)."""

from __future__ import annotations

import csv
import io
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnsweep.errors import (
    CorruptResultsError,
    ResultsError,
)

if TYPE_CHECKING:
    pass


TRIALS = "trials.csv"  # its trial ids must be unique (checked on every read)


_DEFERRED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back during a block; they take effect as soon as it ends.

    Python runs signal handlers in the main thread whichever thread the kernel picked, so
    swapping the handlers (not masking this thread) is what defers them.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous: dict[int, Any] = {}
    for sig in _DEFERRED:
        handler = signal.getsignal(sig)
        if handler is None:  # installed outside Python: leave it alone
            continue
        previous[sig] = signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(received):
            signal.raise_signal(number)


def _append(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    unknown = set().union(*rows) - set(columns)
    if unknown:
        raise ResultsError(f"internal: row has columns not in {path.name}: {sorted(unknown)}")
    new = not path.exists() or path.stat().st_size == 0
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    if new:
        writer.writeheader()
    writer.writerows(rows)
    # One write call per trial keeps a kill from interleaving half rows.
    try:
        with open(path, "a", encoding="utf-8", newline="") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        # A part of the row may be on disk: the next run cuts that torn line.
        raise _write_error(path, exc) from exc
    if new:
        _fsync_dir(path.parent)  # the new file's name, too, outlives a power cut


def _rewrite(path: Path, columns: list[str] | None, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns or [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_whole(path, buf.getvalue())


def write_text_whole(path: Path, text: str) -> None:
    """``text`` into ``path`` whole or not at all: a temporary file renamed, so a kill or a
    full disk leaves the old file (a failure is a ResultsError that names it)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)  # the original is untouched
        raise _write_error(path, exc) from exc
    _fsync_dir(path.parent)


def _write_error(path: Path, exc: OSError) -> ResultsError:
    """A failed write as one line that names the file (an OSError from write() does not)."""
    reason = exc.strerror or str(exc)
    return ResultsError(
        f"cannot write {path}: {reason}; what was written before is kept "
        "(free space or fix the permissions, then run again to resume)"
    )


def _fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a new or renamed file) durable, where the OS allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _cut_torn_line(path: Path) -> None:
    """Drop a last line that a kill left without its newline."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())


def _complete_text(path: Path) -> str:
    """A table's text up to its last newline: a torn last line (a kill mid-write) is left
    out, as a resume would cut it. Reading never changes the file."""
    if not path.exists():
        return ""
    if not path.is_file():
        raise CorruptResultsError(f"{path} is not a file; use --fresh to start over")
    try:
        data = path.read_bytes()
        return data[: data.rfind(b"\n") + 1].decode("utf-8")
    except OSError as exc:
        raise CorruptResultsError(f"{path} cannot be read: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CorruptResultsError(
            f"{path} cannot be parsed: not UTF-8 text ({exc.reason} at byte {exc.start})"
            "; use --fresh to start over"
        ) from exc


def _read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and complete rows of a results table (empty when there is none)."""
    return _parse_table(path, _complete_text(path))


def _parse_table(path: Path, text: str) -> tuple[list[str], list[dict[str, str]]]:
    if not text:
        return [], []
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = list(reader)
        header = list(reader.fieldnames or [])
    except csv.Error as exc:
        raise CorruptResultsError(f"{path} cannot be parsed: {exc}; use --fresh") from exc
    if "trial_id" not in header:
        raise CorruptResultsError(f"{path} has no trial_id column; use --fresh to start over")
    for i, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            fields = sum(k is not None and v is not None for k, v in row.items())
            fields += len(row.get(None, []))
            raise CorruptResultsError(
                f"{path}:{i}: row has {fields} fields, header has "
                f"{len(header)}; use --fresh to start over"
            )
    if path.name == TRIALS:
        first: dict[str, int] = {}
        for i, row in enumerate(rows, start=2):
            line = first.setdefault(row["trial_id"], i)
            if line != i:  # one trial counted twice would skew every mean and count
                raise CorruptResultsError(
                    f"{path}:{i}: trial {row['trial_id']} is already on line {line}; "
                    "delete one of the two lines (or use --fresh to start over)"
                )
    return header, rows
