"""Datasets: the built-in registry, files, user functions, and the seeded splits.

A dataset is loaded once per sweep (``load_dataset``) and knows its task, input shape and
class count; the loss and metrics follow from the task. Keras datasets are looked for in a
data directory, then in Keras's own cache, then downloaded by Keras.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnsweep.errors import DataError

TASKS = ("multiclass", "binary", "regression")
DATA_DIR_ENV = "NNSWEEP_DATA_DIR"
# Keras's convention for the splits it makes itself; reused for data without a test split.
_KERAS_SEED = 113
_TEST_FRACTION = 0.2
_FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data: the task, input shape and classes."""

    name: str
    task: str
    input_shape: tuple[int, ...]
    n_classes: int | None = None

    @property
    def output_units(self) -> int:
        if self.task == "multiclass" and self.n_classes is not None:
            return self.n_classes
        return 1

    @property
    def loss(self) -> str:
        return {
            "multiclass": "sparse_categorical_crossentropy",
            "binary": "binary_crossentropy",
            "regression": "mse",
        }[self.task]

    @property
    def metric(self) -> str:
        """The task's headline metric: accuracy for classification, MAE for regression."""
        return "mae" if self.task == "regression" else "accuracy"

    @property
    def default_objective(self) -> tuple[str, str]:
        """(column, direction) used to pick the best epoch and configuration."""
        if self.task == "regression":
            return "val_loss", "min"
        return "val_accuracy", "max"


@dataclass(frozen=True)
class Split:
    """Which rows of the training data one trial fits on and validates on."""

    fit_idx: np.ndarray
    val_idx: np.ndarray
    dataset: Dataset = field(repr=False)

    @property
    def x_fit(self) -> np.ndarray:
        return self.dataset.x_train[self.fit_idx]

    @property
    def y_fit(self) -> np.ndarray:
        return self.dataset.y_train[self.fit_idx]

    @property
    def x_val(self) -> np.ndarray:
        return self.dataset.x_train[self.val_idx]

    @property
    def y_val(self) -> np.ndarray:
        return self.dataset.y_train[self.val_idx]


class Dataset:
    """A loaded dataset: training arrays, an optional test split, and its spec.

    Inputs with few distinct values (image bytes, multi-hot rows) may be kept as codes
    into a look-up table of their float values (``lut``): a quarter of the memory, and packs
    read the codes and look the values up in their own graph. ``x_train`` and ``x_test``
    give the floats (computed on first use).
    """

    def __init__(
        self,
        spec: DataSpec,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_test: np.ndarray | None = None,
        y_test: np.ndarray | None = None,
        *,
        lut: np.ndarray | None = None,
    ) -> None:
        self.spec = spec
        self.y_train, self.y_test = y_train, y_test
        self.lut = lut
        self._x = (x_train, x_test)
        self._floats: dict[int, np.ndarray] = {}
        self._splits: dict[tuple, Split] = {}
        self._table: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_table(
        cls,
        spec: DataSpec,
        x: np.ndarray,
        y: np.ndarray,
        n_train: int,
        lut: np.ndarray | None = None,
    ) -> Dataset:
        """Training rows then test rows of one array each, kept as the table (no copy)."""
        ds = cls(spec, x[:n_train], y[:n_train], x[n_train:], y[n_train:], lut=lut)
        ds._table = (x, y)
        return ds

    @property
    def x_train(self) -> np.ndarray:
        return self._float(0)

    @property
    def x_test(self) -> np.ndarray | None:
        return None if self._x[1] is None else self._float(1)

    @property
    def n_train(self) -> int:
        return len(self._x[0])

    @property
    def n_test(self) -> int:
        return 0 if self._x[1] is None else len(self._x[1])

    def _float(self, part: int) -> np.ndarray:
        x = self._x[part]
        assert x is not None, "the test split is asked for only where there is one"
        if self.lut is None:
            return x
        if part not in self._floats:
            self._floats[part] = self.lut[self._x[part]]
        return self._floats[part]

    def codes(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Training rows then test rows as one array each: inputs (codes into ``lut``, or
        floats without one), the look-up table, targets (cached).

        Packs read every split from this table by row index, so it is built once per sweep.
        """
        if self._table is None:
            x_train, x_test = self._x
            if x_test is None:
                self._table = (x_train, self.y_train)
            else:
                self._table = (
                    np.concatenate([x_train, x_test]),
                    np.concatenate([self.y_train, self.y_test]),
                )
        return self._table[0], self.lut, self._table[1]

    def check_splits(self, validation_split: float, split_seed: int, cv: int | None) -> None:
        """Refuse, before any training, splits that leave too little to train or validate
        on: each fold needs a validation row and at least two rows to fit."""
        n, need = self.n_train, _MIN_FIT_ROWS
        if cv and cv > n:
            raise DataError(f"{self.spec.name}: cv={cv} folds need at least {cv} rows, it has {n}")
        for fold in range(cv or 1):
            fit = len(self.split(validation_split, split_seed, cv, fold).fit_idx)
            if fit < need:
                what = f"cv={cv}" if cv else f"validation_split={validation_split}"
                raise DataError(
                    f"{self.spec.name}: {what} leaves {fit} of its {n} rows to train on "
                    f"(at least {need} needed); use a smaller split or more rows"
                )

    def split(self, validation_split: float, split_seed: int, cv: int | None, fold: int) -> Split:
        """The seeded validation split (or the ``fold``-th of ``cv`` folds), as row indices."""
        key = (validation_split, split_seed, cv, fold)
        if key not in self._splits:
            n = self.n_train
            order = np.random.RandomState(split_seed).permutation(n)
            if cv:
                parts = np.array_split(order, cv)
                val_idx = parts[fold]
                fit_idx = np.concatenate([p for i, p in enumerate(parts) if i != fold])
            else:
                n_val = max(1, int(round(n * validation_split)))
                val_idx, fit_idx = order[:n_val], order[n_val:]
            if len(fit_idx) == 0:
                raise DataError(f"{self.spec.name}: too few rows ({n}) to hold out validation")
            # Sorted indices keep the original row order, which makes splits easy to audit.
            fit_idx, val_idx = np.sort(fit_idx), np.sort(val_idx)
            self._splits[key] = Split(fit_idx, val_idx, self)
        return self._splits[key]


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """The data directory: the argument, else ``$NNSWEEP_DATA_DIR``, else none."""
    value = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets (``$KERAS_HOME`` or ``~/.keras``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def load_dataset(
    data: str | Path | Callable[..., Any],
    *,
    data_dir: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    target: str = "target",
) -> Dataset:
    """Load a sweep's dataset once: a built-in name, a .csv/.npz path, or a function."""
    options = dict(options or {})
    task = options.pop("task", None)
    if task is not None and task not in TASKS:
        raise DataError(f"data_options['task'] must be one of {', '.join(TASKS)}, got {task!r}")
    if callable(data):
        return _from_function(data, task)
    name = str(data)
    if name in _BUILTINS:
        dataset = _BUILTINS[name](resolve_data_dir(data_dir), options)
        if task is not None and task != dataset.spec.task:
            if task != "regression":
                _check_labels(name, task, dataset.codes()[2])
            raise DataError(
                f"data_options['task'] is {task!r}, but {name} is a {dataset.spec.task} "
                "dataset; leave the task out for built-in datasets"
            )
        return dataset
    if name.endswith(".csv"):
        return _from_csv(Path(name), target, task, options)
    if name.endswith(".npz"):
        return _from_npz(Path(name), task)
    raise DataError(f"unknown dataset {name!r}")


# -- locating Keras's files -------------------------------------------------------------


def locate(filename: str, data_dir: Path | None, keras_name: str) -> Path:
    """Find a Keras dataset file: data directory, Keras cache, then Keras's download."""
    tried = []
    if data_dir is not None:
        candidate = data_dir / filename
        if candidate.exists():
            return candidate
        tried.append(f"data directory {candidate}")
    else:
        tried.append(f"data directory (none set: --data-dir or ${DATA_DIR_ENV})")
    cached = keras_cache_dir() / filename
    if cached.exists():
        return cached
    tried.append(f"Keras cache {cached}")
    try:
        _keras_download(keras_name)
    except Exception as exc:  # noqa: BLE001 - any download failure is reported the same way
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        tried.append(f"Keras download ({first})")
    else:
        if cached.exists():
            return cached
        tried.append(f"Keras download (no file at {cached} afterwards)")
    raise DataError(f"cannot find dataset {keras_name!r}: tried " + "; ".join(tried))


def _keras_download(keras_name: str) -> None:
    import keras  # deferred: downloading is the only reason to import Keras here

    getattr(keras.datasets, keras_name).load_data()


# -- built-in datasets --------------------------------------------------------------------


def _digits(data_dir: Path | None, options: dict) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    codes = bunch.images.astype("uint8")  # intensities 0..16
    y = bunch.target.astype("int64")
    (x_tr, y_tr), (x_te, y_te) = _holdout_test(codes, y)
    spec = DataSpec("digits", "multiclass", (8, 8), 10)
    return Dataset(spec, x_tr, y_tr, x_te, y_te, lut=_DIGITS)


def _mnist_like(name: str, filename: str, keras_name: str):
    def load(data_dir: Path | None, options: dict) -> Dataset:
        path = locate(filename, data_dir, keras_name)
        if path.is_dir():
            x_tr, y_tr, x_te, y_te = _read_idx_folder(path)
        else:
            with _open_npz(path) as f:
                x_tr, y_tr, x_te, y_te = _arrays(path, f, "x_train", "y_train", "x_test", "y_test")
        spec = DataSpec(name, "multiclass", tuple(x_tr.shape[1:]), 10)
        x = np.concatenate([x_tr, x_te]).astype("uint8", copy=False)
        y = np.concatenate([y_tr, y_te]).astype("int64")
        return Dataset.from_table(spec, x, y, len(x_tr), lut=_UNIT)

    return load


# Each byte's value in [0, 1], as float32 of the float64 quotient (what x / 255.0 gives):
# images stay bytes, a quarter of the memory, and packs look the floats up.
_UNIT = (np.arange(256) / 255.0).astype("float32")
_DIGITS = (np.arange(17) / 16.0).astype("float32")  # scikit-learn's 0..16 intensities
_BINARY = np.array([0.0, 1.0], "float32")


def _read_idx_folder(folder: Path) -> tuple[np.ndarray, ...]:
    arrays = []
    for fname in _FASHION_FILES:
        try:
            with gzip.open(folder / fname, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise DataError(f"cannot read {folder / fname}: {exc}") from exc
        if "labels" in fname:
            arrays.append(np.frombuffer(raw, np.uint8, offset=8))
        else:
            arrays.append(np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28))
    y_tr, x_tr, y_te, x_te = arrays
    return x_tr, y_tr, x_te, y_te


def _sequences(name: str, keras_name: str, n_classes: int | None):
    def load(data_dir: Path | None, options: dict) -> Dataset:
        num_words = options.get("num_words", 10_000)
        if isinstance(num_words, bool) or not isinstance(num_words, int) or num_words < 4:
            raise DataError(f"data_options['num_words'] must be an integer >= 4, got {num_words!r}")
        path = locate(f"{keras_name}.npz", data_dir, keras_name)
        with _open_npz(path) as f:
            if "x_train" in f:  # imdb: the file holds its own test split
                x_tr, y_tr, x_te, y_te = _arrays(path, f, "x_train", "y_train", "x_test", "y_test")
                xs, ys = [x_tr, x_te], [y_tr, y_te]
            else:  # reuters: one table, split 80/20 after a seeded shuffle
                x, y = _arrays(path, f, "x", "y")
                xs, ys = [x], [y]
        rng = np.random.RandomState(_KERAS_SEED)
        shuffled = []
        for x, y in zip(xs, ys, strict=True):
            order = np.arange(len(x))
            rng.shuffle(order)
            shuffled.append((x[order], y[order]))
        if len(shuffled) == 1:
            x, y = shuffled[0]
            cut = int(len(x) * (1 - _TEST_FRACTION))
            shuffled = [(x[:cut], y[:cut]), (x[cut:], y[cut:])]
        (x_tr, y_tr), (x_te, y_te) = shuffled
        task = "binary" if n_classes is None else "multiclass"
        classes = (
            n_classes if n_classes is None else max(n_classes, int(max(y_tr.max(), y_te.max())) + 1)
        )
        spec = DataSpec(name, task, (num_words,), classes)
        return Dataset(
            spec,
            _multi_hot(x_tr, num_words),
            y_tr.astype("int64"),
            _multi_hot(x_te, num_words),
            y_te.astype("int64"),
            lut=_BINARY,
        )

    return load


def _multi_hot(sequences: np.ndarray, num_words: int) -> np.ndarray:
    """Keras's word indices (start 1, out-of-vocabulary 2, words from 3) as a multi-hot row
    of 0/1 codes (see ``_BINARY``)."""
    out = np.zeros((len(sequences), num_words), dtype="uint8")
    for row, seq in enumerate(sequences):
        idx = np.asarray(seq, dtype="int64") + 3
        idx = np.where(idx < num_words, idx, 2)
        out[row, idx] = 1
        out[row, 1] = 1
    return out


def _boston(data_dir: Path | None, options: dict) -> Dataset:
    path = locate("boston_housing.npz", data_dir, "boston_housing")
    with _open_npz(path) as f:
        x, y = _arrays(path, f, "x", "y")
    order = np.arange(len(x))
    np.random.RandomState(_KERAS_SEED).shuffle(order)
    x, y = x[order], y[order]
    cut = int(len(x) * (1 - _TEST_FRACTION))
    x_tr, x_te = _standardize(x[:cut], x[cut:])
    spec = DataSpec("boston_housing", "regression", (x.shape[1],))
    return Dataset(spec, x_tr, y[:cut].astype("float32"), x_te, y[cut:].astype("float32"))


_BUILTINS: dict[str, Callable[[Path | None, dict], Dataset]] = {
    "digits": _digits,
    "mnist": _mnist_like("mnist", "mnist.npz", "mnist"),
    "fashion_mnist": _mnist_like("fashion_mnist", "fashion-mnist", "fashion_mnist"),
    "imdb": _sequences("imdb", "imdb", None),
    "reuters": _sequences("reuters", "reuters", 46),
    "boston_housing": _boston,
}


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


_MIN_FIT_ROWS = 2  # fewer cannot train a model worth a row in the table
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
