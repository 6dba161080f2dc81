"""The built-in hyperparameters: their types, ranges and defaults.

Kept free of Keras so a sweep can be validated (and ``--help``, ``list``, ``show`` can run)
without importing TensorFlow. ``models.py`` and ``training.py`` read the defaults from here.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nnsweep.definition.space import callable_name, candidate_values
from nnsweep.errors import SweepDefinitionError

OPTIMIZERS = (
    "sgd",
    "nesterov",  # SGD with Nesterov momentum 0.9, the classic tutorials' setting
    "rmsprop",
    "adam",
    "adamw",
    "adagrad",
    "adadelta",
    "adamax",
    "nadam",
    "ftrl",
    "lion",
)
ACTIVATIONS = (
    "relu",
    "tanh",
    "sigmoid",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "leaky_relu",
    "relu6",
    "softplus",
    "softsign",
    "mish",
    "linear",
)
# Learning-rate schedules (``lr_schedule``): Keras's CosineDecay (with its warm-up),
# ExponentialDecay (``step``: staircase) and the ReduceLROnPlateau callback, per trial.
LR_SCHEDULES = ("constant", "cosine", "exponential", "step", "plateau")
# Each schedule's own settings: given for another schedule, they are refused.
SCHEDULE_SETTINGS = {
    "warmup_epochs": ("cosine",),
    "final_lr_fraction": ("cosine",),
    "decay_rate": ("exponential", "step"),
    "decay_epochs": ("exponential", "step"),
    "plateau_factor": ("plateau",),
    "plateau_patience": ("plateau",),
    "min_lr": ("plateau",),
}
INITIALIZERS = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "orthogonal",
)


@dataclass(frozen=True)
class Param:
    """One hyperparameter: a type, a rule its values must satisfy, and a default."""

    name: str
    # "int", "float", "bool", "str", "ints" (a tuple of positive ints) or "weights" (class
    # weights: "balanced" or a dict, kept as the text ``0:1.0,1:5.0`` so that it hashes,
    # writes to a CSV cell and reads back as the same value)
    kind: str
    default: Any
    rule: str = ""
    check: Callable[[Any], bool] | None = None
    allowed: tuple[str, ...] = ()
    optional: bool = False  # None is a valid value

    def validate(self, value: Any, where: str) -> Any:
        """Return ``value`` normalised (e.g. int → float) or raise naming ``where``."""
        if value is None and self.optional:
            return None
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise SweepDefinitionError(where, "must be an integer", value)
        elif self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SweepDefinitionError(where, "must be a number", value)
            if not math.isfinite(value):
                raise SweepDefinitionError(where, "must be finite", value)
            value = float(value)
        elif self.kind == "bool":
            if not isinstance(value, bool):
                raise SweepDefinitionError(where, "must be True or False", value)
        elif self.kind == "str":
            if not isinstance(value, str):
                raise SweepDefinitionError(where, "must be a string", value)
            if self.allowed and value not in self.allowed:
                raise SweepDefinitionError(
                    where, f"must be one of {', '.join(self.allowed)}", value
                )
        elif self.kind == "ints":
            if isinstance(value, int) and not isinstance(value, bool):
                value = (value,)
            if not isinstance(value, tuple) or not value:
                raise SweepDefinitionError(
                    where, "must be a non-empty tuple of integers (a list would be swept)", value
                )
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
                raise SweepDefinitionError(where, "must hold integers >= 1", value)
        elif self.kind == "weights":
            value = _class_weight_text(value, where)
        if self.check is not None and not self.check(value):
            raise SweepDefinitionError(where, self.rule, value)
        return value


def _p(name: str, kind: str, default: Any, rule: str = "", check=None, **kw: Any) -> Param:
    return Param(name, kind, default, rule, check, **kw)


_positive = ("must be >= 1", lambda v: v >= 1)
_nonneg = ("must be >= 0", lambda v: v >= 0)
_unit = ("must be in [0, 1)", lambda v: 0 <= v < 1)
# Far beyond any sweep's budget; bounded so that per-epoch work (rungs, history, progress)
# can never hang a run that asked for it by mistake.
MAX_EPOCHS = 100_000
_epochs = (f"must be in [1, {MAX_EPOCHS:,}]", lambda v: 1 <= v <= MAX_EPOCHS)

TRAINING_PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        _p("optimizer", "str", "adam", allowed=OPTIMIZERS),
        # None: the optimizer's own Keras default (0.01 for SGD, 0.001 for Adam, ...).
        _p("learning_rate", "float", None, "must be > 0", lambda v: v > 0, optional=True),
        _p("momentum", "float", 0.0, *_unit),
        _p("nesterov", "bool", False),
        _p("weight_decay", "float", None, *_nonneg, optional=True),
        _p("clipnorm", "float", None, "must be > 0", lambda v: v > 0, optional=True),
        _p("batch_size", "int", 32, *_positive),
        _p("epochs", "int", 5, *_epochs),
        _p("patience", "int", None, *_nonneg, optional=True),
        _p("lr_schedule", "str", "constant", allowed=LR_SCHEDULES),
        _p("warmup_epochs", "int", 0, *_nonneg),
        _p("final_lr_fraction", "float", 0.0, "must be in [0, 1]", lambda v: 0 <= v <= 1),
        _p("decay_rate", "float", 0.5, "must be in (0, 1]", lambda v: 0 < v <= 1),
        _p("decay_epochs", "int", 1, *_positive),
        _p("plateau_factor", "float", 0.1, "must be in (0, 1)", lambda v: 0 < v < 1),
        _p("plateau_patience", "int", 2, *_nonneg),
        _p("min_lr", "float", 0.0, *_nonneg),
        # Keras's fit(class_weight=...): None, "balanced" (from the training split) or a dict.
        _p("class_weight", "weights", None, optional=True),
        # Keras's CategoricalCrossentropy / BinaryCrossentropy(label_smoothing=...).
        _p("label_smoothing", "float", 0.0, *_unit),
    )
}
# What needs a classification task (checked once the data is loaded).
CLASSIFICATION_PARAMS = ("class_weight", "label_smoothing")

_common_layer_params = (
    _p("activation", "str", "relu", allowed=ACTIVATIONS),
    _p("dropout", "float", 0.0, *_unit),
    _p("kernel_initializer", "str", "glorot_uniform", allowed=INITIALIZERS),
    _p("l1", "float", 0.0, *_nonneg),
    _p("l2", "float", 0.0, *_nonneg),
    _p("batch_norm", "bool", False),
)

MODEL_PARAMS: dict[str, dict[str, Param]] = {
    "mlp": {
        p.name: p
        for p in (
            _p("hidden_units", "int", 64, *_positive),
            _p("depth", "int", 1, *_nonneg),
            _p("widths", "ints", None, optional=True),
            *_common_layer_params,
        )
    },
    "cnn": {
        p.name: p
        for p in (
            _p("conv_layers", "int", 1, *_positive),
            _p("filters", "ints", (32,)),
            _p("kernel_size", "int", 3, *_positive),
            _p("pool_size", "int", 2, *_positive),
            _p("padding", "str", "valid", allowed=("valid", "same")),
            _p("dense_units", "int", 128, *_nonneg),
            *_common_layer_params,
        )
    },
}

MODEL_FAMILIES = tuple(MODEL_PARAMS)


def known_params(model: str | None) -> dict[str, Param]:
    """The hyperparameters a built-in model family accepts (``None``: training ones only)."""
    params = dict(TRAINING_PARAMS)
    if model is not None:
        params.update(MODEL_PARAMS[model])
    return params


# Keras Tuner's and Keras's names for hyperparameters nnsweep names otherwise, where they
# mean the same (Dense(units), Dropout(rate), the guides' num_layers): suggested in the
# error for an unknown name, never accepted, so each hyperparameter has one column. Each
# maps to candidates in order; the first the model family knows is suggested.
ALIASES: dict[str, tuple[str, ...]] = {
    "units": ("hidden_units", "dense_units"),
    "num_units": ("hidden_units", "dense_units"),
    "lr": ("learning_rate",),
    "num_layers": ("depth",),
    "n_layers": ("depth",),
    "layers": ("depth",),
    "rate": ("dropout",),
    "dropout_rate": ("dropout",),
}


def nearest_name(name: str, known: Mapping[str, Any]) -> str | None:
    """The known hyperparameter ``name`` most likely means: an alias's, else the closest
    spelling (None when nothing is close)."""
    for candidate in ALIASES.get(name.lower(), ()):
        if candidate in known:
            return candidate
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return close[0] if close else None


def family(model: Any, params: Mapping[str, Any]) -> Any:
    """The family name or build function that builds one trial: in a sweep of named
    models (``model={"name": (family, params)}``), the family of the trial's ``model``."""
    if isinstance(model, Mapping):
        return model[params["model"]][0]
    return model


def resolve(params: Mapping[str, Any], model: str | None) -> dict[str, Any]:
    """A trial's parameters with every default filled in, as the trainer uses them."""
    resolved = {name: p.default for name, p in known_params(model).items()}
    resolved.update(params)
    return resolved


def check_combination(params: Mapping[str, Any], model: str | None) -> None:
    """Rules that span several hyperparameters of one trial."""
    if model == "cnn":
        filters = params.get("filters", MODEL_PARAMS["cnn"]["filters"].default)
        layers = params.get("conv_layers", 1)
        if isinstance(filters, tuple) and len(filters) not in (1, layers):
            raise SweepDefinitionError(
                "space['filters']",
                f"must give 1 or conv_layers={layers} values",
                filters,
            )
    optimizer = params.get("optimizer", TRAINING_PARAMS["optimizer"].default)
    if params.get("momentum") and optimizer not in ("sgd", "nesterov", "rmsprop"):
        raise SweepDefinitionError(
            "space['momentum']", "applies only to optimizers 'sgd' and 'rmsprop'", optimizer
        )
    if params.get("nesterov") and optimizer != "sgd":
        raise SweepDefinitionError(
            "space['nesterov']", "applies only to optimizer 'sgd'", optimizer
        )
    _check_schedule(params)


def records_learning_rate(space: Mapping[str, Any]) -> bool:
    """Whether a sweep's history.csv has a ``learning_rate`` column: where its space names
    ``lr_schedule`` (so that older sweeps' tables keep their columns)."""
    return "lr_schedule" in space


def check_schedule_settings(space: Mapping[str, Any], schedules: list[Any]) -> None:
    """A schedule's own setting (``warmup_epochs``, ``decay_rate``, ...) needs a schedule
    in the space that uses it (``schedules``: the values ``lr_schedule`` takes); the
    trials of other schedules leave it unused (their rates do not read it)."""
    for name, users in SCHEDULE_SETTINGS.items():
        if name in space and not any(s in users for s in schedules):
            which = " or ".join(repr(u) for u in users)
            raise SweepDefinitionError(
                f"space[{name!r}]",
                f"applies only to lr_schedule {which}, which this sweep does not use",
                schedules,
            )


def _check_schedule(params: Mapping[str, Any]) -> None:
    """A warm-up leaves the cosine an epoch; plateau's floor is below its start. (A step
    or plateau that cannot act within the epochs, as in a short quick look, is constant.)"""
    p = {**{k: TRAINING_PARAMS[k].default for k in TRAINING_PARAMS}, **params}
    schedule, epochs = p["lr_schedule"], p["epochs"]
    if schedule == "cosine" and p["warmup_epochs"] >= epochs:
        raise SweepDefinitionError(
            "space['warmup_epochs']",
            f"must be less than the epochs ({epochs}): the decay needs an epoch",
            p["warmup_epochs"],
        )
    lr = p["learning_rate"]
    if schedule == "plateau" and lr is not None and p["min_lr"] >= lr:
        raise SweepDefinitionError(
            "space['min_lr']", "must be below the learning rate", p["min_lr"]
        )


def _class_weight_text(value: Any, where: str) -> str:
    """A class weight as its canonical text: ``balanced``, or ``0:1.0,1:5.0`` by class."""
    if value == "balanced":
        return value
    if isinstance(value, str):
        try:
            value = parse_class_weight(value)
        except ValueError:
            raise SweepDefinitionError(
                where, 'must be None, "balanced" or a dict {class: weight}', value
            ) from None
    if not isinstance(value, Mapping) or not value:
        raise SweepDefinitionError(
            where, 'must be None, "balanced" or a non-empty dict {class: weight}', value
        )
    for k, v in value.items():
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise SweepDefinitionError(where, "must have classes (keys) that are integers >= 0", k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
            raise SweepDefinitionError(where, "must have weights that are finite numbers > 0", v)
    return ",".join(f"{k}:{float(value[k])!r}" for k in sorted(value))


def parse_class_weight(text: str) -> dict[int, float]:
    """``0:1.0,1:5.0`` back to ``{0: 1.0, 1: 5.0}`` (ValueError if it is not that form)."""
    out = {}
    for part in text.split(","):
        k, _, v = part.partition(":")
        out[int(k)] = float(v)
    return out


def check_task_params(params: Mapping[str, Any], task: str, n_classes: int) -> None:
    """Rules that need the data: class weights and label smoothing need a classification
    task, and a class weight's classes must exist (``n_classes``: 2 for binary)."""
    for name in CLASSIFICATION_PARAMS:
        value = params.get(name)
        if task == "regression" and value not in (None, 0.0):
            raise SweepDefinitionError(
                f"space[{name!r}]", "applies only to classification tasks, not regression", value
            )
    weights = params.get("class_weight")
    if weights not in (None, "balanced"):
        unknown = [k for k in parse_class_weight(weights) if k >= n_classes]
        if unknown:
            raise SweepDefinitionError(
                "space['class_weight']",
                f"must name classes of the data (0..{n_classes - 1})",
                unknown[0] if len(unknown) == 1 else unknown,
            )


def check_space_task(space: Mapping[str, Any], task: str, n_classes: int | None) -> None:
    """``check_task_params`` for every value a space gives class weights and smoothing
    (``n_classes``: the multiclass task's; binary has 2)."""
    classes = n_classes if task == "multiclass" and n_classes else 2
    for name in CLASSIFICATION_PARAMS:
        if name in space:
            for value in candidate_values(name, space[name]):
                value = TRAINING_PARAMS[name].validate(value, f"space[{name!r}]")
                check_task_params({name: value}, task, classes)


def format_value(value: Any) -> Any:
    """How a parameter value is written in a CSV cell (tuples as ``250-125-50``)."""
    if isinstance(value, tuple):
        return "-".join(str(v) for v in value)
    if callable(value) and hasattr(value, "__qualname__"):
        return callable_name(value)  # not its repr, whose memory address changes
    return value
