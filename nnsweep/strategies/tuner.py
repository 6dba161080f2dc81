"""Search strategies through Keras Tuner's oracles: random, bayesian, hyperband.

The oracle picks configurations; nnsweep trains every seed and fold of each as its own
row (one pack), then tells the oracle the mean of the rows' best objective values (Keras
Tuner's own rule: the best epoch, averaged over executions). The same class drives a
local oracle, whose state lives in ``results/<sweep>/tuner/``, and a chief's oracle over
the network (see ``nnsweep.distributed``): a tuner trial is one unit of work either way.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nnsweep import space as _space
from nnsweep.errors import SweepDefinitionError
from nnsweep.params import resolve
from nnsweep.sweep import Sweep, Trial

TUNER_DIR = "tuner"
LOCAL_TUNER_ID = "local"
GRID_KEY = "config"
IDLE_POLL_SECONDS = 2.0


def _kt() -> Any:
    from nnsweep._keras import import_keras

    import_keras()  # quietly, before keras_tuner imports TensorFlow loudly
    import keras_tuner

    return keras_tuner


def hyperparameters(sweep: Sweep) -> Any:
    """The sweep's swept entries as a ``keras_tuner.HyperParameters`` space."""
    hp = _kt().HyperParameters()
    for name, value in sweep.space.items():
        if _space.is_swept(value):
            _space.to_keras_tuner(hp, name, value)
    return hp


def params_from_values(sweep: Sweep, values: Mapping[str, Any]) -> dict[str, Any]:
    """One configuration from the values a tuner trial carries (the inverse of the space)."""

    def value(name: str, entry: Any) -> Any:
        if name in values:
            return values[name]
        # Choices of non-scalars (layer-width tuples) travel as an index.
        return _space.candidate_values(name, entry)[int(values[name + "__index"])]

    # Hyperband's budget for this trial: it trains from scratch for that many epochs.
    return sweep.params_from(value, values.get("tuner/epochs"))


def param_names(sweep: Sweep) -> list[str]:
    """The parameter columns rows of this sweep carry (hyperband adds its epoch budget)."""
    names = list(sweep.space)
    if sweep.strategy == "hyperband" and "epochs" not in names:
        names.append("epochs")
    return names


def objective_value(rows: Sequence[Mapping[str, Any]], objective: str) -> float:
    """The mean best objective over the rows that trained (nan when none did). A pruned
    row counts with its best value up to its rung: the oracle hears an intermediate value,
    as Keras Tuner's oracles take one from a trial stopped early."""
    values = []
    for row in rows:
        if row.get("status") not in ("ok", "pruned"):
            continue
        try:
            value = float(row.get(f"best_{objective}", math.nan))
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            values.append(value)
    return sum(values) / len(values) if values else math.nan


def make_oracle(sweep: Sweep, objective: str, direction: str) -> Any:
    """A Keras Tuner oracle for the sweep's strategy (grid: one trial per configuration)."""
    oracle = _make_oracle(sweep, objective, direction)
    oracle.verbose = 0  # nnsweep shows its own progress
    return oracle


def _make_oracle(sweep: Sweep, objective: str, direction: str) -> Any:
    kt = _kt()
    common = {
        "objective": kt.Objective(objective, direction=direction),
        "hyperparameters": hyperparameters(sweep) if sweep.strategy != "grid" else None,
        "seed": sweep.split_seed + 1,  # keras_tuner treats 0 as "pick one at random"
        # A failing trial never stops a sweep: its rows record why.
        "max_consecutive_failed_trials": 10**9,
    }
    if sweep.strategy == "random":
        return kt.oracles.RandomSearchOracle(max_trials=sweep.max_trials, **common)
    if sweep.strategy == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=sweep.max_trials, **common)
    if sweep.strategy == "hyperband":
        # The sweep's epochs are the largest budget; hyperband tries smaller ones first.
        epochs = int(resolve(dict(sweep.space), None)["epochs"])
        oracle = kt.oracles.HyperbandOracle(max_epochs=epochs, **common)
        oracle.max_trials = sweep.max_trials  # the base class stops there too
        return oracle
    if sweep.strategy == "grid":
        from nnsweep._tuner_classes import grid_oracle

        return grid_oracle(len(_space.expand_grid(sweep.space)), GRID_KEY, common)
    raise SweepDefinitionError("strategy", "has no Keras Tuner oracle", sweep.strategy)


def open_local_oracle(oracle: Any, results_dir: Path) -> Any:
    """Keep the oracle's state under ``results_dir/tuner`` and resume from it if present."""
    from nnsweep._compat import set_project_dir

    set_project_dir(oracle, str(results_dir), TUNER_DIR)
    if (results_dir / TUNER_DIR / "oracle.json").exists():
        # Trials that were running when the last run stopped come back for a retry.
        oracle.reload()
    return oracle


class TunerStrategy:
    """Asks an oracle (local, or a chief's) for configurations and tells it the scores."""

    def __init__(
        self,
        sweep: Sweep,
        oracle: Any,
        objective: str,
        *,
        tuner_id: str = LOCAL_TUNER_ID,
        heartbeat_seconds: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.sweep = sweep
        self.oracle = oracle
        self.objective = objective
        self.tuner_id = tuner_id
        self.heartbeat_seconds = heartbeat_seconds
        self.stop = stop or threading.Event()
        self._grid = sweep.grid_trials() if sweep.strategy == "grid" else None
        self._current: Any = None
        self._beat: threading.Event | None = None

    def planned(self) -> list[Trial] | None:
        return None

    def trials_of(self, values: Mapping[str, Any]) -> list[Trial]:
        """The seeds and folds of the configuration a tuner trial stands for."""
        if self._grid is not None:
            per_config = len(self.sweep.seed_list) * len(self.sweep.folds)
            start = int(values[GRID_KEY]) * per_config
            return self._grid[start : start + per_config]
        params = self.sweep.validate_params(params_from_values(self.sweep, values))
        return self.sweep.trials_for(params)

    def batches(self, done: set[str]) -> Iterator[Sequence[Trial]]:
        from nnsweep._compat import trial_status

        TrialStatus = trial_status()  # noqa: N806 - Keras Tuner's enum, by its own name

        while not self.stop.is_set():
            trial = self.oracle.create_trial(self.tuner_id)
            if trial.status == TrialStatus.STOPPED:
                return
            if trial.status == TrialStatus.IDLE:
                # Others still run trials this search may need (hyperband's next round,
                # or a worker that may die and leave its trial to us).
                self.stop.wait(IDLE_POLL_SECONDS)
                continue
            self._current = trial
            self._start_heartbeat(trial.trial_id)
            try:
                yield self.trials_of(trial.hyperparameters.values)
            finally:
                self._stop_heartbeat()

    def tell(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Report the finished tuner trial: its score, or failed when no row trained."""
        from nnsweep._compat import trial_status

        TrialStatus = trial_status()  # noqa: N806 - Keras Tuner's enum, by its own name

        trial, self._current = self._current, None
        if trial is None:
            return
        value = objective_value(rows, self.objective)
        if math.isfinite(value):
            # The step: the epochs the value was reached in (a pruned trial's rung).
            step = max((int(float(r.get("epochs_run") or 0)) for r in rows), default=0)
            self.oracle.update_trial(trial.trial_id, {self.objective: value}, step=step)
            trial.status = TrialStatus.COMPLETED
        else:
            trial.status = TrialStatus.FAILED
            trial.message = next((str(r.get("error")) for r in rows if r.get("error")), None)
        self.oracle.end_trial(trial)

    def _start_heartbeat(self, trial_id: str) -> None:
        if not self.heartbeat_seconds:
            return
        beat = self._beat = threading.Event()

        def run() -> None:
            # The chief hands a trial to another worker when its holder goes silent.
            while not beat.wait(self.heartbeat_seconds):
                try:
                    self.oracle.get_trial(trial_id)
                except Exception:  # noqa: BLE001 - a missed beat is retried; training goes on
                    time.sleep(0)

        threading.Thread(target=run, name="nnsweep-heartbeat", daemon=True).start()

    def _stop_heartbeat(self) -> None:
        if self._beat is not None:
            self._beat.set()
            self._beat = None
