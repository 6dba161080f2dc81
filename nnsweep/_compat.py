"""Every name nnsweep takes from inside Keras Tuner and TensorFlow, in one place.

Keras Tuner's oracle project folder and TensorFlow's gradient registry have no public
API. Each is looked up here at first use; when a release has moved or renamed one,
nnsweep stops with ``IncompatibleVersion``, naming what is missing and the installed
versions, rather than running on with a feature quietly off. ``pyproject.toml`` bounds
the versions tested. Public paths are used where they exist (``keras_tuner.engine``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from importlib import import_module, metadata
from typing import Any

from nnsweep.errors import IncompatibleVersion


def _versions(*packages: str) -> str:
    out = []
    for p in packages:
        try:
            out.append(f"{p} {metadata.version(p)}")
        except metadata.PackageNotFoundError:
            out.append(f"{p} not installed")
    return ", ".join(out)


def _lookup(module: str, attr: str | None, package: str) -> Any:
    """``module.attr`` (or the module), or IncompatibleVersion naming it and the versions."""
    try:
        found = import_module(module)
        return getattr(found, attr) if attr else found
    except (ImportError, AttributeError) as exc:
        name = f"{module}.{attr}" if attr else module
        raise IncompatibleVersion(
            f"nnsweep needs {name}, which the installed {_versions(package)} does not have "
            f"({type(exc).__name__}: {exc}); install a version within pyproject.toml's bounds"
        ) from exc


# -- Keras Tuner --------------------------------------------------------------------------


@cache
def trial_status() -> Any:
    """Keras Tuner's ``TrialStatus`` (public path)."""
    return _lookup("keras_tuner.engine.trial", "TrialStatus", "keras-tuner")


def set_project_dir(oracle: Any, directory: str, name: str) -> None:
    """Keep an oracle's state in ``directory/name`` (``Oracle._set_project_dir``, private:
    a tuner sets it for its oracle, and nnsweep drives the oracle without a tuner)."""
    method = getattr(oracle, "_set_project_dir", None)
    if method is None:
        raise IncompatibleVersion(
            "nnsweep needs keras_tuner's Oracle._set_project_dir, which the installed "
            f"{_versions('keras-tuner')} does not have; install a version within "
            "pyproject.toml's bounds"
        )
    method(directory, name)


def atomic_oracle_files(oracle: Any, write_json: Callable[[str, Any], None]) -> None:
    """Route an oracle's saves (``oracle.json`` and each ``trial_*/trial.json``) through
    ``write_json(path, state)``. Keras Tuner writes them in place, so a kill during a write
    left an empty file that no reload could read; ``save``, ``_save_trial``,
    ``_get_oracle_fname`` and ``_get_trial_dir`` are private."""
    names = ("save", "_save_trial", "_get_oracle_fname", "_get_trial_dir", "get_state")
    missing = [n for n in names if not callable(getattr(oracle, n, None))]
    if missing:
        raise IncompatibleVersion(
            f"nnsweep needs keras_tuner's Oracle.{', Oracle.'.join(missing)}, which the "
            f"installed {_versions('keras-tuner')} does not have; install a version within "
            "pyproject.toml's bounds"
        )
    oracle.save = lambda: write_json(oracle._get_oracle_fname(), oracle.get_state())
    oracle._save_trial = lambda trial: write_json(
        os.path.join(oracle._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state()
    )


# -- TensorFlow ---------------------------------------------------------------------------


def gradient_registry() -> dict[str, Any]:
    """TensorFlow's registry of gradient functions (``ops._gradient_registry._registry``),
    where every traced ``tf.custom_gradient`` stays registered (see ``_keras``)."""
    ops = _lookup("tensorflow.python.framework.ops", None, "tensorflow")
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):
        raise IncompatibleVersion(
            "nnsweep needs tensorflow.python.framework.ops._gradient_registry._registry (a "
            f"dict), which the installed {_versions('tensorflow')} does not have; install a "
            "version within pyproject.toml's bounds"
        )
    return registry
