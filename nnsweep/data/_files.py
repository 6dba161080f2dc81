"""Datasets from files (CSV, .npz) and user functions, and the checks every dataset
passes: finite values, targets that fit the task, class indices 0..K-1.

No data file is ever unpickled with Python's full unpickler, since an object array in an
``.npz`` is a pickle that can run any code: user files are read with
``allow_pickle=False`` (object arrays refused), and Keras's IMDB and Reuters files, whose
word sequences are object arrays by design, through an unpickler that knows only NumPy's
array and dtype constructors (``_sequence_arrays``).
"""

from __future__ import annotations

import io
import math
import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nnsweep.data._dataset import _KERAS_SEED, _TEST_FRACTION, Dataset, DataSpec
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
    _check_header(path)
    if len(frame) == 0:
        raise DataError(f"{path}: has a header but no rows of data")
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


def _check_header(path: Path) -> None:
    """Refuse a header that names a column twice: pandas renames the second ("a.1"), so
    the target could silently become a feature, or a feature the target."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        header = next(csv.reader(fh), [])
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise DataError(f"{path}: the header names a column twice: {', '.join(twice)}")


def _from_npz(path: Path, task: str | None) -> Dataset:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    with _open_npz(path) as f:
        keys = set(f.keys())
        if {"x_train", "y_train", "x_test", "y_test"} <= keys:
            x, y, x_te, y_te = _arrays(path, f, "x_train", "y_train", "x_test", "y_test")
            return _from_arrays(path.stem, x, y, (x_te, y_te), task)
        if {"x_train", "y_train"} <= keys:
            x, y = _arrays(path, f, "x_train", "y_train")
            return _from_arrays(path.stem, x, y, None, task)
        if {"x", "y"} <= keys:
            x, y = _arrays(path, f, "x", "y")
            return _from_arrays(path.stem, x, y, None, task)
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
    _check_informative(name, task, y)
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


def _check_informative(name: str, task: str, y: np.ndarray) -> None:
    """Refuse training targets a model cannot learn from: one class, or one value (a
    constant would score as well as any model, and the table would not say so)."""
    values = np.unique(y)
    if len(values) > 1:
        return
    what = "one class" if task != "regression" else "one value"
    raise DataError(
        f"{name}: the training targets hold {what} only ({values[0]:g}); a model has "
        "nothing to learn from them"
    )


def _as_arrays(name: str, part: str, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    for what, array in (("inputs", x), ("targets", y)):
        if np.iscomplexobj(array):  # casting to float would drop the imaginary part
            raise DataError(f"{name}: {part} {what} are complex numbers; give real values")
    try:
        x, y = np.asarray(x, dtype="float32"), np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: {part} arrays are not numeric: {exc}") from exc
    if x.ndim < 2:
        x = x.reshape(-1, 1)
    if math.prod(x.shape[1:]) == 0:
        raise DataError(f"{name}: {part} inputs have no features (shape {x.shape})")
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
    out = []
    for key in keys:
        try:
            out.append(f[key])
        except ValueError as exc:
            # NumPy's refusal of an object array under allow_pickle=False.
            if "allow_pickle" not in str(exc):
                raise DataError(f"cannot read {path}: {exc}") from exc
            raise DataError(
                f"{path}: array {key!r} is an object array, which nnsweep never loads (it is "
                "a pickle and could run code); save numeric arrays, e.g. "
                "np.savez(path, x=np.asarray(x, dtype='float32'), y=y)"
            ) from None
        except Exception as exc:  # noqa: BLE001 - a damaged member raises several types
            raise DataError(f"cannot read {path}: {exc}") from exc
    return out


def _open_npz(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - corrupt archives raise several types
        raise DataError(f"cannot read {path}: {exc}") from exc


# -- Keras's word-sequence files -------------------------------------------------------

# The only callables a sequence file's pickles may name: NumPy's array reconstruction, its
# dtype and its scalars (what np.save writes for an object array of lists of ints, under
# NumPy 1's module names and NumPy 2's, taken from NumPy's own reductions, not by name),
# and the latin-1 bytes that protocol 2 pickles of Python 3 write for raw bytes.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_SCALAR = np.int64(0).__reduce__()[0]


def _latin1_bytes(text: str, encoding: str) -> bytes:
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"refused bytes in encoding {encoding!r}")
    return text.encode("latin1")


_ALLOWED_GLOBALS = {
    **{
        (m, "_reconstruct"): _RECONSTRUCT
        for m in ("numpy.core.multiarray", "numpy._core.multiarray")
    },
    **{(m, "scalar"): _SCALAR for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays of plain values; any other global is refused before it loads."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None


def _sequence_arrays(path: Path, *keys: str) -> list[np.ndarray]:
    """Named arrays of a Keras IMDB/Reuters ``.npz``: numeric arrays as NumPy reads them,
    object arrays (word sequences) through ``_ArrayOnlyUnpickler`` and checked to be
    sequences of integers. A file whose pickle names anything else is refused."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    with archive:
        names = {n[: -len(".npy")] for n in archive.namelist() if n.endswith(".npy")}
        missing = [k for k in keys if k not in names]
        if missing:
            raise DataError(
                f"{path} lacks the arrays {', '.join(missing)} (it has: "
                f"{', '.join(sorted(names)) or 'none'}); is it the right file?"
            )
        return [_sequence_member(path, archive, key) for key in keys]


def _sequence_member(path: Path, archive: zipfile.ZipFile, key: str) -> np.ndarray:
    try:
        raw = archive.read(f"{key}.npy")
        stream = io.BytesIO(raw)
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            _, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        if not dtype.hasobject:
            return np.load(io.BytesIO(raw), allow_pickle=False)
        array = _ArrayOnlyUnpickler(stream, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise DataError(
            f"{path}: array {key!r} is not a plain array of word sequences ({exc}); nnsweep "
            "does not load it, since such a file could run code"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a damaged member raises several types
        raise DataError(f"cannot read {path}: array {key!r}: {exc}") from exc
    if not isinstance(array, np.ndarray) or array.ndim != 1:
        raise DataError(f"{path}: array {key!r} must be one word sequence per row")
    for row, seq in enumerate(array):
        values = np.asarray(seq) if isinstance(seq, (list, tuple, np.ndarray)) else None
        if (
            values is None
            or values.ndim != 1
            or (values.size and not np.issubdtype(values.dtype, np.integer))
        ):
            raise DataError(
                f"{path}: array {key!r} row {row} is not a sequence of integer word indices"
            )
    return array
