"""The private names nnsweep takes from Keras Tuner and TensorFlow: found on the installed
versions, and a loud error naming the versions where a release has moved one."""

from __future__ import annotations

import importlib

import pytest

from nnsweep import _compat
from nnsweep.errors import IncompatibleVersion


@pytest.mark.parametrize(
    "lookup",
    [
        _compat.trial_status,
        _compat.gradient_registry,
    ],
)
def test_every_name_exists_in_the_installed_versions(lookup) -> None:
    assert lookup() is not None
    if lookup is _compat.gradient_registry:
        assert isinstance(lookup(), dict)


def test_a_moved_name_stops_with_the_installed_versions(monkeypatch) -> None:
    real = importlib.import_module

    def moved(name, *args):
        if name == "keras_tuner.engine.trial":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(_compat, "import_module", moved)
    _compat.trial_status.cache_clear()
    try:
        with pytest.raises(
            IncompatibleVersion, match=r"keras_tuner\.engine\.trial.*keras-tuner 1\."
        ):
            _compat.trial_status()
    finally:
        _compat.trial_status.cache_clear()
    assert IncompatibleVersion.exit_code == 1


def test_an_oracle_without_its_project_folder_method_is_refused() -> None:
    class Oracle:
        pass

    with pytest.raises(IncompatibleVersion, match="Oracle._set_project_dir"):
        _compat.set_project_dir(Oracle(), "/tmp", "tuner")
