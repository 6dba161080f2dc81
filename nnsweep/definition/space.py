"""Search-space values: fixed scalars, swept lists, and ranges for the tuner strategies.

In a sweep's ``space`` a scalar (or a tuple, such as explicit layer widths) is fixed, a
list is swept (every value is tried), and ``Choice`` / ``Boolean`` / ``Int`` / ``Float``
describe ranges that Keras Tuner strategies sample from (``sampling="log"`` is Keras Tuner's
spelling of ``log=True``). A grid can use a range only when it has a step.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nnsweep.errors import SweepDefinitionError


@dataclass(frozen=True)
class Choice:
    """A categorical range: one of ``values`` (a grid tries them all)."""

    values: tuple[Any, ...]

    def __init__(self, values: Sequence[Any]) -> None:
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise SweepDefinitionError("Choice(values)", "must be a list of values", values)
        if len(values) == 0:
            raise SweepDefinitionError("Choice(values)", "must not be empty", list(values))
        object.__setattr__(self, "values", tuple(values))


class Boolean(Choice):
    """``False`` or ``True`` (Keras Tuner's ``hp.Boolean``; a grid tries both)."""

    def __init__(self) -> None:
        super().__init__((False, True))

    def __repr__(self) -> str:
        return "Boolean()"


# Keras Tuner's spellings of the scale (``sampling=``) and what each is here (``log=``).
# Its "reverse_log" (dense near high) has no counterpart: refused rather than approximated.
SAMPLINGS = {"linear": False, "log": True}


@dataclass(frozen=True)
class _Range:
    low: float
    high: float
    step: float | None = None
    log: bool = None  # type: ignore[assignment]  # None: as sampling says, else False
    # Keras Tuner's name for the scale; resolved into log (and kept as None), so that
    # Float(a, b, sampling="log") and Float(a, b, log=True) are one range, one id.
    sampling: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        kind = type(self).__name__
        self._resolve_sampling(kind)
        for attr in ("low", "high"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SweepDefinitionError(f"{kind}.{attr}", "must be a number", value)
            if not math.isfinite(value):
                raise SweepDefinitionError(f"{kind}.{attr}", "must be finite", value)
        if self.low > self.high:
            raise SweepDefinitionError(f"{kind}", "needs low <= high", (self.low, self.high))
        if self.log and self.low <= 0:
            raise SweepDefinitionError(f"{kind}.low", "must be > 0 when log=True", self.low)
        if self.step is not None:
            if isinstance(self.step, bool) or not isinstance(self.step, (int, float)):
                raise SweepDefinitionError(f"{kind}.step", "must be a number", self.step)
            if not self.step > 0 or not math.isfinite(self.step):
                raise SweepDefinitionError(f"{kind}.step", "must be > 0 and finite", self.step)
            if self.log and self.step <= 1:
                # On a log scale the step multiplies: a factor <= 1 never reaches high.
                raise SweepDefinitionError(
                    f"{kind}.step", "must be > 1 when log=True (it multiplies)", self.step
                )

    def _resolve_sampling(self, kind: str) -> None:
        log, sampling = self.log, self.sampling
        if log is not None and not isinstance(log, bool):
            raise SweepDefinitionError(f"{kind}.log", "must be True or False", log)
        if sampling is not None:
            if sampling == "reverse_log":
                raise SweepDefinitionError(
                    f"{kind}.sampling",
                    "'reverse_log' (Keras Tuner's) is not supported; use 'linear' or 'log'",
                    sampling,
                )
            if sampling not in SAMPLINGS:
                raise SweepDefinitionError(
                    f"{kind}.sampling", f"must be one of {', '.join(SAMPLINGS)}", sampling
                )
            if log is not None and log != SAMPLINGS[sampling]:
                raise SweepDefinitionError(
                    f"{kind}.sampling",
                    f"contradicts log={log} (give one of sampling= and log=)",
                    sampling,
                )
            log = SAMPLINGS[sampling]
        object.__setattr__(self, "log", bool(log))
        object.__setattr__(self, "sampling", None)

    def grid_values(self) -> list[Any]:
        """Every value a grid visits: low, then low+step (or low*step when log), up to high."""
        if self.step is None:
            raise SweepDefinitionError(
                type(self).__name__, "needs a step to be used in a grid", self
            )
        values: list[Any] = []
        value = self.low
        # A tiny tolerance keeps float steps such as 0.1 from dropping the last value.
        while value <= self.high * (1 + 1e-9) + 1e-12:
            values.append(value)
            value = value * self.step if self.log else value + self.step
        return [self._cast(v) for v in values]

    def _cast(self, value: float) -> Any:
        return value


@dataclass(frozen=True)
class Int(_Range):
    """An integer range ``[low, high]``; ``log=True`` (or Keras Tuner's ``sampling="log"``)
    samples on a log scale."""

    def __post_init__(self) -> None:
        for attr in ("low", "high"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SweepDefinitionError(f"Int.{attr}", "must be an integer", value)
        super().__post_init__()
        if self.step is not None and not isinstance(self.step, int):
            # A fractional step rounds two values to one integer: one trial twice.
            raise SweepDefinitionError(
                "Int.step", "must be an integer (values are rounded to integers)", self.step
            )

    def _cast(self, value: float) -> Any:
        return int(round(value))


@dataclass(frozen=True)
class Float(_Range):
    """A real range ``[low, high]``; ``log=True`` (or Keras Tuner's ``sampling="log"``)
    samples on a log scale."""

    def _cast(self, value: float) -> Any:
        return float(value)


Range = (Choice, Int, Float)


def is_swept(value: Any) -> bool:
    """True when the space value varies between trials (a list or a range)."""
    return isinstance(value, (list, *Range))


def candidate_values(name: str, value: Any) -> list[Any]:
    """The concrete values a space entry stands for (range bounds for Int/Float)."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, Choice):
        return list(value.values)
    if isinstance(value, (Int, Float)):
        return [value._cast(value.low), value._cast(value.high)]
    return [value]


def grid_values(name: str, value: Any) -> list[Any]:
    """The values a grid tries for one space entry; a stepless range is an error."""
    check_grid_entry(name, value)
    if isinstance(value, list):
        return list(value)
    if isinstance(value, Choice):
        return list(value.values)
    if isinstance(value, (Int, Float)):
        return value.grid_values()
    return [value]


def check_grid_entry(name: str, value: Any) -> None:
    """Refuse an entry a grid cannot enumerate, without enumerating it."""
    if isinstance(value, list) and not value:
        raise SweepDefinitionError(f"space[{name!r}]", "must not be an empty list", value)
    if isinstance(value, (Int, Float)) and value.step is None:
        raise SweepDefinitionError(
            f"space[{name!r}]",
            "is a range without a step, which a grid cannot enumerate "
            "(give step=..., use a list, or a tuner strategy)",
            value,
        )


def expand_grid(space: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the space's values, in the order the space lists them."""
    return list(iter_grid(space))


def iter_grid(space: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """``expand_grid`` one combination at a time (constant memory)."""
    names = list(space)
    axes = [grid_values(n, space[n]) for n in names]
    for combo in itertools.product(*axes):
        yield dict(zip(names, combo, strict=True))


def grid_size(space: Mapping[str, Any]) -> int:
    """How many combinations a grid over ``space`` has, without making them."""
    return math.prod(_axis_size(n, v) for n, v in space.items())


def _axis_size(name: str, value: Any) -> int:
    if isinstance(value, (Int, Float)) and value.step is not None:
        if value.log:
            return int(math.floor(math.log(value.high / value.low, value.step) + 1e-9)) + 1
        return int(math.floor((value.high - value.low) / value.step + 1e-9)) + 1
    check_grid_entry(name, value)
    if isinstance(value, Choice):
        return len(value.values)
    return len(value) if isinstance(value, list) else 1


def describe_sizes(space: Mapping[str, Any]) -> dict[str, int]:
    """Each swept entry's number of values, for messages about a grid's size."""
    return {n: _axis_size(n, v) for n, v in space.items() if is_swept(v)}


def repeated(value: Any) -> list[Any]:
    """The values a swept list or Choice names more than once (each would be one model
    trained, and counted, twice)."""
    values = value.values if isinstance(value, Choice) else value
    if not isinstance(values, (list, tuple)) or not isinstance(value, (list, Choice)):
        return []
    out: list[Any] = []
    for i, v in enumerate(values):
        if any(_same(v, s) for s in values[:i]) and not any(_same(v, o) for o in out):
            out.append(v)
    return out


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # no truth value for ==, such as arrays: not comparable
        return False


def plain(value: Any) -> Any:
    """NumPy scalars as Python ones (a space may be built with NumPy), in lists too."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        return item()
    return value


def iter_fixed(space: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The entries that are the same for every trial."""
    for name, value in space.items():
        if not is_swept(value):
            yield name, value


# Sweep files are imported under a private module name; functions they define are named
# after the file's stem instead, so that the name is the same in every process.
_SWEEP_MODULE = re.compile(r"_nnsweep_sweep_(?P<stem>.*)__[0-9a-f]{10}")


def callable_name(obj: Any) -> str:
    """A function's or class's module-qualified name, the same in every process."""
    module = getattr(obj, "__module__", None) or "?"
    match = _SWEEP_MODULE.fullmatch(module)
    if match:
        module = f"{match['stem']}.py"
    return f"{module}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def stable_name(obj: Any) -> str:
    """A value's name for ids and fingerprints: functions and classes by their qualified
    name (never a memory address, which changes from run to run), others by ``str``."""
    if callable(obj) and hasattr(obj, "__qualname__"):
        return callable_name(obj)
    text = str(obj)
    if re.search(r" at 0x[0-9a-f]+>", text):  # an object without a stable str
        return type(obj).__module__ + "." + type(obj).__qualname__
    return text


def describe(value: Any) -> Any:
    """A JSON-friendly description of a space value, for sweep.json."""
    if callable(value) and hasattr(value, "__qualname__"):
        return callable_name(value)
    if isinstance(value, Boolean):
        return {"boolean": [False, True]}
    if isinstance(value, Choice):
        return {"choice": list(value.values)}
    if isinstance(value, (Int, Float)):
        return {
            type(value).__name__.lower(): [value.low, value.high],
            "step": value.step,
            "log": value.log,
        }
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, list):
        return [describe(v) for v in value]
    return value


def to_keras_tuner(hp: Any, name: str, value: Any) -> Any:
    """Declare one space entry on a ``keras_tuner.HyperParameters`` and return its value."""
    if isinstance(value, (Int, Float)):
        declare = hp.Int if isinstance(value, Int) else hp.Float
        sampling = "log" if value.log else "linear"
        return declare(name, value.low, value.high, step=value.step, sampling=sampling)
    if isinstance(value, Boolean):
        return hp.Boolean(name)
    if isinstance(value, (Choice, list)):
        values = candidate_values(name, value)
        if all(isinstance(v, (int, float, str, bool)) for v in values):
            return hp.Choice(name, values)
        # Keras Tuner's Choice takes scalars only: index into the list instead.
        index = hp.Choice(name + "__index", list(range(len(values))))
        return values[index]
    return hp.Fixed(name, value) if isinstance(value, (int, float, str, bool)) else value
