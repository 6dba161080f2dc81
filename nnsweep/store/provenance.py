"""Which run trained which rows: ``runs.jsonl`` beside a sweep's tables.

``sweep.json`` describes the sweep as its latest run saw it. Each run (a local run, or each
worker) also appends one line to ``runs.jsonl``: its process (``host:pid``, the same value
as the rows' ``worker`` column), when it started, and the library versions it ran with. So
a table resumed after an upgrade can tell which trials trained under which versions, and
``report`` and ``diff`` warn when one table mixes them.
"""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RUNS = "runs.jsonl"


def this_process() -> str:
    """``host:pid``, as the rows' ``worker`` column names the process that trained them."""
    return f"{socket.gethostname()}:{os.getpid()}"


def log_run(folder: Path, versions: dict[str, Any], who: str | None = None) -> None:
    """Append the line of this run, or of ``who`` (a Ray worker's ``host:pid``): one write,
    flushed and fsynced, like a results row."""
    entry = {
        "run": who or this_process(),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions,
    }
    path = folder / RUNS
    # A line a kill left torn would swallow this one: start on a line of its own.
    torn = path.is_file() and path.stat().st_size and not path.read_bytes().endswith(b"\n")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(("\n" if torn else "") + json.dumps(entry, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def runs(folder: Path) -> dict[str, dict[str, Any]]:
    """Each process's versions, by ``host:pid`` (the latest line where a pid came back);
    a torn or foreign line is skipped, as a torn row is."""
    path = folder / RUNS
    out: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
            out[str(entry["run"])] = dict(entry["versions"])
        except (ValueError, KeyError, TypeError):
            continue
    return out


def mixed_versions(df: Any, folder: Path) -> list[str]:
    """One line per library whose version differs between the runs that trained the ok
    rows of ``df`` (say, ``tensorflow: 2.16.1 (12 trials), 2.17.0 (9 trials)``)."""
    known = runs(folder)
    if not known or "worker" not in df:
        return []
    ok = df[df["status"] == "ok"] if "status" in df else df
    per_package: dict[str, Counter] = {}
    for worker in ok["worker"].astype(str):
        versions = known.get(worker)
        if versions is None:
            continue  # trained before runs were recorded
        for package, version in versions.items():
            per_package.setdefault(package, Counter())[str(version)] += 1
    return [
        f"{package}: " + ", ".join(f"{v} ({n} trials)" for v, n in sorted(counts.items()))
        for package, counts in sorted(per_package.items())
        if len(counts) > 1
    ]
