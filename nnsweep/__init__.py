"""nnsweep: hyperparameter sweeps that compare Keras architectures, beyond seed noise.

Importing nnsweep does not import Keras or TensorFlow; training does, when it starts.
"""

from __future__ import annotations

from nnsweep.data import DataSpec, load_dataset
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
    plot_pareto,
    write_comparison,
    write_report,
)
from nnsweep.results import load_history, load_results
from nnsweep.runner import Progress, RunSummary, run_sweep
from nnsweep.space import Choice, Float, Int
from nnsweep.stats import summarize
from nnsweep.sweep import Sweep, Trial, load_sweep

__version__ = "0.1.0"

__all__ = [
    "Choice",
    "DataError",
    "DataSpec",
    "Float",
    "Int",
    "NnsweepError",
    "Progress",
    "ReportResult",
    "ResultsError",
    "RunSummary",
    "Sweep",
    "SweepDefinitionError",
    "SweepFailedError",
    "SweepFileError",
    "SweepInterrupted",
    "Trial",
    "load_dataset",
    "load_history",
    "load_results",
    "load_sweep",
    "plot_categorical",
    "plot_comparison",
    "plot_heatmap",
    "plot_learning_curves",
    "plot_metric",
    "plot_pareto",
    "run_sweep",
    "summarize",
    "write_comparison",
    "write_report",
]
