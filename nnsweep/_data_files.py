"""Datasets from files (CSV, .npz) and user functions, and the checks every dataset
passes: finite values, targets that fit the task, class indices 0..K-1."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nnsweep._dataset import _KERAS_SEED, _TEST_FRACTION, Dataset, DataSpec
from nnsweep.errors import DataError

# -- files and functions ----------------------------------------------------------------


def _from_csv(path: Path, target: str, task: str | None, options: dict) -> Dataset:
    import pandas as pd

    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for bad files
        raise DataError(f"cannot read {path} as CSV: {exc}") from exc
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise DataError(
            f"{path} has no target column {target!r} (columns: {columns}); set Sweep(target=...)"
        )
    features = frame.drop(columns=[target])
    bad = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if bad:
        raise DataError(f"{path}: feature columns must be numeric, not {', '.join(map(str, bad))}")
    if features.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides {target!r}")
    x = features.to_numpy(dtype="float32")
    y = frame[target].to_numpy()
    if np.isnan(x).any():
        raise DataError(f"{path}: feature columns hold missing values")
    return _from_arrays(path.stem, x, y, None, task, standardize=options.get("standardize", True))


def _from_npz(path: Path, task: str | None) -> Dataset:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    with _open_npz(path) as f:
        keys = set(f.keys())
        if {"x_train", "y_train"} <= keys:
            test = (f["x_test"], f["y_test"]) if {"x_test", "y_test"} <= keys else None
            return _from_arrays(path.stem, f["x_train"], f["y_train"], test, task)
        if {"x", "y"} <= keys:
            return _from_arrays(path.stem, f["x"], f["y"], None, task)
    raise DataError(f"{path}: expected arrays x, y or x_train, y_train[, x_test, y_test]")


def _from_function(fn: Callable[..., Any], task: str | None) -> Dataset:
    name = getattr(fn, "__name__", "data")
    try:
        out = fn()
    except Exception as exc:
        raise DataError(f"data function {name}() raised {type(exc).__name__}: {exc}") from exc
    shapes = "(x, y), ((x_train, y_train), (x_test, y_test)) or a dict of arrays"
    if isinstance(out, Mapping):
        for keys in (("x_train", "y_train"), ("x", "y"), ("x_test", "y_test")):
            have = [k for k in keys if k in out]
            if len(have) == 1:
                missing = next(k for k in keys if k not in out)
                raise DataError(
                    f"data function {name}() returned a dict with {have[0]} but not "
                    f"{missing}; it must return {shapes}"
                )
        if not ({"x_train", "y_train"} <= out.keys() or {"x", "y"} <= out.keys()):
            raise DataError(
                f"data function {name}() returned a dict without x_train, y_train (or x, y); "
                f"keys: {', '.join(map(str, out)) or 'none'}"
            )
        test = (out["x_test"], out["y_test"]) if "x_test" in out else None
        x, y = out.get("x_train", out.get("x")), out.get("y_train", out.get("y"))
        return _from_arrays(name, x, y, test, task)
    if isinstance(out, tuple) and len(out) == 2 and all(isinstance(p, tuple) for p in out):
        if any(len(p) != 2 for p in out):
            sizes = " and ".join(str(len(p)) for p in out)
            raise DataError(
                f"data function {name}() returned pairs of {sizes} arrays; it must return {shapes}"
            )
        (x, y), test = out
        return _from_arrays(name, x, y, test, task)
    if isinstance(out, tuple) and len(out) == 2:
        return _from_arrays(name, out[0], out[1], None, task)
    raise DataError(f"data function {name}() must return {shapes}, got {type(out).__name__}")


def _from_arrays(
    name: str,
    x: Any,
    y: Any,
    test: tuple[Any, Any] | None,
    task: str | None,
    standardize: bool = False,
) -> Dataset:
    x, y = _as_arrays(name, "train", x, y)
    if test is None:
        (x, y), (x_te, y_te) = _holdout_test(x, y)
    else:
        x_te, y_te = _as_arrays(name, "test", *test)
        if x_te.shape[1:] != x.shape[1:]:
            raise DataError(f"{name}: test inputs have shape {x_te.shape[1:]}, train {x.shape[1:]}")
    task = task or infer_task(np.concatenate([y, y_te]))
    n_classes = (
        _check_labels(name, task, np.concatenate([y, y_te])) if task != "regression" else None
    )
    y_dtype = "float32" if task == "regression" else "int64"
    if standardize:
        x, x_te = _standardize(x, x_te)
    spec = DataSpec(name, task, tuple(x.shape[1:]), n_classes)
    return Dataset(
        spec, x.astype("float32"), y.astype(y_dtype), x_te.astype("float32"), y_te.astype(y_dtype)
    )


# More classes than this is a sign that the targets are not class indices (ids, or a
# continuous value stored as integers); the output layer alone would take gigabytes.
MAX_CLASSES = 10_000


def _check_labels(name: str, task: str, y: np.ndarray) -> int | None:
    """Refuse labels that the task cannot read as classes; the class count (multiclass)."""
    values = np.unique(y)
    if not np.all(np.mod(values, 1) == 0):
        raise DataError(f"{name}: task {task!r} needs integer class labels")
    shown = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if len(values) > 5 else "")
    if task == "binary":
        if not set(values.tolist()) <= {0, 1}:
            raise DataError(
                f"{name}: task 'binary' needs labels 0 and 1, got {len(values)} distinct "
                f"labels ({shown}); use task 'multiclass' or re-encode the labels"
            )
        return None
    recode = (
        "re-encode them as 0..K-1 (np.unique(y, return_inverse=True)[1]), or, if they are "
        "quantities, set data_options={'task': 'regression'}"
    )
    if values.min() < 0:
        raise DataError(f"{name}: class labels must be >= 0, got {values.min():g}; {recode}")
    n_classes = int(values.max()) + 1
    if n_classes > MAX_CLASSES:
        raise DataError(
            f"{name}: the largest label {values.max():g} would make {n_classes:,} classes "
            f"(at most {MAX_CLASSES:,}); {recode}"
        )
    if len(values) * 2 < n_classes:
        raise DataError(
            f"{name}: labels {shown} use {len(values)} of the {n_classes} classes that "
            f"0..{n_classes - 1} would make; {recode}"
        )
    return n_classes


def _as_arrays(name: str, part: str, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        x, y = np.asarray(x, dtype="float32"), np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: {part} arrays are not numeric: {exc}") from exc
    if x.ndim < 2:
        x = x.reshape(-1, 1)
    if y.ndim != 1:
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        else:
            raise DataError(
                f"{name}: {part} targets must be one value per row, got shape {y.shape}"
            )
    if len(x) != len(y):
        raise DataError(f"{name}: {part} inputs have {len(x)} rows but targets have {len(y)}")
    if len(x) < 2:
        raise DataError(f"{name}: {part} split needs at least 2 rows, got {len(x)}")
    if not np.issubdtype(y.dtype, np.number):
        raise DataError(f"{name}: {part} targets must be numbers, got dtype {y.dtype}")
    for what, array in (("inputs", x), ("targets", y)):
        bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
        if bad.any():
            raise DataError(
                f"{name}: {part} {what} hold missing or infinite values in {int(bad.sum())} "
                f"rows (the first: row {int(np.argmax(bad))}); drop or fill them first"
            )
    return x, y


def infer_task(y: np.ndarray) -> str:
    """Regression for non-integer targets, binary for 0/1, multiclass for small ints."""
    values = np.unique(y)
    integral = np.all(np.mod(values, 1) == 0)
    if not integral or values.min() < 0:
        return "regression"
    if set(values.tolist()) <= {0, 1}:
        return "binary"
    if len(values) <= 100:
        return "multiclass"
    return "regression"


def _holdout_test(x: np.ndarray, y: np.ndarray) -> tuple[tuple, tuple]:
    order = np.random.RandomState(_KERAS_SEED).permutation(len(x))
    cut = int(len(x) * (1 - _TEST_FRACTION))
    tr, te = np.sort(order[:cut]), np.sort(order[cut:])
    return (x[tr], y[tr]), (x[te], y[te])


def _standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale both splits with the training split's statistics only (no test leakage)."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std == 0, 1.0, std)
    return ((x_train - mean) / std).astype("float32"), ((x_test - mean) / std).astype("float32")


def _arrays(path: Path, f: Any, *keys: str) -> list[np.ndarray]:
    """Named arrays of an open .npz, or a DataError naming the missing ones."""
    missing = [k for k in keys if k not in f]
    if missing:
        raise DataError(
            f"{path} lacks the arrays {', '.join(missing)} (it has: {', '.join(f) or 'none'}); "
            "is it the right file?"
        )
    try:
        return [f[k] for k in keys]
    except Exception as exc:  # noqa: BLE001 - a damaged member raises several types
        raise DataError(f"cannot read {path}: {exc}") from exc


def _open_npz(path: Path):
    try:
        return np.load(path, allow_pickle=True)
    except Exception as exc:  # noqa: BLE001 - corrupt archives raise several types
        raise DataError(f"cannot read {path}: {exc}") from exc
