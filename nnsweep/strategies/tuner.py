"""Search strategies through Keras Tuner's oracles: random and bayesian.

The oracle picks configurations; nnsweep trains every seed and fold of each as its own
row (one pack), then tells the oracle the mean of the rows' best objective values (Keras
Tuner's own rule: the best epoch, averaged over executions). The oracle lives in the
runner's process, its state in ``results/<sweep>/tuner/``; with several packs in flight
(on Ray) it is asked for several configurations at once, each under a tuner id of its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nnsweep.definition import space as _space
from nnsweep.definition.sweep import Sweep, Trial
from nnsweep.errors import CorruptResultsError, SweepDefinitionError
from nnsweep.strategies._base import WAIT, Wait

TUNER_DIR = "tuner"
LOCAL_TUNER_ID = "local"


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
    """The parameter columns rows of this sweep carry (hyperband adds its epoch budget,
    the same for every row, when the space does not name it; named models, their own
    settings)."""
    names = list(sweep.space)
    if sweep.named_models:  # each row carries its named model's settings after its name
        own = dict.fromkeys(k for _, params in sweep.named.values() for k in params)
        names = ["model", *own, *(n for n in names if n != "model")]
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
        "hyperparameters": hyperparameters(sweep),
        # The sweep's search_seed, never 0 (keras_tuner treats 0 as "pick one at random").
        "seed": sweep.resolved_search_seed,
        # A failing trial never stops a sweep: its rows record why.
        "max_consecutive_failed_trials": 10**9,
    }
    if sweep.strategy == "random":
        return kt.oracles.RandomSearchOracle(max_trials=sweep.max_trials, **common)
    if sweep.strategy == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=sweep.max_trials, **common)
    raise SweepDefinitionError("strategy", "has no Keras Tuner oracle", sweep.strategy)


def open_local_oracle(oracle: Any, results_dir: Path) -> Any:
    """Keep the oracle's state under ``results_dir/tuner`` and resume from it if present.
    Its files are written whole or not at all (a temporary file renamed), so a kill or a
    full disk leaves the last state readable."""
    from nnsweep._compat import atomic_oracle_files, set_project_dir

    set_project_dir(oracle, str(results_dir), TUNER_DIR)
    atomic_oracle_files(oracle, _write_json)
    folder = results_dir / TUNER_DIR
    if (folder / "oracle.json").exists():
        # Trials that were running when the last run stopped come back for a retry.
        try:
            oracle.reload()
        except (ValueError, KeyError, RuntimeError) as exc:  # JSON errors are ValueErrors
            raise CorruptResultsError(
                f"{folder} holds a Keras Tuner state that cannot be read ({exc}); "
                "use --fresh to start the search again (the old results are kept aside)"
            ) from exc
    return oracle


def _write_json(path: str, state: Any) -> None:
    from nnsweep.store._table_files import write_text_whole

    write_text_whole(Path(path), json.dumps(state))


class TunerStrategy:
    """Asks a Keras Tuner oracle for configurations and tells it the scores; with several
    packs in flight (``slots``), several configurations at once, one tuner id each."""

    concurrent = True

    def __init__(self, sweep: Sweep, oracle: Any, objective: str, *, slots: int = 1) -> None:
        self.sweep = sweep
        self.oracle = oracle
        self.objective = objective
        # "local" first: an oracle kept from a run before this one resumes its trial under it.
        self._free = [LOCAL_TUNER_ID, *(f"{LOCAL_TUNER_ID}-{i}" for i in range(1, slots))]
        self._open: dict[str, tuple[Any, str]] = {}  # config id -> (tuner trial, tuner id)

    def planned(self) -> list[Trial] | None:
        return None

    def trials_of(self, values: Mapping[str, Any]) -> list[Trial]:
        """The seeds and folds of the configuration a tuner trial stands for."""
        params = self.sweep.validate_params(params_from_values(self.sweep, values))
        return self.sweep.trials_for(params)

    def batches(self, done: set[str]) -> Iterator[Sequence[Trial] | Wait]:
        from nnsweep._compat import trial_status

        TrialStatus = trial_status()  # noqa: N806 - Keras Tuner's enum, by its own name

        while True:
            if not self._free:
                yield WAIT  # every tuner id has a configuration in flight
                continue
            tuner_id = self._free.pop(0)
            trial = self.oracle.create_trial(tuner_id)
            if trial.status == TrialStatus.STOPPED:
                self._free.insert(0, tuner_id)
                if not self._open:
                    return
                yield WAIT  # what is in flight may still be told; then ask again
                continue
            if trial.status == TrialStatus.IDLE:
                self._free.insert(0, tuner_id)
                if not self._open:
                    return  # nothing in flight could ever change its answer
                yield WAIT
                continue
            trials = self.trials_of(trial.hyperparameters.values)
            self._open[trials[0].config_id] = (trial, tuner_id)
            yield trials

    def tell(self, batch: Sequence[Trial], rows: Sequence[Mapping[str, Any]]) -> None:
        """Report a finished tuner trial: its score, or failed when no row trained."""
        from nnsweep._compat import trial_status

        TrialStatus = trial_status()  # noqa: N806 - Keras Tuner's enum, by its own name

        trial, tuner_id = self._open.pop(batch[0].config_id)
        self._free.append(tuner_id)
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
