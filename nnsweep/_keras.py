"""Importing Keras quietly: the one place that decides how loud TensorFlow may be."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any


def import_keras(debug: bool = False) -> Any:
    """Import and return ``keras``, with TensorFlow's log noise off unless ``debug``."""
    if "keras" in sys.modules or debug:
        import keras

        return keras
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow's C++ side logs at import and at first device use before it reads any
    # setting, so its stderr is muted for those two moments only.
    with _muted_stderr():
        import keras

        keras.ops.convert_to_numpy(keras.ops.zeros((1,)))
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # absl comes with TensorFlow, not with every backend
        pass
    return keras


@contextlib.contextmanager
def _muted_stderr() -> Iterator[None]:
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (pytest capture, IDEs)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def backend_name() -> str:
    """The Keras backend in use, without importing Keras if it is not loaded yet."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")
