"""Datasets: the built-in registry, files, user functions, and the seeded splits.

A dataset is loaded once per sweep (``load_dataset``) and knows its task, input shape and
class count; the loss and metrics follow from the task. Keras datasets are looked for in a
data directory, then in Keras's own cache, then downloaded by Keras. The parts: ``_dataset``
(the spec, arrays and splits), ``_builtin`` (the built-ins, Keras's files) and
``_files`` (CSV, .npz, functions, and the checks every dataset passes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nnsweep.data._builtin import _BUILTINS, keras_cache_dir, locate
from nnsweep.data._dataset import DATA_DIR_ENV, TASKS, Dataset, DataSpec, Split
from nnsweep.data._files import (
    MAX_CLASSES,
    _check_labels,
    _from_csv,
    _from_function,
    _from_npz,
    infer_task,
)
from nnsweep.errors import DataError

__all__ = [
    "DATA_DIR_ENV",
    "MAX_CLASSES",
    "TASKS",
    "DataSpec",
    "Dataset",
    "Split",
    "infer_task",
    "keras_cache_dir",
    "load_dataset",
    "locate",
    "resolve_data_dir",
]


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """The data directory: the argument, else ``$NNSWEEP_DATA_DIR``, else none."""
    value = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


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
