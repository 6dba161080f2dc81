"""The rules a ``Sweep``'s fields must satisfy, checked when it is created (``sweep.py``).

Each check is a function of the fields it reads and raises ``SweepDefinitionError`` naming
the field, the rule and the value; the names users import stay in ``sweep.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from nnsweep.definition import metrics as _metrics
from nnsweep.definition import params as _params
from nnsweep.definition import space as _space
from nnsweep.definition.seeds import Seeds
from nnsweep.errors import SweepDefinitionError
from nnsweep.store._layout import (
    BASE_COLUMNS,
    HISTORY_KEYS,
    RUN_COLUMNS,
    TAIL_COLUMNS,
)

STRATEGIES = ("grid", "random", "bayesian", "hyperband")
BUILTIN_DATASETS = ("digits", "mnist", "fashion_mnist", "imdb", "reuters", "boston_housing")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME_MAX = 100  # it names a folder; file systems allow 255 bytes, paths add more
SEED_MAX = 2**32 - 1  # NumPy's and TensorFlow's seeds are 32-bit
# A grid larger than this is refused before it is expanded: each trial is a row, a model
# and seconds of training, and expanding a product of lists costs memory of its own.
MAX_GRID_TRIALS = 1_000_000
# Columns of trials.csv and history.csv besides the hyperparameters, from the store's
# layout (and the tasks' metrics, accuracy or MAE): a hyperparameter of one of these names
# would be written twice in the header.
RESULT_COLUMNS = frozenset(
    {
        *BASE_COLUMNS,
        *RUN_COLUMNS,
        *TAIL_COLUMNS,
        *HISTORY_KEYS,
        "loss",
        "best_epoch",
        "accuracy",
        "mae",
        *_metrics.METRICS,
    }
)
RESULT_PREFIXES = ("val_", "test_", "best_")


def is_result_column(name: str) -> bool:
    """Whether ``name`` is, or may become, a column of the results tables."""
    return name in RESULT_COLUMNS or name.startswith(RESULT_PREFIXES)


def check_data(data: str | Path | Callable[..., Any]) -> None:
    """A built-in dataset's name, a .csv/.npz path or a function."""
    if callable(data):
        return
    if isinstance(data, Path):
        data = str(data)
    if not isinstance(data, str):
        raise SweepDefinitionError(
            "data", "must be a dataset name, a file path or a function", data
        )
    if data in BUILTIN_DATASETS or data.endswith((".csv", ".npz")):
        return
    raise SweepDefinitionError(
        "data",
        f"must be one of {', '.join(BUILTIN_DATASETS)}, a .csv/.npz path or a function",
        data,
    )


def check_model(model: Any) -> Any:
    """A built-in model family, a function ``build(params, spec)``, or named models
    ``{name: (family, params)}`` (returned read-only, each model's params validated)."""
    if callable(model):
        return model
    if isinstance(model, Mapping):
        return _named_models(model)
    if model not in _params.MODEL_FAMILIES:
        raise SweepDefinitionError(
            "model",
            f"must be one of {', '.join(_params.MODEL_FAMILIES)}, a function "
            "build(params, spec) or named models {name: (family, params)}",
            model,
        )
    return model


def _named_models(models: Mapping[Any, Any]) -> Mapping[str, tuple[str, Mapping[str, Any]]]:
    if not models:
        raise SweepDefinitionError("model", "must name at least one model", dict(models))
    out = {}
    for name, entry in models.items():
        where = f"model[{name!r}]"
        if not isinstance(name, str) or not name:
            raise SweepDefinitionError("model", "names must be non-empty strings", name)
        ok = isinstance(entry, tuple | list) and len(entry) == 2 and isinstance(entry[1], Mapping)
        if not ok or entry[0] not in _params.MODEL_FAMILIES:
            raise SweepDefinitionError(
                where,
                f"must be (family, params), family one of {', '.join(_params.MODEL_FAMILIES)}",
                entry,
            )
        family, params = entry[0], {k: _space.plain(v) for k, v in entry[1].items()}
        known = _params.MODEL_PARAMS[family]
        for key, value in params.items():
            if key in _params.TRAINING_PARAMS:
                # One place for training settings: the space (checked there against the task).
                raise SweepDefinitionError(
                    f"{where}[{key!r}]", "is a training setting: set it in the space", value
                )
            if key not in known:
                raise SweepDefinitionError(f"{where}[{key!r}]", _unknown(key, family, known), value)
            if _space.is_swept(value):
                raise SweepDefinitionError(
                    f"{where}[{key!r}]", "must be one value (sweep in the space)", value
                )
            params[key] = known[key].validate(value, f"{where}[{key!r}]")
        try:
            _params.check_combination(params, family)
        except SweepDefinitionError as exc:  # it names space entries: these are the model's
            field = exc.field.replace("space[", f"{where}[", 1)
            raise SweepDefinitionError(field, exc.rule, exc.value) from None
        out[name] = (family, MappingProxyType(params))
    return MappingProxyType(out)


def check_seeds(seeds: Any, strategy: str) -> int | tuple[int, ...] | Seeds:
    """The seeds, normalised (a list becomes a tuple)."""
    if isinstance(seeds, Seeds):
        if strategy != "grid":
            raise SweepDefinitionError(
                "seeds",
                "adaptive Seeds(...) need strategy 'grid' (a search picks its "
                f"configurations as it goes), not {strategy!r}",
                seeds,
            )
        return seeds
    if isinstance(seeds, bool) or not isinstance(seeds, (int, Sequence)):
        raise SweepDefinitionError("seeds", "must be a count >= 1 or a list of ints", seeds)
    if isinstance(seeds, int):
        if seeds < 1:
            raise SweepDefinitionError("seeds", "must be >= 1", seeds)
        if seeds > MAX_GRID_TRIALS:
            raise SweepDefinitionError("seeds", f"must be at most {MAX_GRID_TRIALS:,}", seeds)
        return seeds
    if isinstance(seeds, str) or not seeds:
        raise SweepDefinitionError("seeds", "must be a count >= 1 or a list of ints", seeds)
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise SweepDefinitionError("seeds", "must hold integers >= 0", seeds)
    if max(seeds) > SEED_MAX:
        raise SweepDefinitionError(
            "seeds", f"must hold integers <= 2**32 - 1 ({SEED_MAX})", max(seeds)
        )
    if len(set(seeds)) != len(seeds):
        raise SweepDefinitionError("seeds", "must not repeat a seed", seeds)
    return tuple(seeds)


KEEP_ALL = "all"


def check_keep(value: Any, field: str = "keep_models") -> int | str | None:
    """How many configurations' models a run keeps: None (none), a count >= 1, or "all"."""
    if value is None or value == KEEP_ALL:
        return value
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SweepDefinitionError(field, "must be a count of configurations >= 1 or 'all'", value)
    return value


def check_search_seed(search_seed: Any, strategy: str) -> None:
    """A search's own seed: None (``split_seed + 1``) or an integer a search can use."""
    if search_seed is None:
        return
    if strategy == "grid":
        raise SweepDefinitionError(
            "search_seed",
            "applies only to the search strategies random, bayesian and hyperband (a grid "
            "draws nothing)",
            search_seed,
        )
    # Keras Tuner's oracles take a seed of 0 as "pick one at random": never reproducible.
    if (
        isinstance(search_seed, bool)
        or not isinstance(search_seed, int)
        or not 1 <= search_seed <= SEED_MAX
    ):
        raise SweepDefinitionError(
            "search_seed",
            f"must be an integer in [1, {SEED_MAX}] (Keras Tuner draws a random seed for 0) "
            "or None",
            search_seed,
        )


def check_run_settings(
    *,
    strategy: Any,
    max_trials: Any,
    cv: Any,
    validation_split: Any,
    split_seed: Any,
    search_seed: Any,
    objective: Any,
    direction: Any,
    target: Any,
) -> None:
    """The strategy and its budget, folds, the split and its seed, the objective."""
    if strategy not in STRATEGIES:
        raise SweepDefinitionError("strategy", f"must be one of {', '.join(STRATEGIES)}", strategy)
    if max_trials is not None and (
        isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1
    ):
        raise SweepDefinitionError("max_trials", "must be an integer >= 1", max_trials)
    if strategy != "grid" and max_trials is None:
        raise SweepDefinitionError("max_trials", f"is required for strategy {strategy!r}", None)
    if cv is not None and (isinstance(cv, bool) or not isinstance(cv, int) or cv < 2):
        raise SweepDefinitionError("cv", "must be an integer >= 2 (folds) or None", cv)
    if cv is not None and cv > MAX_GRID_TRIALS:
        raise SweepDefinitionError("cv", f"must be at most {MAX_GRID_TRIALS:,}", cv)
    vs = validation_split
    if isinstance(vs, bool) or not isinstance(vs, (int, float)) or not 0 < vs < 1:
        raise SweepDefinitionError("validation_split", "must be in (0, 1)", vs)
    ss = split_seed
    if isinstance(ss, bool) or not isinstance(ss, int) or not 0 <= ss <= SEED_MAX:
        raise SweepDefinitionError("split_seed", f"must be an integer in [0, {SEED_MAX}]", ss)
    check_search_seed(search_seed, strategy)
    if objective is not None and not (isinstance(objective, str) and objective):
        raise SweepDefinitionError("objective", "must be a metric column name", objective)
    if direction not in (None, "min", "max"):
        raise SweepDefinitionError("direction", "must be 'min' or 'max'", direction)
    if not isinstance(target, str) or not target:
        raise SweepDefinitionError("target", "must be a column name", target)


def check_space(space: Mapping[str, Any], model: Any, strategy: str, runs: int) -> None:
    """Each entry against its hyperparameter; a grid's size; a search's ranges.
    ``runs``: the trials of one configuration (seeds x folds)."""
    if isinstance(model, Mapping):
        _check_named_space(space, model)
        families = {family for family, _ in model.values()}
    else:
        families = {model if isinstance(model, str) else None}
    for builtin in sorted(families, key=str):
        _check_entries(space, builtin, strategy, isinstance(model, Mapping))
    schedules = _space.candidate_values("lr_schedule", space.get("lr_schedule", "constant"))
    _params.check_schedule_settings(space, schedules)
    if strategy == "grid":
        size = _space.grid_size(space) * runs
        if size > MAX_GRID_TRIALS:
            raise SweepDefinitionError(
                "space",
                f"makes {size:,} trials (configurations x seeds x folds), more than the "
                f"{MAX_GRID_TRIALS:,} a grid may have; sweep fewer values or use a search "
                "strategy with max_trials",
                _space.describe_sizes(space),
            )
        for params in _space.iter_grid(space):
            if isinstance(model, Mapping):
                family, own = model[params["model"]]
                _params.check_combination({**own, **params}, family)
            else:
                _params.check_combination(params, next(iter(families)))
    elif not any(_space.is_swept(v) for v in space.values()):
        raise SweepDefinitionError(
            "space", f"has nothing to search for strategy {strategy!r}", dict(space)
        )
    if strategy == "hyperband" and _space.is_swept(space.get("epochs")):
        raise SweepDefinitionError(
            "space['epochs']",
            "must be fixed for hyperband (it is the largest epoch budget)",
            space["epochs"],
        )


def _check_named_space(space: Mapping[str, Any], models: Mapping[str, Any]) -> None:
    """The space's ``model`` entry names named models; no other entry sets what one of
    them sets (which would win would be a guess)."""
    for name in _space.candidate_values("model", space["model"]):
        if name not in models:
            raise SweepDefinitionError(
                "space['model']", f"must name models of the sweep ({', '.join(models)})", name
            )
    for name, (_, own) in models.items():
        for key in own:
            if key in space:
                raise SweepDefinitionError(
                    f"space[{key!r}]",
                    f"must not be set in the space and by model[{name!r}] too",
                    space[key],
                )


def _check_entries(
    space: Mapping[str, Any], builtin: str | None, strategy: str, named: bool
) -> None:
    known = _params.known_params(builtin)
    for name, value in space.items():
        where = f"space[{name!r}]"
        if not isinstance(name, str):
            raise SweepDefinitionError("space", "keys must be strings", name)
        if is_result_column(name):
            raise SweepDefinitionError(
                where,
                "must not be named like a column nnsweep writes (trial_id, seed, status, "
                "loss, accuracy, val_*, test_*, best_*, ...): rename the hyperparameter",
                value,
            )
        if name in known:
            param = known[name]
        elif name == "model" and named:
            param = None  # checked against the names by _check_named_space
        elif builtin is not None:
            raise SweepDefinitionError(where, _unknown(name, builtin, known), value)
        else:
            param = None  # a custom build function's own parameter: passed through
        _check_entry(name, value, where, param)
        if strategy == "grid":
            _space.check_grid_entry(name, value)


def _unknown(name: str, model: str, known: Mapping[str, Any]) -> str:
    """The rule an unknown name breaks, with the nearest known name when there is one."""
    rule = f"is not a hyperparameter of model {model!r} (known: {', '.join(sorted(known))})"
    nearest = _params.nearest_name(name, known)
    return f"{rule}; did you mean {nearest!r}?" if nearest else rule


def _check_entry(name: str, value: Any, where: str, param: _params.Param | None) -> None:
    if isinstance(value, list) and not value:
        raise SweepDefinitionError(where, "must not be an empty list", value)
    repeated = _space.repeated(value)
    if repeated:
        raise SweepDefinitionError(
            where, f"must not repeat a value (each is one model; repeated: {repeated})", value
        )
    if param is None:
        return
    if isinstance(value, (_space.Int, _space.Float)):
        if param.kind == "int" and isinstance(value, _space.Float):
            raise SweepDefinitionError(where, "must be an Int range, not Float", value)
        if param.kind in ("str", "bool", "ints", "weights"):
            raise SweepDefinitionError(where, "cannot be a numeric range", value)
    for candidate in _space.candidate_values(name, value):
        param.validate(candidate, where)


def check_builtin_task(data: Any, space: Mapping[str, Any], metrics: Sequence[str] = ()) -> None:
    """Class weights, label smoothing and the added metrics against a built-in dataset's
    task and classes, known without loading it (other data is checked once loaded, before
    anything is written)."""
    classification = any(n in space for n in _params.CLASSIFICATION_PARAMS)
    if not isinstance(data, str) or not (classification or metrics):
        return
    from nnsweep.data._builtin import BUILTIN_TASKS

    if data in BUILTIN_TASKS:
        _params.check_space_task(space, *BUILTIN_TASKS[data])
        _metrics.check_metrics_task(metrics, BUILTIN_TASKS[data][0])


def check_metrics(metrics: Any, objective: str | None) -> tuple[str, ...]:
    """The added metrics' names, and an objective such as ``val_auc`` among them."""
    names = _metrics.check_metrics(metrics)
    _metrics.check_objective_metrics(objective, names)
    return names
