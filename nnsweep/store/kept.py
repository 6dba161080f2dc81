"""The kept models' files: ``results/<name>/models/<config_id>/<trial_id>.keras``.

No Keras here (``show`` and the report list them): the layout, the listing, and the one
way a model file is written, to a hidden temporary name, fsynced and renamed, so that a
kill at any moment leaves either the whole file or none under a model's name.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nnsweep.store._table_files import _fsync_dir

MODELS = "models"
SUFFIX = ".keras"
_TEMP = ".tmp"  # a temporary file's name: ".<trial_id>.<pid>.tmp.keras"


def models_dir(folder: str | Path) -> Path:
    return Path(folder) / MODELS


def model_file(folder: str | Path, config_id: str, trial_id: str) -> Path:
    """Where trial ``trial_id`` of configuration ``config_id`` is kept."""
    return models_dir(folder) / config_id / f"{trial_id}{SUFFIX}"


def kept_models(folder: str | Path) -> dict[str, dict[str, Path]]:
    """Each configuration's kept files by trial id (temporary files left by a kill are
    not models)."""
    root = models_dir(folder)
    if not root.is_dir():
        return {}
    out: dict[str, dict[str, Path]] = {}
    for config in sorted(p for p in root.iterdir() if p.is_dir()):
        files = {
            p.name.removesuffix(SUFFIX): p
            for p in sorted(config.iterdir())
            if p.name.endswith(SUFFIX) and not p.name.startswith(".") and p.is_file()
        }
        if files:
            out[config.name] = files
    return out


def kept_totals(folder: str | Path) -> tuple[dict[str, dict[str, Path]], int, int]:
    """The kept files by configuration, how many there are, and the bytes they take."""
    kept = kept_models(folder)
    files = [p for f in kept.values() for p in f.values()]
    return kept, len(files), sum(p.stat().st_size for p in files)


def kept_sentence(folder: str | Path, table: Any = None) -> str:
    """The report's sentence on the kept models ("" when none): which configurations, by
    their rank in ``table`` (``stats.describe``'s) where given, and the space they take."""
    kept, files, size_bytes = kept_totals(folder)
    if not kept:
        return ""
    size = size_text(size_bytes)
    ranks = {}
    if table is not None and "config_id" in getattr(table, "columns", ()):
        ranks = {str(c): i + 1 for i, c in enumerate(table["config_id"])}
    ordered = sorted(kept, key=lambda c: ranks.get(c, len(ranks) + 1))
    named = ", ".join(f"{c} (#{ranks[c]})" if c in ranks else c for c in ordered)
    return (
        f"Kept models: {files} files of {plural(len(kept), 'configuration')} ({size}) in "
        f"{models_dir(folder)}: {named}. `nnsweep best --export` and `nnsweep.load_model` "
        "use them without training."
    )


def kept_bytes(folder: str | Path) -> dict[str, int]:
    """The bytes each configuration's kept files take."""
    return {
        config: sum(p.stat().st_size for p in files.values())
        for config, files in kept_models(folder).items()
    }


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary)`` then rename it to ``path``: a kill leaves no half-written file
    under ``path`` (a temporary one at most, which ``remove_temporary`` clears)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".{path.name.removesuffix(SUFFIX)}.{os.getpid()}{_TEMP}{SUFFIX}"
    try:
        write(temp)
        with open(temp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def copy_atomic(source: Path, target: Path) -> None:
    """A kept file copied to ``target`` whole or not at all."""

    def copy(temp: Path) -> None:
        shutil.copyfile(source, temp)

    write_atomic(target, copy)


def remove_config(folder: str | Path, config_id: str) -> int:
    """Remove a configuration's kept files; how many there were."""
    where = models_dir(folder) / config_id
    if not where.is_dir():
        return 0
    count = sum(1 for p in where.iterdir() if p.name.endswith(SUFFIX))
    shutil.rmtree(where)
    return count


def remove_temporary(folder: str | Path) -> int:
    """Remove the temporary files a killed run left; how many."""
    root = models_dir(folder)
    if not root.is_dir():
        return 0
    stale = [p for p in root.glob(f"*/.*{_TEMP}{SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


_UNITS = {"": 1, "B": 1, "K": 1000, "KB": 1000, "KIB": 1024, "M": 1000**2, "MB": 1000**2,
          "MIB": 1024**2, "G": 1000**3, "GB": 1000**3, "GIB": 1024**3, "T": 1000**4,
          "TB": 1000**4, "TIB": 1024**4}  # fmt: skip


def parse_size(text: str) -> int | None:
    """Bytes from ``500MB``, ``1.5GiB``, ``2G`` or ``1000000``; None when it is not a size."""
    number = text.strip().upper().rstrip("S")  # "5 MBs" and "5MB" alike
    unit = ""
    while number and not (number[-1].isdigit() or number[-1] == "."):
        unit, number = number[-1] + unit, number[:-1]
    try:
        value = float(number.strip())
    except ValueError:
        return None
    factor = _UNITS.get(unit.strip())
    if factor is None or not value > 0 or value * factor > 2**62:
        return None
    return int(value * factor)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def size_text(n: int) -> str:
    """A byte count as people read it (``1.2 MB``)."""
    for unit, factor in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"
