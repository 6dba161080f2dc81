"""The ``Sweep`` definition, its validation, its trials, and ``load_sweep(path)``."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from nnsweep.definition import params as _params
from nnsweep.definition import space as _space
from nnsweep.definition.pruning import Prune
from nnsweep.definition.pruning import resolve as _resolve_prune
from nnsweep.definition.seeds import Seeds
from nnsweep.errors import SweepDefinitionError, SweepFileError

STRATEGIES = ("grid", "random", "bayesian", "hyperband")
BUILTIN_DATASETS = ("digits", "mnist", "fashion_mnist", "imdb", "reuters", "boston_housing")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_NAME_MAX = 100  # it names a folder; file systems allow 255 bytes, paths add more
SEED_MAX = 2**32 - 1  # NumPy's and TensorFlow's seeds are 32-bit
# A grid larger than this is refused before it is expanded: each trial is a row, a model
# and seconds of training, and expanding a product of lists costs memory of its own.
MAX_GRID_TRIALS = 1_000_000
# Columns of trials.csv and history.csv besides the hyperparameters (the store's layout,
# checked against it in the tests): a hyperparameter of one of these names would be
# written twice in the header.
RESULT_COLUMNS = frozenset(
    {
        "trial_id", "config_id", "seed", "fold", "phase", "status", "error", "epochs_run",
        "rungs", "pruned_by", "loss", "accuracy", "mae", "best_epoch", "n_params",
        "fit_seconds", "started_at", "finished_at", "backend", "pack_size", "worker", "epoch",
    }
)  # fmt: skip
RESULT_PREFIXES = ("val_", "test_", "best_")


def is_result_column(name: str) -> bool:
    """Whether ``name`` is, or may become, a column of the results tables."""
    return name in RESULT_COLUMNS or name.startswith(RESULT_PREFIXES)


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
    model: str | Callable[..., Any] = "mlp"
    space: Mapping[str, Any] = field(default_factory=dict)
    seeds: int | Sequence[int] | Seeds = 1
    strategy: str = "grid"
    max_trials: int | None = None
    cv: int | None = None
    validation_split: float = 0.2
    split_seed: int = 0
    objective: str | None = None
    direction: str | None = None
    target: str = "target"
    data_options: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    prune: bool | Prune | None = False
    # Where the sweep was defined ("path:line", set by load_sweep): errors found later, at
    # run time, about its fields point there as those found when it is created do.
    source: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise SweepDefinitionError(
                "name",
                "must be letters, digits, '_', '-' or '.', starting with a letter or digit "
                "(it names a folder)",
                self.name,
            )
        if len(self.name) > _NAME_MAX:
            raise SweepDefinitionError(
                "name", f"must be at most {_NAME_MAX} characters (it names a folder)", self.name
            )
        self._check_data()
        self._check_model()
        if not isinstance(self.space, Mapping):
            raise SweepDefinitionError("space", "must be a dict of hyperparameters", self.space)
        space = {k: _space.plain(v) for k, v in self.space.items()}
        object.__setattr__(self, "space", MappingProxyType(space))
        for attr in ("seeds", "max_trials", "cv", "validation_split", "split_seed"):
            object.__setattr__(self, attr, _space.plain(getattr(self, attr)))
        object.__setattr__(self, "data_options", MappingProxyType(dict(self.data_options)))
        self._check_seeds()
        self._check_run_settings()
        self._check_space()
        self._check_prune()

    # -- validation -----------------------------------------------------------------

    def _check_data(self) -> None:
        data = self.data
        if callable(data):
            return
        if isinstance(data, Path):
            data = str(data)
        if not isinstance(data, str):
            raise SweepDefinitionError(
                "data", "must be a dataset name, a file path or a function", data
            )
        if data in BUILTIN_DATASETS:
            return
        if data.endswith((".csv", ".npz")):
            return
        raise SweepDefinitionError(
            "data",
            f"must be one of {', '.join(BUILTIN_DATASETS)}, a .csv/.npz path or a function",
            data,
        )

    def _check_model(self) -> None:
        if callable(self.model):
            return
        if self.model not in _params.MODEL_FAMILIES:
            raise SweepDefinitionError(
                "model",
                f"must be one of {', '.join(_params.MODEL_FAMILIES)} or a function "
                "build(params, spec)",
                self.model,
            )

    def _check_seeds(self) -> None:
        seeds = self.seeds
        if isinstance(seeds, Seeds):
            if self.strategy != "grid":
                raise SweepDefinitionError(
                    "seeds",
                    "adaptive Seeds(...) need strategy 'grid' (a search picks its "
                    f"configurations as it goes), not {self.strategy!r}",
                    seeds,
                )
            return
        if isinstance(seeds, bool) or not isinstance(seeds, (int, Sequence)):
            raise SweepDefinitionError("seeds", "must be a count >= 1 or a list of ints", seeds)
        if isinstance(seeds, int):
            if seeds < 1:
                raise SweepDefinitionError("seeds", "must be >= 1", seeds)
            if seeds > MAX_GRID_TRIALS:
                raise SweepDefinitionError("seeds", f"must be at most {MAX_GRID_TRIALS:,}", seeds)
            return
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
        object.__setattr__(self, "seeds", tuple(seeds))

    def _check_run_settings(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SweepDefinitionError(
                "strategy", f"must be one of {', '.join(STRATEGIES)}", self.strategy
            )
        if self.max_trials is not None and (
            isinstance(self.max_trials, bool)
            or not isinstance(self.max_trials, int)
            or self.max_trials < 1
        ):
            raise SweepDefinitionError("max_trials", "must be an integer >= 1", self.max_trials)
        if self.strategy != "grid" and self.max_trials is None:
            raise SweepDefinitionError(
                "max_trials", f"is required for strategy {self.strategy!r}", None
            )
        if self.cv is not None and (
            isinstance(self.cv, bool) or not isinstance(self.cv, int) or self.cv < 2
        ):
            raise SweepDefinitionError("cv", "must be an integer >= 2 (folds) or None", self.cv)
        if self.cv is not None and self.cv > MAX_GRID_TRIALS:
            raise SweepDefinitionError("cv", f"must be at most {MAX_GRID_TRIALS:,}", self.cv)
        vs = self.validation_split
        if isinstance(vs, bool) or not isinstance(vs, (int, float)) or not 0 < vs < 1:
            raise SweepDefinitionError("validation_split", "must be in (0, 1)", vs)
        ss = self.split_seed
        if isinstance(ss, bool) or not isinstance(ss, int) or not 0 <= ss <= SEED_MAX:
            raise SweepDefinitionError("split_seed", f"must be an integer in [0, {SEED_MAX}]", ss)
        if self.objective is not None and not (isinstance(self.objective, str) and self.objective):
            raise SweepDefinitionError("objective", "must be a metric column name", self.objective)
        if self.direction not in (None, "min", "max"):
            raise SweepDefinitionError("direction", "must be 'min' or 'max'", self.direction)
        if not isinstance(self.target, str) or not self.target:
            raise SweepDefinitionError("target", "must be a column name", self.target)

    def _check_space(self) -> None:
        builtin = self.model if isinstance(self.model, str) else None
        known = _params.known_params(builtin)
        for name, value in self.space.items():
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
            elif builtin is not None:
                raise SweepDefinitionError(
                    where,
                    f"is not a hyperparameter of model {builtin!r} "
                    f"(known: {', '.join(sorted(known))})",
                    value,
                )
            else:
                param = None  # a custom build function's own parameter: passed through
            if isinstance(value, list) and not value:
                raise SweepDefinitionError(where, "must not be an empty list", value)
            repeated = _space.repeated(value)
            if repeated:
                raise SweepDefinitionError(
                    where,
                    f"must not repeat a value (each is one model; repeated: {repeated})",
                    value,
                )
            if isinstance(value, (_space.Int, _space.Float)) and param is not None:
                if param.kind == "int" and isinstance(value, _space.Float):
                    raise SweepDefinitionError(where, "must be an Int range, not Float", value)
                if param.kind in ("str", "bool", "ints"):
                    raise SweepDefinitionError(where, "cannot be a numeric range", value)
            if param is not None:
                for candidate in _space.candidate_values(name, value):
                    param.validate(candidate, where)
            if self.strategy == "grid":
                _space.check_grid_entry(name, value)
        if self.strategy == "grid":
            n_seeds = len(self.seed_list)
            size = self.grid_size * n_seeds * (self.cv or 1)
            if size > MAX_GRID_TRIALS:
                raise SweepDefinitionError(
                    "space",
                    f"makes {size:,} trials (configurations x seeds x folds), more than the "
                    f"{MAX_GRID_TRIALS:,} a grid may have; sweep fewer values or use a search "
                    "strategy with max_trials",
                    _space.describe_sizes(self.space),
                )
            for params in _space.iter_grid(self.space):
                _params.check_combination(params, builtin)
        elif not any(_space.is_swept(v) for v in self.space.values()):
            raise SweepDefinitionError(
                "space", f"has nothing to search for strategy {self.strategy!r}", dict(self.space)
            )
        if self.strategy == "hyperband" and _space.is_swept(self.space.get("epochs")):
            raise SweepDefinitionError(
                "space['epochs']",
                "must be fixed for hyperband (it is the largest epoch budget)",
                self.space["epochs"],
            )

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
    def model_name(self) -> str:
        return self.model if isinstance(self.model, str) else _space.callable_name(self.model)

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
                }
                if self.strategy != "grid"
                else {}
            ),
        }

    def to_json(self) -> dict[str, Any]:
        """The resolved sweep, as written to sweep.json."""
        return {
            "name": self.name,
            "description": self.description,
            "data": self.data_name,
            "model": self.model_name,
            "space": {k: _space.describe(v) for k, v in self.space.items()},
            "swept": list(self.swept),
            "seeds": list(self.seed_list),
            "adaptive_seeds": self.adaptive.to_json() if self.adaptive else None,
            "cv": self.cv,
            "strategy": self.strategy,
            "max_trials": self.max_trials,
            "validation_split": self.validation_split,
            "split_seed": self.split_seed,
            "objective": self.objective,
            "direction": self.direction,
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
