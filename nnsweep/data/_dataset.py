"""A loaded dataset: its spec, arrays and seeded splits (``nnsweep.data`` loads them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nnsweep.errors import DataError

TASKS = ("multiclass", "binary", "regression")
DATA_DIR_ENV = "NNSWEEP_DATA_DIR"
# Keras's convention for the splits it makes itself; reused for data without a test split.
_KERAS_SEED = 113
_TEST_FRACTION = 0.2
_MIN_FIT_ROWS = 2  # fewer cannot train a model worth a row in the table


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

    def digest(self) -> str:
        """The data's size and a hash of its arrays as loaded (codes and their table when
        coded): what every trial trained on, so that a replaced file is noticed on resume."""
        import hashlib

        h = hashlib.blake2b(digest_size=8)
        for array in (*self._x, self.lut, self.y_train, self.y_test):
            if array is None:
                h.update(b"-")
                continue
            array = np.ascontiguousarray(array)
            h.update(f"{array.dtype.str}{array.shape}".encode())
            h.update(array.data)
        return f"{self.n_train} rows (+{self.n_test} test), blake2b {h.hexdigest()}"

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
