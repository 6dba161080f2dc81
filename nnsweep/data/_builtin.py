"""The built-in datasets (digits, MNIST, Fashion-MNIST, IMDB, Reuters, Boston housing) and
where Keras's files are looked for: the data directory, Keras's cache, Keras's download."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnsweep.data._dataset import _KERAS_SEED, _TEST_FRACTION, DATA_DIR_ENV, Dataset, DataSpec
from nnsweep.data._files import (
    _arrays,
    _holdout_test,
    _open_npz,
    _sequence_arrays,
    _standardize,
)
from nnsweep.errors import DataError

_FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets (``$KERAS_HOME`` or ``~/.keras``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


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
        if keras_name == "imdb":  # the file holds its own test split
            x_tr, y_tr, x_te, y_te = _sequence_arrays(
                path, "x_train", "y_train", "x_test", "y_test"
            )
            xs, ys = [x_tr, x_te], [y_tr, y_te]
        else:  # reuters: one table, split 80/20 after a seeded shuffle
            x, y = _sequence_arrays(path, "x", "y")
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

# Each built-in dataset's task and classes, known without loading it, so that a sweep's
# class weights are checked when it is created (a test checks them against the loaded specs).
BUILTIN_TASKS: dict[str, tuple[str, int | None]] = {
    "digits": ("multiclass", 10),
    "mnist": ("multiclass", 10),
    "fashion_mnist": ("multiclass", 10),
    "imdb": ("binary", None),
    "reuters": ("multiclass", 46),
    "boston_housing": ("regression", None),
}
