"""Reading a sweep's results folder: safe during a run and after a kill (a torn last line
is left out, nothing is changed), ids always text, quick-look folders named when missing."""

from __future__ import annotations

import glob
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnsweep.errors import CorruptResultsError, ResultsError
from nnsweep.store._layout import (
    DEFAULT_RESULTS,
    HISTORY,
    LATE_COLUMNS,
    RUN_COLUMNS,
    SWEEP_JSON,
    TRIALS,
    split_quick_look,
    with_late_columns,
)
from nnsweep.store._table_files import _complete_text, _parse_table, _read_table

if TYPE_CHECKING:
    import pandas as pd


def read_rows(path: Path) -> list[dict[str, str]]:
    """The complete rows of a results table, checked (see ``_read_table``)."""
    return _read_table(path)[1]


def results_dir_for(name_or_path: str | Path, results: str | Path = DEFAULT_RESULTS) -> Path:
    """The folder of a sweep given its name, its folder, or its trials.csv."""
    path = Path(name_or_path)
    if path.name == TRIALS:
        return path.parent
    if (path / TRIALS).exists():
        return path
    return Path(results) / str(name_or_path)


def load_results(name_or_path: str | Path, results: str | Path = DEFAULT_RESULTS) -> pd.DataFrame:
    """``trials.csv`` of a sweep (by name, folder or file) as a pandas DataFrame.

    Safe while a run appends or after a kill: a torn last line is left out.
    """
    path = results_dir_for(name_or_path, results) / TRIALS
    if not path.exists():
        raise ResultsError(f"no results at {path}{_elsewhere(path.parent)}")
    text = _complete_text(path)
    _parse_table(path, text)  # a clear error for a malformed file, rather than pandas's
    if not text:
        raise ResultsError(f"no trials in {path} yet")
    df = _frame(text, keep_default_na=True, dtype={**_TEXT_IDS, "rungs": str, "pruned_by": str})
    if df.empty:  # a header alone: its columns would read as text
        raise ResultsError(f"no trials in {path} yet")
    if "fold" in df.columns:  # an older table: the columns it lacks, as a run would add them
        for column in with_late_columns(df.columns):
            if column not in df.columns:
                before = RUN_COLUMNS[RUN_COLUMNS.index(column) - 1]
                at = df.columns.get_loc(before) + 1 if before in df.columns else len(df.columns)
                df.insert(at, column, LATE_COLUMNS[column] or float("nan"))
    return df


def quick_looks(folder: Path) -> list[Path]:
    """The quick-look folders of the sweep whose folder is ``folder`` (``run --epochs N``
    writes ``<name>-epochsN`` beside it), fewest epochs first."""
    found = []
    for path in folder.parent.glob(f"{glob.escape(folder.name)}-epochs*"):
        base, epochs = split_quick_look(path.name)
        if base == folder.name and epochs and (path / TRIALS).is_file():
            found.append((epochs, path))
    return [p for _, p in sorted(found)]


def _elsewhere(folder: Path) -> str:
    """What a missing sweep folder has beside it: its quick looks, named as commands take
    them."""
    looks = quick_looks(folder)
    if not looks:
        return ""
    names = ", ".join(p.name for p in looks)
    return f"; there are quick looks of it: {names} (use that name, or --epochs N)"


def load_history(name_or_path: str | Path, results: str | Path = DEFAULT_RESULTS) -> pd.DataFrame:
    """``history.csv`` of a sweep as a DataFrame (one row per trial and epoch).

    Only completed trials (those with a row in trials.csv) are included: epochs of a trial
    still running, or cut short by a kill, are left out.
    """
    folder = results_dir_for(name_or_path, results)
    path = folder / HISTORY
    if not path.exists():
        raise ResultsError(f"no history at {path}")
    text = _complete_text(path)
    _parse_table(path, text)
    if not text:
        raise ResultsError(f"no history in {path} yet")
    df = _frame(text, dtype=_TEXT_IDS)
    if df.empty:
        raise ResultsError(f"no history in {path} yet")
    done = {r["trial_id"] for r in read_rows(folder / TRIALS)}
    return df[df["trial_id"].astype(str).isin(done)].reset_index(drop=True)


# Ids are hex digests: pandas would read "735e401366" as a float (inf) and "0123" as 123.
_TEXT_IDS = {"trial_id": str, "config_id": str}


def _frame(text: str, **kw: Any) -> Any:
    import pandas as pd

    return pd.read_csv(io.StringIO(text), **kw)


def load_sweep_json(name_or_path: str | Path, results: str | Path = DEFAULT_RESULTS) -> dict:
    """The ``sweep.json`` a run wrote (definition, swept names, versions)."""
    path = results_dir_for(name_or_path, results) / SWEEP_JSON
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"no sweep.json at {path}") from None
    except ValueError as exc:
        raise CorruptResultsError(f"{path} cannot be read: {exc}") from exc


def list_result_dirs(results: str | Path = DEFAULT_RESULTS) -> list[Path]:
    """Sweep folders under ``results`` (those moved aside by --fresh excluded)."""
    root = Path(results)
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if p.is_dir() and ".old-" not in p.name and (p / TRIALS).exists()
    )
