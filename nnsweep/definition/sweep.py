"""The ``Sweep`` definition, its validation, its trials, and ``load_sweep(path)``."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from nnsweep.definition import _checks
from nnsweep.definition import params as _params
from nnsweep.definition import space as _space
from nnsweep.definition._checks import (
    BUILTIN_DATASETS,
    MAX_GRID_TRIALS,
    RESULT_COLUMNS,
    RESULT_PREFIXES,
    SEED_MAX,
    STRATEGIES,
    is_result_column,
)
from nnsweep.definition.pruning import Prune
from nnsweep.definition.pruning import resolve as _resolve_prune
from nnsweep.definition.seeds import Seeds
from nnsweep.errors import SweepDefinitionError, SweepFileError

# The rules' constants live with the rules (``_checks``) and stay importable from here.
__all__ = [
    "BUILTIN_DATASETS",
    "MAX_GRID_TRIALS",
    "RESULT_COLUMNS",
    "RESULT_PREFIXES",
    "SEED_MAX",
    "STRATEGIES",
    "Sweep",
    "Trial",
    "config_id",
    "is_result_column",
    "load_sweep",
    "located",
    "with_overrides",
]


@dataclass(frozen=True)
class Trial:
    """One model to train: a configuration, a seed and a fold."""

    params: Mapping[str, Any]
    seed: int
    fold: int
    config_id: str
    trial_id: str


def config_id(params: Mapping[str, Any]) -> str:
    """A short stable id for a configuration (same params → same id, on any machine)."""
    text = json.dumps(dict(params), sort_keys=True, default=_space.stable_name)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Sweep:
    """A search space over a model family and a dataset, validated when created.

    ``space`` maps hyperparameter names to a fixed scalar (or tuple), a list of values to
    sweep, or a ``Choice``/``Int``/``Float`` range for the tuner strategies.
    """

    name: str
    data: str | Path | Callable[..., Any] = "digits"
    # A built-in family, a function build(params, spec), or named models
    # {name: (family, params)}, each trial one of them (the "model" hyperparameter).
    model: str | Callable[..., Any] | Mapping[str, tuple[str, Mapping[str, Any]]] = "mlp"
    space: Mapping[str, Any] = field(default_factory=dict)
    seeds: int | Sequence[int] | Seeds = 1
    strategy: str = "grid"
    max_trials: int | None = None
    cv: int | None = None
    validation_split: float = 0.2
    split_seed: int = 0
    objective: str | None = None
    direction: str | None = None
    # Keras metrics recorded beside the task's own (``definition.metrics``: auc, f1, ...).
    metrics: Sequence[str] = ()
    target: str = "target"
    data_options: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    prune: bool | Prune | None = False
    # The seed of a search's draws (Keras Tuner's oracle, hyperband's brackets); None is
    # split_seed + 1 (1 for the largest split_seed), as before it could be set, so older
    # folders resume the same draws.
    search_seed: int | None = None
    # How many of the best configurations' trained models a run keeps (``run --keep-models``:
    # a count, or "all"); None keeps none. Not in the fingerprint: no row depends on it.
    keep_models: int | str | None = None
    # Where the sweep was defined ("path:line", set by load_sweep): errors found later, at
    # run time, about its fields point there as those found when it is created do.
    source: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _checks.NAME_RE.fullmatch(self.name):
            raise SweepDefinitionError(
                "name",
                "must be letters, digits, '_', '-' or '.', starting with a letter or digit "
                "(it names a folder)",
                self.name,
            )
        if len(self.name) > _checks.NAME_MAX:
            raise SweepDefinitionError(
                "name",
                f"must be at most {_checks.NAME_MAX} characters (it names a folder)",
                self.name,
            )
        _checks.check_data(self.data)
        object.__setattr__(self, "model", _checks.check_model(self.model))
        if not isinstance(self.space, Mapping):
            raise SweepDefinitionError("space", "must be a dict of hyperparameters", self.space)
        space = {k: _space.plain(v) for k, v in self.space.items()}
        if self.named_models:
            # Which named model a trial trains is its "model" hyperparameter: every name,
            # in order, unless the space chooses some.
            space = {"model": space.pop("model", list(self.named)), **space}
        object.__setattr__(self, "space", MappingProxyType(space))
        for attr in ("seeds", "max_trials", "cv", "validation_split", "split_seed", "search_seed"):
            object.__setattr__(self, attr, _space.plain(getattr(self, attr)))
        object.__setattr__(self, "data_options", MappingProxyType(dict(self.data_options)))
        object.__setattr__(self, "seeds", _checks.check_seeds(self.seeds, self.strategy))
        _checks.check_run_settings(
            strategy=self.strategy,
            max_trials=self.max_trials,
            cv=self.cv,
            validation_split=self.validation_split,
            split_seed=self.split_seed,
            search_seed=self.search_seed,
            objective=self.objective,
            direction=self.direction,
            target=self.target,
        )
        object.__setattr__(self, "keep_models", _checks.check_keep(self.keep_models))
        object.__setattr__(self, "metrics", _checks.check_metrics(self.metrics, self.objective))
        runs = len(self.seed_list) * (self.cv or 1)
        _checks.check_space(self.space, self.model, self.strategy, runs)
        _checks.check_builtin_task(self.data, self.space, self.metrics)
        self._check_prune()

    # -- validation -----------------------------------------------------------------

    def _check_prune(self) -> None:
        rule = _resolve_prune(self.prune)
        object.__setattr__(self, "prune", rule)
        if rule is None:
            return
        if self.strategy == "hyperband":
            raise SweepDefinitionError(
                "strategy",
                "must be grid, random or bayesian for prune (hyperband's brackets prune by "
                "their own rule)",
                self.strategy,
            )
        runs = (self.adaptive.min if self.adaptive else len(self.seed_list)) * len(self.folds)
        if runs < 2:
            raise SweepDefinitionError(
                "seeds",
                "must be at least 2 (or cv set) for prune, which judges each gap against the "
                "seed noise",
                self.seeds,
            )
        if not rule.epochs(self.max_epochs):
            explicit = isinstance(rule.rungs, tuple)
            raise SweepDefinitionError(
                "prune.rungs" if explicit else "prune.first",
                f"must have an epoch below the last one ({self.max_epochs}) to judge at",
                list(rule.rungs) if explicit else rule.first,
            )

    # -- derived --------------------------------------------------------------------

    @property
    def max_epochs(self) -> int:
        """The most epochs any trial of the sweep trains (the space's largest value)."""
        value = self.space.get("epochs", _params.known_params(None)["epochs"].default)
        return max(int(v) for v in _space.candidate_values("epochs", value))

    @property
    def resolved_search_seed(self) -> int | None:
        """The seed a search draws its configurations from (None for a grid)."""
        if self.strategy == "grid":
            return None
        if self.search_seed is not None:
            return self.search_seed
        # split_seed + 1, as before search_seed could be set (older folders resume the same
        # draws); the largest split_seed wraps to 1, where the oracles' seeds end.
        return self.split_seed % SEED_MAX + 1

    @property
    def seed_list(self) -> tuple[int, ...]:
        """The seeds every configuration is trained with (with adaptive seeds: may be)."""
        if isinstance(self.seeds, Seeds):
            return tuple(range(self.seeds.max))
        if isinstance(self.seeds, int):
            return tuple(range(self.seeds))
        return tuple(self.seeds)

    @property
    def adaptive(self) -> Seeds | None:
        """The adaptive-seeds rule, or None when every configuration gets every seed."""
        return self.seeds if isinstance(self.seeds, Seeds) else None

    @property
    def grid_size(self) -> int:
        """How many configurations a grid over the space has (counted, not expanded)."""
        return _space.grid_size(self.space)

    @property
    def folds(self) -> tuple[int, ...]:
        """Fold numbers: 0..cv-1, or (0,) for a single held-out validation split."""
        return tuple(range(self.cv)) if self.cv else (0,)

    @property
    def named_models(self) -> bool:
        """Whether each trial trains one of the sweep's named models."""
        return isinstance(self.model, Mapping)

    @property
    def named(self) -> Mapping[str, tuple[str, Mapping[str, Any]]]:
        """The named models, name to (family, params); empty unless ``model`` names some."""
        return self.model if isinstance(self.model, Mapping) else {}

    @property
    def model_name(self) -> str:
        if isinstance(self.model, str):
            return self.model
        if self.named_models:
            return "named models"
        return _space.callable_name(self.model)

    @property
    def data_name(self) -> str:
        if callable(self.data):
            return _space.callable_name(self.data)
        return str(self.data)

    @property
    def swept(self) -> tuple[str, ...]:
        """Names of the hyperparameters that vary between trials."""
        return tuple(n for n, v in self.space.items() if _space.is_swept(v))

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check one concrete configuration (e.g. sampled by a tuner) and normalise it."""
        builtin = self.model if isinstance(self.model, str) else None
        if self.named_models:
            # The named model's own settings join the trial's: each row says what it trained.
            builtin, own = self.named[params["model"]]
            params = {"model": params["model"], **own, **params}
        known = _params.known_params(builtin)
        out = {}
        for name, value in params.items():
            param = known.get(name)
            out[name] = param.validate(value, f"space[{name!r}]") if param else value
        _params.check_combination(out, builtin)
        return out

    def params_from(
        self, swept_value: Callable[[str, Any], Any], epochs: Any = None
    ) -> dict[str, Any]:
        """One configuration back from where its swept values were kept (a tuner trial, a
        row's text): ``swept_value(name, space_entry)`` gives each; fixed entries are the
        space's own. ``epochs``: hyperband's budget for the trial, when it has one."""
        params = {
            name: swept_value(name, value) if _space.is_swept(value) else value
            for name, value in self.space.items()
        }
        if epochs is not None:
            params["epochs"] = int(epochs)
        return params

    def trials_for(
        self, params: Mapping[str, Any], seeds: Sequence[int] | None = None
    ) -> list[Trial]:
        """Every seed × fold of one configuration, as trials (``seeds``: only these)."""
        params = MappingProxyType(dict(params))
        cid = config_id(params)
        return [
            Trial(params, seed, fold, cid, f"{cid}-s{seed}-f{fold}")
            for seed in (self.seed_list if seeds is None else seeds)
            for fold in self.folds
        ]

    def configurations(self) -> list[dict[str, Any]]:
        """Every configuration of a grid sweep, validated, in grid order."""
        return [self.validate_params(p) for p in _space.expand_grid(self.space)]

    def grid_trials(self) -> list[Trial]:
        """All trials of a grid sweep, configuration by configuration."""
        trials: list[Trial] = []
        for params in _space.expand_grid(self.space):
            trials.extend(self.trials_for(self.validate_params(params)))
        return trials

    def fingerprint(self) -> dict[str, Any]:
        """What every trial depends on; a change here makes old results incomparable."""
        return {
            "data": self.data_name,
            "data_options": dict(self.data_options),
            "target": self.target,
            "model": self.model_name,
            "cv": self.cv,
            "validation_split": self.validation_split if not self.cv else None,
            "split_seed": self.split_seed,
            "fixed": {k: _space.describe(v) for k, v in _space.iter_fixed(self.space)},
            # What a search's oracle state stands for: another strategy or space would
            # resume it pointed elsewhere (a grid's swept lists may change: trials add).
            **(
                {
                    "strategy": self.strategy,
                    "searched": {n: _space.describe(self.space[n]) for n in self.swept},
                    "search_seed": self.resolved_search_seed,
                }
                if self.strategy != "grid"
                else {}
            ),
        }

    def _models_json(self) -> dict[str, Any]:
        return {
            name: [family, {k: _space.describe(v) for k, v in own.items()}]
            for name, (family, own) in self.named.items()
        }

    def to_json(self) -> dict[str, Any]:
        """The resolved sweep, as written to sweep.json."""
        return {
            "name": self.name,
            "description": self.description,
            "data": self.data_name,
            "model": self.model_name,
            **({"models": self._models_json()} if self.named_models else {}),
            "space": {k: _space.describe(v) for k, v in self.space.items()},
            "swept": list(self.swept),
            "seeds": list(self.seed_list),
            "adaptive_seeds": self.adaptive.to_json() if self.adaptive else None,
            "cv": self.cv,
            "strategy": self.strategy,
            "max_trials": self.max_trials,
            "validation_split": self.validation_split,
            "split_seed": self.split_seed,
            "search_seed": self.resolved_search_seed,
            "objective": self.objective,
            "direction": self.direction,
            "metrics": list(self.metrics),
            "target": self.target,
            "data_options": dict(self.data_options),
            "prune": self.prune.to_json() if isinstance(self.prune, Prune) else None,
            "fingerprint": self.fingerprint(),
        }


def with_overrides(sweep: Sweep, **space_overrides: Any) -> Sweep:
    """A copy of ``sweep`` with some space entries fixed (e.g. a quick-look ``epochs``)."""
    space = dict(sweep.space)
    space.update(space_overrides)
    return replace(sweep, space=space)


def load_sweep(path: str | Path) -> Sweep:
    """Import a sweep file and return its one ``Sweep`` (named by its docstring if any)."""
    path = Path(path)
    if not path.is_file():
        raise SweepFileError(f"sweep file not found: {path}")
    # Named by a digest of the path, not hash(), which differs from process to process.
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"_nnsweep_sweep_{path.stem}__{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise SweepFileError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise SweepFileError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from exc
    except SweepDefinitionError as exc:
        # Same error, now saying where: the file and the line of the Sweep(...) call.
        exc.args = (f"{path}{_user_line(exc, path)}: {exc}",)
        raise
    except Exception as exc:
        line = _user_line(exc, path)
        raise SweepFileError(f"{path}{line}: {type(exc).__name__}: {exc}") from exc
    except SystemExit as exc:
        # A sweep file is imported, not run: exiting would end nnsweep itself, silently.
        raise SweepFileError(
            f"{path}{_user_line(exc, path)}: the sweep file called sys.exit({exc.code!r}); "
            "a sweep file only defines a Sweep"
        ) from exc
    except KeyboardInterrupt as exc:
        raise SweepFileError(
            f"{path}{_user_line(exc, path)}: loading the sweep file was interrupted "
            "(KeyboardInterrupt)"
        ) from exc
    finally:
        sys.modules.pop(module_name, None)
    found = [v for v in vars(module).values() if isinstance(v, Sweep)]
    if not found:
        raise SweepFileError(f"{path}: defines no Sweep (assign one, e.g. sweep = Sweep(...))")
    if len(found) > 1:
        names = ", ".join(s.name for s in found)
        raise SweepFileError(f"{path}: defines {len(found)} Sweeps ({names}); keep one per file")
    sweep = replace(found[0], source=f"{path}{_sweep_line(path)}")
    if sweep.description is None and module.__doc__:
        sweep = replace(sweep, description=inspect.cleandoc(module.__doc__))
    return sweep


def located(sweep: Sweep, exc: SweepDefinitionError) -> SweepDefinitionError:
    """``exc`` with the sweep file's ``path:line`` in front, when the sweep came from one."""
    if sweep.source and not str(exc).startswith(sweep.source):
        exc.args = (f"{sweep.source}: {exc}",)
    return exc


def _sweep_line(path: Path) -> str:
    """``:line`` of the file's one ``Sweep(...)`` call, or nothing when that is unclear."""
    import ast

    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, ValueError):
        return ""
    calls = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "Sweep"
    ]
    return f":{calls[0]}" if len(calls) == 1 else ""


def _user_line(exc: BaseException, path: Path) -> str:
    tb = exc.__traceback__
    line = ""
    target = path.resolve()
    while tb is not None:
        # The import machinery names the file by its absolute path.
        if Path(tb.tb_frame.f_code.co_filename).resolve() == target:
            line = f":{tb.tb_lineno}"
        tb = tb.tb_next
    return line
