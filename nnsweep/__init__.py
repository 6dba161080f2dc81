"""nnsweep: hyperparameter sweeps that compare Keras architectures, beyond seed noise.

Importing nnsweep does not import Keras or TensorFlow; training does, when it starts.
The names below load with their modules on first use, so that the command line starts
(and can be interrupted) before pandas and the rest are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnsweep.data import DataSpec, load_dataset
    from nnsweep.definition.pruning import Prune
    from nnsweep.definition.seeds import Seeds
    from nnsweep.definition.space import Boolean, Choice, Float, Int
    from nnsweep.definition.sweep import Sweep, Trial, load_sweep
    from nnsweep.errors import (
        DataError,
        NnsweepError,
        ResultsError,
        SweepDefinitionError,
        SweepFailedError,
        SweepFileError,
        SweepInterrupted,
    )
    from nnsweep.report import (
        ReportResult,
        plot_categorical,
        plot_comparison,
        plot_heatmap,
        plot_learning_curves,
        plot_metric,
        plot_parallel,
        plot_pareto,
        write_comparison,
        write_report,
    )
    from nnsweep.report.stats import summarize
    from nnsweep.run.keep import load_model
    from nnsweep.run.runner import Progress, RunSummary, run_sweep
    from nnsweep.store.results import load_history, load_results
    from nnsweep.training.models import build_model


__version__ = "0.2.0"

__all__ = [
    "Boolean",
    "Choice",
    "DataError",
    "DataSpec",
    "Float",
    "Int",
    "NnsweepError",
    "Progress",
    "Prune",
    "ReportResult",
    "ResultsError",
    "RunSummary",
    "Seeds",
    "Sweep",
    "SweepDefinitionError",
    "SweepFailedError",
    "SweepFileError",
    "SweepInterrupted",
    "Trial",
    "build_model",
    "load_dataset",
    "load_history",
    "load_model",
    "load_results",
    "load_sweep",
    "plot_categorical",
    "plot_comparison",
    "plot_heatmap",
    "plot_learning_curves",
    "plot_metric",
    "plot_parallel",
    "plot_pareto",
    "run_sweep",
    "summarize",
    "write_comparison",
    "write_report",
]

# Each public name and the module that defines it (loaded on first use).
_MODULES = {
    "nnsweep.data": "DataSpec load_dataset",
    "nnsweep.errors": "DataError NnsweepError ResultsError SweepDefinitionError "
    "SweepFailedError SweepFileError SweepInterrupted",
    "nnsweep.report": "ReportResult plot_categorical plot_comparison plot_heatmap "
    "plot_learning_curves plot_metric plot_parallel plot_pareto write_comparison "
    "write_report",
    "nnsweep.definition.pruning": "Prune",
    "nnsweep.store.results": "load_history load_results",
    "nnsweep.run.runner": "Progress RunSummary run_sweep",
    "nnsweep.run.keep": "load_model",
    "nnsweep.definition.seeds": "Seeds",
    "nnsweep.definition.space": "Boolean Choice Float Int",
    "nnsweep.report.stats": "summarize",
    "nnsweep.definition.sweep": "Sweep Trial load_sweep",
    "nnsweep.training.models": "build_model",
}
_HOME = {name: module for module, names in _MODULES.items() for name in names.split()}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'nnsweep' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
