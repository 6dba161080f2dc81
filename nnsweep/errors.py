"""The one exception tree of nnsweep.

Library code raises these; only the command line (``nnsweep.cli``) turns them into
messages, and exits with the ``exit_code`` each class carries (2: bad input, the default;
1: the work ran and failed; 130: interrupted). A message says what must hold and what was
received, so a user can fix the input without reading a traceback.
"""

from __future__ import annotations


class NnsweepError(Exception):
    """Base of every error nnsweep raises on purpose."""

    exit_code = 2  # bad input: a sweep, data, a results folder, an option


class SweepDefinitionError(NnsweepError, ValueError):
    """A sweep (or one of its search-space values) breaks a rule; raised before training."""

    def __init__(self, field: str, rule: str, value: object) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        super().__init__(f"{field} {rule}, got {value!r}")


class SweepFileError(NnsweepError):
    """A sweep file cannot be imported, or does not hold exactly one Sweep."""


class DataError(NnsweepError):
    """A dataset cannot be found, read, or does not fit the sweep."""


class ResultsError(NnsweepError):
    """The results folder cannot be used as asked."""


class ResultsLockedError(ResultsError):
    """Another live process is running the same sweep into the same folder."""


class ResultsMismatchError(ResultsError):
    """Existing results were made by an incompatible version of the sweep."""


class CorruptResultsError(ResultsError):
    """A results file exists but cannot be parsed."""


class TrialError(NnsweepError):
    """One trial failed; the sweep records it and goes on (never fatal by itself)."""


class SweepFailedError(NnsweepError):
    """The sweep ran but no trial succeeded."""

    exit_code = 1


class RegressionFound(NnsweepError):
    """``nnsweep diff --fail-on-regression`` found configurations worse in B (exit code 1)."""

    exit_code = 1


class IncompatibleVersion(NnsweepError):
    """An installed Keras Tuner or TensorFlow lacks a name nnsweep relies on (exit code 1)."""

    exit_code = 1


class ClusterError(NnsweepError):
    """The Ray cluster cannot be reached, started or used as asked (exit code 1)."""

    exit_code = 1


__all__ = [
    "ClusterError",
    "CorruptResultsError",
    "DataError",
    "IncompatibleVersion",
    "NnsweepError",
    "RegressionFound",
    "ResultsError",
    "ResultsLockedError",
    "ResultsMismatchError",
    "SweepDefinitionError",
    "SweepFailedError",
    "SweepFileError",
    "TrialError",
]


class SweepInterrupted(NnsweepError):
    """The user stopped a run (Ctrl-C); finished trials are saved and the run can resume."""

    exit_code = 130

    def __init__(self, done: int, total: int | None) -> None:
        self.done = done
        self.total = total
        of = f" of {total}" if total is not None else ""
        super().__init__(f"interrupted: {done}{of} trials done; run the same command to resume")


__all__ += ["SweepInterrupted"]
