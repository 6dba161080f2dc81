"""Importing Keras quietly: the one place that decides how loud TensorFlow may be."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any


def import_keras(debug: bool = False) -> Any:
    """Import and return ``keras``, with TensorFlow's log noise off unless ``debug``; a
    backend that cannot load is the user's setting to fix, said in one line."""
    try:
        with quiet_imports(debug):
            import keras
    except (ImportError, ValueError) as exc:
        if "keras" in sys.modules and not hasattr(sys.modules["keras"], "ops"):
            del sys.modules["keras"]  # half-imported: the next attempt starts over
        from nnsweep.errors import SweepDefinitionError

        backend = os.environ.get("KERAS_BACKEND", "(from ~/.keras/keras.json)")
        raise SweepDefinitionError(
            "KERAS_BACKEND",
            f"must name a Keras backend that is installed: tensorflow, jax or torch ({exc})",
            backend,
        ) from exc
    return keras


# Whether TensorFlow has been imported and used once under quiet_imports (then it is quiet).
_QUIETED: list[bool] = []


@contextlib.contextmanager
def quiet_imports(debug: bool = False) -> Iterator[None]:
    """Run code that may import Keras (``import_keras``, or a sweep file that imports it)
    without TensorFlow's start-up lines on stderr, unless ``debug``. TensorFlow's C++ side
    logs at import and at first device use before it reads any setting, so stderr is muted
    for those two moments only."""
    if debug or _QUIETED:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _muted_stderr():
        yield
        if "keras" in sys.modules:
            keras = sys.modules["keras"]
            keras.ops.convert_to_numpy(keras.ops.zeros((1,)))
            _QUIETED.append(True)
    if "absl.logging" in sys.modules:  # absl comes with TensorFlow, not with every backend
        absl_logging = sys.modules["absl.logging"]
        absl_logging.set_verbosity(absl_logging.ERROR)
    if "tensorflow" in sys.modules:
        import logging

        # Its Python-side warnings (tf.function retracing, deprecations) are about
        # TensorFlow's internals, not the user's sweep: shown with --debug only.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


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


def custom_gradients() -> frozenset[str]:
    """The ``tf.custom_gradient`` entries in TensorFlow's gradient registry so far."""
    registry = _registered_gradients()
    return frozenset(k for k in registry if k.startswith("CustomGradient-"))


def forget_custom_gradients(keep: frozenset[str]) -> None:
    """Drop the ``tf.custom_gradient`` entries registered since ``keep`` was taken.

    TensorFlow registers one for every traced call of a custom-gradient function and never
    removes it, and each holds its whole graph. Keras's optimizer step is one (its gradient
    all-reduce), so every model that trains keeps its train step alive after it is gone:
    about 4 MB per model, which ``clear_session`` does not free (tensorflow#61791,
    keras#20245). Call this only once the models traced since ``keep`` are discarded.
    """
    registry = _registered_gradients()
    for name in [k for k in registry if k.startswith("CustomGradient-") and k not in keep]:
        del registry[name]


def _registered_gradients() -> dict[str, Any]:
    if "tensorflow" not in sys.modules:
        return {}  # no TensorFlow, nothing registered
    from nnsweep._compat import gradient_registry

    return gradient_registry()


def backend_name() -> str:
    """The Keras backend in use, without importing Keras if it is not loaded yet."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


# TensorFlow makes a pool of as many threads as asked for: 100,000 took 2.4 GB and
# never trained. Bounded so that a typo fails at once.
MAX_THREADS = 1024


def check_threads(threads: int) -> None:
    """Refuse a thread count TensorFlow cannot use."""
    from nnsweep.errors import SweepDefinitionError

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise SweepDefinitionError("--threads", "must be an integer >= 1", threads)
    if threads > MAX_THREADS:
        raise SweepDefinitionError("--threads", f"must be at most {MAX_THREADS}", threads)


def set_threads(threads: int) -> None:
    """Cap the threads TensorFlow computes with (before its runtime starts), so several
    workers can share one machine without fighting over its cores."""
    from nnsweep.errors import SweepDefinitionError

    check_threads(threads)
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as import_keras does
    with _muted_stderr():
        import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:  # the runtime already started in this process
        if tf.config.threading.get_intra_op_parallelism_threads() != threads:
            raise SweepDefinitionError(
                "--threads", f"must be set before TensorFlow starts ({exc})", threads
            ) from None
