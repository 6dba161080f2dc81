"""Which run trained which rows: ``runs.jsonl`` beside a sweep's tables.

``sweep.json`` describes the sweep as its latest run saw it. Each run (a local run, or each
worker) also appends one line to ``runs.jsonl``: its process (``host:pid``, the same value
as the rows' ``worker`` column), when it started, and the versions it ran with: the
libraries', nnsweep's source (``code_fingerprint``) and the processor's (``processor``). So
a table resumed after an upgrade, or on another machine, can tell which trials trained
under which, and ``report`` and ``diff`` warn when one table mixes them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import socket
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RUNS = "runs.jsonl"
# oneDNN's names for the instruction sets it dispatches to, best first, with the CPU flags
# (Linux's /proc/cpuinfo) each needs: the kernels, and so the float sums, differ by ISA.
_ISAS = (
    ("avx512_core_amx", {"amx_tile", "amx_bf16", "avx512_bf16"}),
    ("avx512_core_bf16", {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16"}),
    ("avx512_core_vnni", {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"}),
    ("avx512_core", {"avx512f", "avx512bw", "avx512vl", "avx512dq"}),
    ("avx2_vnni", {"avx2", "avx_vnni"}),
    ("avx2", {"avx2"}),
    ("avx", {"avx"}),
    ("sse41", {"sse4_1"}),
)


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of nnsweep's own source, the code that trains: two runs of one version but
    other code (a checkout between releases) tell themselves apart."""
    package = Path(__file__).resolve().parent.parent
    h = hashlib.sha1()
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def processor() -> dict[str, str]:
    """The processor a run's numbers depend on: its model, the instruction set oneDNN's
    kernels use on it, and whether TensorFlow's oneDNN path is on."""
    model, flags = "", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass  # not Linux: the model from platform, the ISA unknown
    model = model or platform.processor() or platform.machine()
    isa = next((name for name, need in _ISAS if need <= flags), "unknown" if not flags else "none")
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "")
    return {
        "cpu": model or "unknown",
        "cpu_isa": f"{isa} (capped at {cap})" if cap else isa,
        "onednn": "off" if onednn in ("0", "false", "False") else "on",
    }


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
