"""Pruning: stop a configuration once it is worse than the leader beyond seed noise.

At each *rung* (an epoch of ``Prune.rungs``), every configuration still training is
compared with the *leader*, the configuration whose seeds have the best mean validation
objective at that epoch, on their seeds' values at that same epoch. The test is one-sided
(the leader better), on a seed-noise variance that is pooled over every configuration at
the rung (so two or three seeds a configuration still give many degrees of freedom) but
never below a configuration's own variance (an unstable configuration is judged on its
own spread, with its own few degrees of freedom: Welch-Satterthwaite). A configuration is
pruned when p < alpha / (rungs x (configurations - 1)): for the configuration whose true
mean at a rung is best, that bounds the chance that any leader ever prunes it on seed
noise by alpha over the whole run (a union bound over the rungs and the possible
leaders). What no test bounds is a configuration that learns slowly and ends best: the
first rung (``Prune.first``) is the guard against that.

Each (configuration, rung) is decided once, the first time a trial of the configuration
reaches the rung with seed noise known; later seeds or folds follow that decision.
Decisions and evidence are read from committed rows (``RungBook``), so a resumed run
decides as the first one did. No TensorFlow here: the engine calls ``PackJudge.judge``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nnsweep.errors import SweepDefinitionError

PASSED, PRUNED, OPEN = "passed", "pruned", "open"
# A configuration whose seeds spread this many times the median configuration's is wild:
# pruning leaves it out of the pooled noise, and the report flags it unstable. With 3 runs
# a healthy configuration gets there about once in 50,000, so big searches stay quiet.
UNSTABLE_FACTOR = 4.0
RUNG_MODES = ("geometric", "every")


@dataclass(frozen=True)
class Prune:
    """How a sweep prunes: ``Sweep(..., prune=Prune(first=2, alpha=0.01))``.

    ``first``: the first rung (nothing is pruned before this epoch ends). ``rungs``:
    ``"geometric"`` (first, 2 x first, 4 x first, ...), ``"every"`` epoch from ``first``,
    or the epochs themselves. ``alpha``: the false-prune rate, the chance over the whole
    run that the best configuration at a rung is pruned on seed noise. ``keep``:
    successive halving: at each rung, a configuration outside the top ``keep`` fraction
    is also pruned when it is behind the leader beyond seed noise by itself (one-sided
    test at alpha per rung, not corrected: faster, and no run-wide bound).
    """

    first: int = 1
    rungs: str | tuple[int, ...] = "geometric"
    alpha: float = 0.05
    keep: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.first, bool) or not isinstance(self.first, int) or self.first < 1:
            raise SweepDefinitionError("prune.first", "must be an integer >= 1", self.first)
        rungs = self.rungs
        if isinstance(rungs, str):
            if rungs not in RUNG_MODES:
                raise SweepDefinitionError(
                    "prune.rungs", f"must be one of {', '.join(RUNG_MODES)} or epochs", rungs
                )
        else:
            if isinstance(rungs, (int, float)) or not isinstance(rungs, Sequence):
                raise SweepDefinitionError(
                    "prune.rungs", "must be 'geometric', 'every' or a list of epochs", rungs
                )
            epochs: tuple[int, ...] = tuple(rungs)  # type: ignore[arg-type]
            if not epochs or any(
                isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in epochs
            ):
                raise SweepDefinitionError(
                    "prune.rungs", "must hold epochs, integers >= 1", list(epochs)
                )
            if list(epochs) != sorted(set(epochs)):
                raise SweepDefinitionError(
                    "prune.rungs", "must be increasing epochs without repeats", list(epochs)
                )
            object.__setattr__(self, "rungs", epochs)
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a < 1:
            raise SweepDefinitionError("prune.alpha", "must be in (0, 1)", a)
        k = self.keep
        if k is not None and (
            isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k < 1
        ):
            raise SweepDefinitionError("prune.keep", "must be a fraction in (0, 1) or None", k)

    def epochs(self, last: int) -> tuple[int, ...]:
        """The rung epochs of a trial of ``last`` epochs (none at its last epoch)."""
        if isinstance(self.rungs, tuple):
            return tuple(e for e in self.rungs if e < last)
        out, e = [], self.first
        while e < last:
            out.append(e)
            e = e * 2 if self.rungs == "geometric" else e + 1
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        rungs = list(self.rungs) if isinstance(self.rungs, tuple) else self.rungs
        return {"first": self.first, "rungs": rungs, "alpha": self.alpha, "keep": self.keep}

    def describe(self, last: int) -> str:
        """One line for ``--dry-run`` and the report: the rungs and the rule."""
        rungs = self.epochs(last)
        where = f"at epochs {', '.join(map(str, rungs))}" if rungs else "no rung before the end"
        halving = f"; keeps the top {self.keep:g} at each rung" if self.keep else ""
        return (
            f"pruning on: {where} (of {last}); a configuration stops when worse than the "
            f"leader beyond seed noise, false-prune rate <= {self.alpha:g}{halving}"
        )


def resolve(value: Any) -> Prune | None:
    """``Sweep.prune``'s value as a rule: True -> the defaults, False/None -> off."""
    if value is None or value is False:
        return None
    if value is True:
        return Prune()
    if isinstance(value, Prune):
        return value
    raise SweepDefinitionError("prune", "must be True, False or a Prune(...)", value)


# -- the test -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What a rung decided for one configuration: passed, pruned (with the evidence) or
    open (no seed noise known yet: decided by a later trial)."""

    status: str
    text: str = ""


@dataclass(frozen=True)
class _Stats:
    n: int
    mean: float
    var: float  # NaN with one value


def _stats(values: Sequence[float]) -> _Stats:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else math.nan
    return _Stats(n, mean, var)


def _pooled(stats: Iterable[_Stats]) -> tuple[float, int]:
    """The pooled within-configuration variance and its degrees of freedom, over the
    configurations whose spread is not wild: one unstable configuration (the report's
    rule, a std over ``UNSTABLE_FACTOR`` times the median) would otherwise inflate the
    noise every other one is judged by; it is judged on its own spread instead."""
    many = [s for s in stats if s.n > 1]
    if not many:
        return math.nan, 0
    stds = sorted(math.sqrt(s.var) for s in many)
    mid = len(stds) // 2
    median = stds[mid] if len(stds) % 2 else (stds[mid - 1] + stds[mid]) / 2
    kept = [s for s in many if math.sqrt(s.var) <= UNSTABLE_FACTOR * median]
    dof = sum(s.n - 1 for s in kept)
    return sum(s.var * (s.n - 1) for s in kept) / dof, dof


def one_sided_p(leader: _Stats, other: _Stats, pooled: float, pooled_dof: int, sign: float) -> Any:
    """P(the leader's lead at least this large | equal true means): each side's variance is
    the pooled one, or its own where that is larger (then with its own dof)."""
    from scipy import stats as st

    own, shared = [], 0.0
    for s in (leader, other):
        if s.n > 1 and s.var > pooled:
            own.append((s.var / s.n, s.n - 1))
        else:
            shared += pooled / s.n
    se2 = shared + sum(v for v, _ in own)
    gap = sign * (leader.mean - other.mean)
    if se2 == 0:
        return 0.0 if gap > 0 else 1.0
    # Welch-Satterthwaite, the pooled part counted once with the pooled dof.
    parts = [*own, *([(shared, pooled_dof)] if shared else [])]
    dof = se2**2 / sum(v**2 / d for v, d in parts)
    return float(st.t.sf(gap / math.sqrt(se2), dof))


def judge(
    values: Mapping[str, Sequence[float]],
    candidates: Iterable[str],
    direction: str,
    level: float,
    *,
    epoch: int,
    metric: str,
    keep_top: int | None = None,
    rank_only: bool = False,
) -> dict[str, Verdict]:
    """Verdicts for ``candidates`` at one rung, from every configuration's ``values`` there.

    ``level``: alpha for this rung. ``keep_top``: successive halving's survivors at this
    rung. ``rank_only``: with no seed noise known anywhere, prune outside ``keep_top`` on
    rank alone (hyperband's own rule with one seed) instead of leaving it open.
    """
    stats = {c: _stats(v) for c, v in values.items() if v}
    todo = [c for c in candidates if c in stats]
    if len(stats) < 2:
        return {c: Verdict(PASSED) for c in todo}  # the only one there leads
    sign = 1.0 if direction == "max" else -1.0
    order = sorted(stats, key=lambda c: (-sign * stats[c].mean, c))
    leader = order[0]
    rank = {c: i + 1 for i, c in enumerate(order)}
    pooled, dof = _pooled(stats.values())
    corrected = level / (len(stats) - 1)
    out = {}
    for c in todo:
        if c == leader:
            out[c] = Verdict(PASSED)
            continue
        outside = keep_top is not None and rank[c] > keep_top
        me, lead = stats[c], stats[leader]
        here = (
            f"epoch {epoch}: {metric} {me.mean:.4g} (n={me.n}) vs {lead.mean:.4g} "
            f"(n={lead.n}) of leader {leader}"
        )
        if dof == 0:
            if rank_only and outside:
                out[c] = Verdict(
                    PRUNED,
                    f"{here}; rank {rank[c]} of {len(stats)}, outside the top {keep_top} "
                    "(rank only: no seed noise with one seed)",
                )
            else:
                out[c] = Verdict(OPEN)
            continue
        p = one_sided_p(stats[leader], stats[c], pooled, dof, sign)
        if p < corrected:
            out[c] = Verdict(PRUNED, f"{here}; one-sided p={p:.2g} < {corrected:.2g}")
        elif outside and p < level:
            out[c] = Verdict(
                PRUNED,
                f"{here}; rank {rank[c]} of {len(stats)}, outside the top {keep_top}, "
                f"one-sided p={p:.2g} < {level:.2g}",
            )
        else:
            out[c] = Verdict(PASSED)
    return out


# -- the evidence: committed rows, and one pack's own epochs ---------------------------------


def rungs_text(passage: Sequence[tuple[int, str]]) -> str:
    """A trial's ``rungs`` cell: ``1:passed 2:pruned`` (its verdict at each rung it met)."""
    return " ".join(f"{epoch}:{status}" for epoch, status in passage)


def parse_rungs(text: Any) -> list[tuple[int, str]]:
    """The inverse of ``rungs_text``; an empty or missing cell is no rung."""
    if not isinstance(text, str) or not text.strip():
        return []
    out = []
    for part in text.split():
        epoch, _, status = part.partition(":")
        out.append((int(epoch), status))
    return out


class RungBook:
    """The committed evidence of one run's pruning: each search trial's objective at every
    rung epoch, and each (configuration, rung) decision, from the rows on disk and then
    from each row as it is committed. ``scope``: the configurations judged together
    (hyperband's bracket); None for the whole sweep."""

    def __init__(
        self,
        rule: Prune,
        objective: str,
        direction: str,
        last_epoch: int,
        *,
        rungs: Sequence[int] | None = None,
        keep_top: Mapping[int, int] | None = None,
        rank_only: bool = False,
        scope: Iterable[str] | None = None,
    ) -> None:
        self.rule, self.objective, self.direction = rule, objective, direction
        self.rungs = tuple(rungs) if rungs is not None else rule.epochs(last_epoch)
        # alpha is shared out over the rungs: the run-wide bound of the module's docstring.
        self.level = rule.alpha / max(len(self.rungs), 1)
        self.keep_top = dict(keep_top or {})
        self.rank_only = rank_only
        self.scope = None if scope is None else set(scope)
        self.values: dict[int, dict[str, list[float]]] = {r: {} for r in self.rungs}
        self.decided: dict[tuple[str, int], Verdict] = {}
        # What each committed trial brought, so that a view without some can be made.
        self._taken: list[tuple[str, Mapping[str, Any], list[Mapping[str, Any]]]] = []

    def trial_rungs(self, epochs: int) -> tuple[int, ...]:
        """The rungs a trial of ``epochs`` epochs meets (none at its last epoch)."""
        return tuple(r for r in self.rungs if r < epochs)

    def load(self, rows: Iterable[Mapping[str, Any]], history: Iterable[Mapping[str, Any]]) -> None:
        """Take in the rows (and their epochs) already on disk."""
        epochs: dict[str, list[Mapping[str, Any]]] = {}
        for h in history:
            epochs.setdefault(str(h["trial_id"]), []).append(h)
        for row in rows:
            self.commit(row, epochs.get(str(row["trial_id"]), []))

    def commit(self, row: Mapping[str, Any], history: Iterable[Mapping[str, Any]]) -> None:
        """Take in one committed row: its values at the rungs and its decisions."""
        cid = str(row["config_id"])
        if (row.get("phase") or "search") != "search" or (
            self.scope is not None and cid not in self.scope
        ):
            return
        history = list(history)
        self._taken.append((str(row["trial_id"]), row, history))
        for h in history:
            epoch = int(h["epoch"])
            if epoch in self.values:
                value = _number(h.get(self.objective))
                if math.isfinite(value):
                    self.values[epoch].setdefault(cid, []).append(value)
        for epoch, status in parse_rungs(row.get("rungs")):
            if status in (PASSED, PRUNED):
                text = str(row.get("pruned_by") or "") if status == PRUNED else ""
                self.decided.setdefault((cid, epoch), Verdict(status, text))

    def pack(self) -> PackJudge:
        """A judge for one pack's training: this book plus the pack's own decisions."""
        return PackJudge(self)

    def without(self, trial_ids: Iterable[str]) -> RungBook:
        """A copy that never took in these trials: the evidence of a pack that trains
        beside them (packs in flight together are judged apart; see ``runner``)."""
        skip = set(trial_ids)
        out = RungBook.__new__(RungBook)
        out.__dict__.update(self.__dict__)
        out.values = {r: {} for r in self.rungs}
        out.decided, out._taken = {}, []
        for tid, row, history in self._taken:
            if tid not in skip:
                out.commit(row, history)
        return out


class PackJudge:
    """Judges one pack's trials at their rungs, against the committed rows and the pack's own
    values; its decisions count only once the pack's rows are committed (see ``RungBook``)."""

    def __init__(self, book: RungBook) -> None:
        self.book = book
        self.decided: dict[tuple[str, int], Verdict] = {}

    def trial_rungs(self, epochs: int) -> tuple[int, ...]:
        return self.book.trial_rungs(epochs)

    def judge(
        self, epoch: int, live: Mapping[int, str], values: Mapping[int, tuple[str, float]]
    ) -> dict[int, Verdict]:
        """Verdicts for the ``live`` trials (pack index -> config id) at rung ``epoch``;
        ``values``: every pack trial's (config id, objective) at this epoch."""
        book = self.book
        earlier = {
            c: self.decided.get((c, epoch)) or book.decided.get((c, epoch))
            for c in set(live.values())
        }
        undecided = sorted(c for c, v in earlier.items() if v is None)
        fresh: dict[str, Verdict] = {}
        if undecided:
            evidence = {c: list(v) for c, v in book.values.get(epoch, {}).items()}
            for cid, value in values.values():
                if math.isfinite(value):
                    evidence.setdefault(cid, []).append(value)
            m = len([c for c, v in evidence.items() if v])
            keep = book.keep_top.get(epoch)
            if keep is None and book.rule.keep is not None:
                keep = math.ceil(book.rule.keep * m)
            fresh = judge(
                evidence,
                undecided,
                book.direction,
                book.level,
                epoch=epoch,
                metric=book.objective,
                keep_top=keep,
                rank_only=book.rank_only,
            )
            for c, v in fresh.items():
                if v.status != OPEN:
                    self.decided[(c, epoch)] = v
        out = {}
        for t, c in live.items():
            before = earlier[c]
            if before is None:
                out[t] = fresh.get(c, Verdict(OPEN))
            elif before.status == PRUNED:
                out[t] = Verdict(PRUNED, f"with its configuration, pruned at {before.text}")
            else:
                out[t] = Verdict(PASSED)
        return out


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
