"""The best configuration of a sweep, and training it once more on all training data.

``best_configuration`` reads the results table only; ``train_best`` needs the sweep
(its file) and trains one model on the full training split, validation rows included,
for export in Keras's own format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnsweep.definition.sweep import Sweep
from nnsweep.definition.sweep import config_id as config_id_of
from nnsweep.errors import ResultsError
from nnsweep.report.stats import rank_configurations
from nnsweep.store.results import (
    DEFAULT_RESULTS,
    TRIALS,
    load_results,
    load_sweep_json,
    read_rows,
    results_dir_for,
)


@dataclass(frozen=True)
class BestConfig:
    """The winning configuration: its id, swept values and score over seeds and folds."""

    config_id: str
    values: dict[str, Any]
    metric: str
    direction: str
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    def describe(self) -> str:
        values = ", ".join(f"{k}={v}" for k, v in self.values.items()) or "(no swept values)"
        spread = f" ± {self.std:.4f}" if self.n > 1 else ""
        ci = f", 95 % CI [{self.ci_low:.4f}, {self.ci_high:.4f}]" if self.n > 1 else ""
        return f"{values}: {self.metric} {self.mean:.4f}{spread} (n={self.n}{ci})"


def best_configuration(
    name_or_path: str | Path, *, results: str | Path = DEFAULT_RESULTS, metric: str | None = None
) -> BestConfig:
    """The configuration with the best mean ``metric`` over its successful search trials:
    the one ``stats.rank_configurations`` ranks first, as ``show`` and ``report`` do.

    By default the sweep's validation objective chooses: picking by the test split would
    make the test score an optimistic estimate.
    """
    df = load_results(name_or_path, results)
    folder = results_dir_for(name_or_path, results)
    info = load_sweep_json(folder) if (folder / "sweep.json").exists() else {}
    ranking = rank_configurations(df, info, metric=metric)
    top = ranking.best
    if top is None:
        raise ResultsError(f"no successful trials in {folder}; nothing to rank")
    return BestConfig(
        config_id=str(top["config_id"]),
        values={k: top[k] for k in ranking.by},
        metric=ranking.metric,
        direction=ranking.direction,
        n=int(top["n"]),
        mean=float(top["mean"]),
        std=float(top["std"]),
        ci_low=float(top["ci_low"]),
        ci_high=float(top["ci_high"]),
    )


def params_of(
    sweep: Sweep, config_id: str, results: str | Path = DEFAULT_RESULTS
) -> dict[str, Any]:
    """The exact parameters of a configuration, recomputed from the sweep definition (a
    grid) or from its row in the results (a search, whose values the oracle chose)."""
    if sweep.strategy == "grid":
        for trial in sweep.grid_trials():
            if trial.config_id == config_id:
                return dict(trial.params)
    else:
        path = results_dir_for(sweep.name, results) / TRIALS
        row = next((r for r in read_rows(path) if r["config_id"] == config_id), None)
        if row is not None:
            params = sweep.validate_params(_values_from_row(sweep, row))
            if config_id_of(params) == config_id:
                return params
    raise ResultsError(
        f"configuration {config_id} is not in sweep {sweep.name!r} as it is defined now; "
        "was the sweep file changed since the run?"
    )


def _values_from_row(sweep: Sweep, row: dict[str, str]) -> dict[str, Any]:
    """A configuration's values from the text of its row (exact: no float rounding)."""
    from nnsweep.definition import space as _space
    from nnsweep.definition.params import format_value

    def value(name: str, entry: Any) -> Any:
        text = row.get(name, "")
        if isinstance(entry, _space.Int):
            return int(text)
        if isinstance(entry, _space.Float):
            return float(text)
        candidates = _space.candidate_values(name, entry)
        return next((c for c in candidates if str(format_value(c)) == text), text)

    # Hyperband's budget: a swept epochs the space does not hold.
    budget = row["epochs"] if "epochs" in sweep.swept and "epochs" not in sweep.space else None
    return sweep.params_from(value, budget)


def train_best(
    sweep: Sweep,
    params: dict[str, Any],
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    debug: bool = False,
) -> Any:
    """Train one model with ``params`` on the whole training split; return it and its
    test-split scores (None without a test split)."""
    from nnsweep._keras import import_keras
    from nnsweep.definition import params as _params
    from nnsweep.run.prepare import load_data
    from nnsweep.training.models import build_model, compile_for_task

    keras = import_keras(debug)
    dataset = load_data(sweep, data_dir)
    p = _params.resolve(params, None)
    keras.utils.set_random_seed(seed)
    model = build_model(sweep.model, params, dataset.spec)
    compile_for_task(model, params, dataset.spec)
    model.fit(
        dataset.x_train,
        dataset.y_train,
        batch_size=p["batch_size"],
        epochs=p["epochs"],
        verbose=0,
    )
    test = None
    if dataset.x_test is not None:
        scores = model.evaluate(dataset.x_test, dataset.y_test, verbose=0, return_dict=True)
        test = {f"test_{k}": float(v) for k, v in scores.items()}
    return model, test
