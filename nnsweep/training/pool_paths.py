"""Which of two exact ways a stacked CNN pools its few-channel convolutions on this machine.

A max pool taken before a monotone activation can be TensorFlow's max pool of the full
convolution or the maximum of the pool's strided convolutions (``_pool``). Same forward
bits, gradients equal to rounding; which is faster depends on the processor (measured: the
strided ones 28 against 50 ms a step on one 2-core CPU, TensorFlow's max pool 13 against
18 ms on an AVX-512 one). So each convolution shape is timed both ways once per machine and
the choice kept in a cache file, so that reruns and resumed sweeps on the machine take the
same path; the run's summary names the path. No TensorFlow here (the runner reads it).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nnsweep.errors import NnsweepError

ENV = "NNSWEEP_CONV_POOL"  # strided | maxpool force a path; measure (the default) times both
CACHE_ENV = "NNSWEEP_CACHE_DIR"
CACHE_FILE = "pool_paths.json"
STRIDED, MAX_POOL = "strided", "max pool"
_FORCED = {"strided": STRIDED, "maxpool": MAX_POOL, "measure": None}
NAMES = {STRIDED: "the pool's strided convolutions", MAX_POOL: "TensorFlow's max pool"}
# The strided convolutions must win by this much: TensorFlow's own max pool is the plainer
# program, and a near-tie should not flip between machines of one kind.
_MARGIN = 0.95
_FORMAT = 1
_SHOWN = 3  # summary lines about shapes; more are counted


@dataclass(frozen=True)
class ConvShape:
    """One convolution a stack pools first: its input batch, kernel and pool."""

    batch: int
    rows: int
    cols: int
    channels: int
    filters: int
    size: int
    padding: str  # "VALID" or "SAME"
    pool: int
    input_grad: bool  # a later convolution also passes its gradient back to its input

    def key(self) -> str:
        return (
            f"{self.batch}x{self.rows}x{self.cols}x{self.channels} f{self.filters} "
            f"k{self.size} {self.padding.lower()} p{self.pool}{' dx' if self.input_grad else ''}"
        )

    def text(self) -> str:
        return (
            f"{self.batch} maps of {self.rows}x{self.cols}x{self.channels}, {self.filters} "
            f"filters {self.size}x{self.size} {self.padding.lower()}, pool {self.pool}"
        )


@dataclass(frozen=True)
class Choice:
    """The path one shape takes, and how it was decided: forced, measured now, or kept."""

    shape: ConvShape
    path: str
    how: str  # "forced", "measured" or "kept"
    ms: dict[str, float] | None = None  # a step's milliseconds by path
    measured_at: str = ""
    where: Path | None = None
    problem: str = ""  # the cache could not be read, or the choice not kept
    host: str = field(default_factory=socket.gethostname)  # where it was taken (Ray)


_memo: dict[tuple[str, str], Choice] = {}  # this process's choices
_used: dict[str, Choice] = {}  # those taken since the last ``drain``, by shape


def forced() -> str | None:
    """The path ``NNSWEEP_CONV_POOL`` forces (None: measured); a bad value is an error."""
    value = os.environ.get(ENV, "").strip().lower()
    if not value:
        return None
    if value not in _FORCED:
        raise NnsweepError(f"{ENV} must be one of strided, maxpool, measure; got {value!r}")
    return _FORCED[value]


def cache_path() -> Path:
    """``$NNSWEEP_CACHE_DIR``, else ``$XDG_CACHE_HOME/nnsweep``, else ``~/.cache/nnsweep``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / CACHE_FILE
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nnsweep" / CACHE_FILE


def choose(
    shape: ConvShape, machine: str, measure: Callable[[ConvShape], dict[str, float]]
) -> Choice:
    """The path for ``shape`` on ``machine`` (processor, libraries, threads, devices):
    forced, decided before in this process, kept in the cache, or ``measure``d now."""
    path = forced()
    memo_key = (machine, shape.key())
    if path is not None:
        choice = Choice(shape, path, "forced")
    elif memo_key in _memo:
        choice = replace(_memo[memo_key], how="kept")  # measured by an earlier run
    else:
        where = cache_path()
        table, problem = _read(where)
        kept = table.get(machine, {}).get(shape.key())
        if kept is not None and _valid(kept):
            choice = Choice(shape, kept["path"], "kept", kept["ms"], kept["at"], where, problem)
        else:
            ms = measure(shape)
            path = STRIDED if ms[STRIDED] < _MARGIN * ms[MAX_POOL] else MAX_POOL
            at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            entry = {"path": path, "ms": ms, "at": at}
            problem = _keep(where, machine, shape.key(), entry) or problem
            choice = Choice(shape, path, "measured", ms, at, where, problem)
        _memo[memo_key] = choice
    note(choice)
    return choice


def note(choice: Choice) -> None:
    """Count ``choice`` as taken in this run: again (a pack that reuses its traced
    program), or by a Ray task for this driver."""
    _used.setdefault(f"{choice.host} {choice.shape.key()}", choice)


def taken() -> list[Choice]:
    """The choices taken since the last call (a Ray task sends its driver these)."""
    choices = list(_used.values())
    _used.clear()
    return choices


def drain() -> list[str]:
    """Lines for a run's summary: each pool path taken since the last call, and why."""
    choices = taken()
    lines = [describe(c) for c in choices[:_SHOWN]]
    if len(choices) > _SHOWN:
        rest = choices[_SHOWN:]
        counts = {p: sum(c.path == p for c in rest) for p in (MAX_POOL, STRIDED)}
        lines.append(
            f"cnn pool: {len(rest)} more convolution shapes, "
            + ", ".join(f"{n} by {NAMES[p]}" for p, n in counts.items() if n)
        )
    for problem in dict.fromkeys(c.problem for c in choices if c.problem):
        lines.append(f"warning: {problem}")
    return lines


def describe(choice: Choice) -> str:
    """One line: the shape, the path it takes, and why."""
    head = f"cnn pool ({choice.shape.text()}): {NAMES[choice.path]}"
    if choice.how == "forced":
        return f"{head} ({ENV}={os.environ.get(ENV, '').strip()})"
    assert choice.ms is not None
    other = STRIDED if choice.path == MAX_POOL else MAX_POOL
    mine, theirs = choice.ms[choice.path], choice.ms[other]
    times = f"{mine:.1f} against {theirs:.1f} ms a step for {NAMES[other]}"
    when = "now" if choice.how == "measured" else f"at {choice.measured_at}"
    return f"{head}, {times}, measured on {choice.host} {when} (kept in {choice.where})"


def _valid(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and entry.get("path") in NAMES
        and isinstance(entry.get("ms"), dict)
        and all(isinstance(entry["ms"].get(p), (int, float)) for p in NAMES)
        and isinstance(entry.get("at"), str)
    )


def _read(where: Path) -> tuple[dict[str, dict[str, Any]], str]:
    """The cache's choices by machine, and what was wrong with the file ("" if nothing)."""
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, ""
    except (OSError, ValueError) as exc:
        return {}, f"the pool paths' cache {where} could not be read ({exc}); measured again"
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return {}, f"the pool paths' cache {where} is not one this version writes; measured again"
    machines = data.get("machines")
    if not isinstance(machines, dict) or not all(isinstance(v, dict) for v in machines.values()):
        return {}, f"the pool paths' cache {where} is malformed; measured again"
    return machines, ""


def _keep(where: Path, machine: str, key: str, entry: dict[str, Any]) -> str:
    """Add one choice to the cache, the file replaced whole (another process may have
    added its own since it was read: read again first). Returns what failed, or "".
    Not ``store``'s ``write_text_whole``: its one temporary name would let two Ray
    workers of one machine write into the same file at once."""
    machines, _ = _read(where)
    machines.setdefault(machine, {})[key] = entry
    text = json.dumps({"format": _FORMAT, "machines": machines}, indent=1, sort_keys=True)
    tmp = None
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where.parent, prefix=where.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, where)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return (
            f"the measured pool path could not be kept in {where} ({exc.strerror or exc}); "
            f"each run measures it again (set {CACHE_ENV} to a writable folder)"
        )
    return ""
