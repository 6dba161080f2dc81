"""The pack engine: a pack of trials trained as one TensorFlow program.

TensorFlow only, imported lazily by ``training``. A pack is a list of *units*: stacks
(``_stack`` and ``_conv``: built-in MLPs and CNNs as stacked tensors, one block per trial)
and branches (one Keras model per trial). Every step reads one micro-batch of row indices
per seed, gathers the rows from the data table once, computes each unit's per-trial
losses, takes one gradient and updates each unit with its own ``Updater``, each trial with its own
settings. A trial whose batch is k micro-batches adds up its gradient (scaled by its own
batch's size) and updates every k steps: exactly the step it would take alone.

Between epochs, Python tracks each trial's metrics, divergence, early stopping and
epochs. A trial that is done keeps its final (or best) weights in a snapshot; a unit whose
trials are all done leaves the computation; and once at least a quarter of a stack's
work belongs to trials that are done, its live trials move into a smaller stack, their
weights, optimizer state and snapshots with them (the old stack keeps the finished
trials, for the test split).

A trial gets the same numbers alone or in any pack, up to float rounding: its weights
start from its seed, its batch order comes from its seed, and its dropout masks from its
own stream by position in the epoch (see ``_stack``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from nnsweep.definition import params as _params
from nnsweep.definition.pruning import PackJudge
from nnsweep.definition.sweep import Trial
from nnsweep.training import _optimizers, pool_paths
from nnsweep.training._branch import BranchUnit
from nnsweep.training._conv import ConvStackUnit, make_stack
from nnsweep.training._stack import StackUnit
from nnsweep.training._table import batch_order, table
from nnsweep.training._units import (
    STACK_NS,
    Stack,
    optimizer_kind,
    padded_widths,
    plan_units,
    schedule_key,
)
from nnsweep.training.context import Ledger, Outcome
from nnsweep.training.metrics import layout_for
from nnsweep.training.packing import CNN_EVAL_BATCH, EVAL_BATCH
from nnsweep.training.schedules import Schedule, trial_schedule
from nnsweep.training.targets import pack_targets

# Micro-batch steps per call into TensorFlow: each call costs Python and dispatch time
# that a small pack's step does not hide.
_STEPS_PER_CALL = 16
# A stack moves its live trials into a smaller one when the time that its done trials
# would waste in the epochs left is worth more than this many seconds: a move costs a
# new trace of the training function, about half a second here.
_COMPACT_SAVING = 1.5
EpochHook = Callable[[Trial, int, dict[str, float]], None]


# -- the pack ----------------------------------------------------------------------------------


class Pack:
    """One pack's units, data and state; ``run`` trains it and returns one outcome a trial."""

    def __init__(
        self, trials: Sequence[Trial], ctx: Any, stacks: Sequence[Stack], branches: dict[int, Any]
    ) -> None:
        self.spec = ctx.dataset.spec
        self.data = table(ctx.dataset)
        # The sweep's added metrics (auc, f1, ...): their sums per trial, like the hits.
        self.layout = layout_for(ctx.sweep.metrics, self.spec.task, self.spec.n_classes)
        self._setup(trials, ctx)
        self.units: list[Any] = []
        for plan in stacks:
            self._attach(make_stack(plan, self.trials, self.spec, self.data.width))
        for index, model in branches.items():
            unit = BranchUnit(index, trials[index], model, self.spec)
            unit.column = self.column[trials[index].seed]
            self._attach(unit)
        self._base = len(self.units)  # units made by compaction come after
        T = len(trials)
        self.loss_acc = tf.Variable(tf.zeros(T), trainable=False)
        self.hit_acc = tf.Variable(tf.zeros(T), trainable=False)
        width = self.layout.width if self.layout else 0
        self.sum_acc = tf.Variable(tf.zeros((T, width)), trainable=False)
        self._functions: dict[tuple[int, ...], tuple[Any, Any]] = {}
        self.compactions = 0

    def _setup(self, trials: Sequence[Trial], ctx: Any) -> None:
        """What the pack's trials bring: their rows, batch orders and settings."""
        sweep = ctx.sweep
        self.trials, self.ctx = list(trials), ctx
        if len({t.fold for t in trials}) != 1:
            raise ValueError("a pack's trials must share their fold")
        self.fold = trials[0].fold
        self.split = ctx.dataset.split(
            sweep.validation_split, sweep.split_seed, sweep.cv, self.fold
        )
        self.seeds = sorted({t.seed for t in trials})
        self.column = {s: c for c, s in enumerate(self.seeds)}
        n = len(self.split.fit_idx)
        self.orders = np.stack(
            [self.split.fit_idx[batch_order(s, self.fold, n)] for s in self.seeds], 1
        ).astype("int32")
        self.kinds, self.settings, self.l1, self.l2, self.micro = _trial_values(self.trials)
        resolved = [_params.resolve(t.params, None) for t in self.trials]
        y_fit = ctx.dataset.y_train[self.split.fit_idx]
        self.targets = pack_targets(resolved, y_fit, ctx.dataset.spec)
        self.schedules: list[Schedule] = []  # made fresh by each run

    def _schedules(self) -> list[Schedule]:
        """Each trial's learning-rate schedule, fresh (plateau's state at its start)."""
        n, direction = len(self.split.fit_idx), self.ctx.objective[1]
        return [
            trial_schedule(t.params, float(self.settings["learning_rate"][i]), n, direction)
            for i, t in enumerate(self.trials)
        ]

    def _unit_settings(self, unit: Any) -> dict[str, list[Any]]:
        """A unit's optimizer settings per variable. Its learning rate is per block where
        its trials' schedules differ, or may come to (plateau), and comes each step from
        the schedules' table when any of them is not constant (``unit.scheduled``)."""
        out = {name: unit.settings(values) for name, values in self.settings.items()}
        unit.scheduled, per_block = _scheduling([self.trials[t] for t in unit.slots])
        if per_block:
            out["learning_rate"] = unit.settings(self.settings["learning_rate"], True)
        return out

    def load(self, trials: Sequence[Trial], ctx: Any, stacks: Sequence[Stack]) -> None:
        """Train new trials with this pack's units and traces (``signature`` must match):
        fresh weights and optimizer states, no new trace."""
        self._setup(trials, ctx)
        del self.units[self._base :]
        self._functions = {k: f for k, f in self._functions.items() if max(k) < self._base}
        for unit, plan in zip(self.units, stacks, strict=True):
            unit.plan = plan  # the same layout; its seeds may differ
            unit.load(self.trials)
            unit.columns = tuple(self.column[s] for s in plan.seeds)
            unit.set_penalties(self.l1, self.l2)
            unit.set_targets(self.targets)
            unit.updater.load(self._unit_settings(unit))
            for a in unit.accumulators:
                a.assign(tf.zeros_like(a))
            if isinstance(unit, ConvStackUnit):
                for choice in unit.choices:  # the traced program keeps the path it was made with
                    pool_paths.note(choice)
            unit.keep = None
            unit.owned[:] = False
            unit.owned[unit.slots] = True
        self.compactions = 0

    def _attach(self, unit: Any) -> None:
        """Add a unit: its optimizer (each trial's settings), penalties, ownership."""
        whole = isinstance(unit, BranchUnit) and unit.batch_size != self.micro
        if unit.batch_size % self.micro or whole:  # packing never plans this
            raise ValueError(f"batch size {unit.batch_size} cannot step by {self.micro}")
        unit.accumulate = unit.batch_size > self.micro
        unit.metrics = self.layout
        unit.accumulators = []
        if unit.accumulate:
            unit.accumulators = [tf.Variable(tf.zeros(v.shape)) for v in unit.trainable]
        if isinstance(unit, StackUnit):
            unit.columns = tuple(self.column[s] for s in unit.plan.seeds)
            unit.set_penalties(self.l1, self.l2)
        if isinstance(unit, ConvStackUnit):
            unit.choose_paths(self.micro)  # before the step is traced: the path is in it
        unit.set_targets(self.targets)
        unit.updater = _optimizers.Updater(
            self.kinds[unit.slots[0]],
            unit.trainable,
            self._unit_settings(unit),
            unit.block_sum,
        )
        unit.keep = None  # snapshots of done trials' weights, made when first needed
        unit.owned = np.zeros(len(self.trials), bool)
        unit.owned[unit.slots] = True
        for other in self.units:  # a moved trial now belongs to its new unit only
            other.owned[unit.slots] = False
        self.units.append(unit)

    # -- the traced functions ----------------------------------------------------------------

    def _compiled(self, active: tuple[int, ...]) -> tuple[Any, Any]:
        """The training and evaluation functions over the active units (traced once each).

        Long because both traced functions are closures over the same units, slots and
        variables: split apart, each would need them passed in and traced as arguments.
        """
        if active in self._functions:
            return self._functions[active]
        units = [self.units[u] for u in active]
        slots = np.concatenate([u.slots for u in units]).astype("int32")[:, None]

        def step(rows, scales, applies, rates, pos, epoch):
            x = self.data.inputs(rows)
            y = tf.gather(self.data.y, rows)
            with tf.GradientTape() as tape:
                total, loss_sums, hit_sums, metric_sums = [], [], [], []
                for k, unit in enumerate(units):
                    loss, hit, penalty, sums = unit.losses(x, y, True, epoch, pos)
                    total.append(tf.reduce_sum(loss) * scales[k])
                    if penalty is not None:
                        # Keras adds the penalty once per batch: a micro-batch adds its share.
                        share = tf.cast(tf.shape(rows)[1], tf.float32) * scales[k]
                        total.append(penalty * share)
                    loss_sums.append(loss)
                    hit_sums.append(hit)
                    metric_sums.append(sums)
                objective = tf.add_n(total)
            grads = tape.gradient(objective, [v for u in units for v in u.trainable])
            start = 0
            for k, unit in enumerate(units):
                lrs = _unit_rates(unit, rates) if unit.scheduled else None
                _update(unit, grads[start : start + len(unit.trainable)], applies[k], lrs)
                start += len(unit.trainable)
            self.loss_acc.scatter_nd_add(slots, tf.concat(loss_sums, 0))
            self.hit_acc.scatter_nd_add(slots, tf.concat(hit_sums, 0))
            if self.layout is not None:
                self.sum_acc.scatter_nd_add(slots, tf.concat(metric_sums, 0))

        # AutoGraph off: converting every function a step calls cost about a second a pack;
        # the one loop is an explicit while_loop.
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, len(self.seeds), None], tf.int32),
                tf.TensorSpec([None, len(units)], tf.float32),
                tf.TensorSpec([None, len(units)], tf.bool),
                tf.TensorSpec([None, len(self.trials)], tf.float32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.int32),
            ],
            autograph=False,
        )
        def train(rows, scales, applies, rates, pos0, epoch):
            b = tf.shape(rows)[2]

            def body(m):
                pos = pos0 + m * b + tf.range(b)
                step(rows[m], scales[m], applies[m], rates[m], pos, epoch)
                return (m + 1,)

            tf.while_loop(lambda m: m < tf.shape(rows)[0], body, (tf.constant(0),))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)], autograph=False)
        def evaluate(rows):
            x = self.data.inputs(rows[None])
            y = tf.gather(self.data.y, rows[None])
            loss_sums, hit_sums, metric_sums = [], [], []
            for unit in units:
                loss, hit, _, sums = unit.losses(x, y, False)
                loss_sums.append(loss)
                hit_sums.append(hit)
                metric_sums.append(sums)
            if self.layout is None:
                return tf.concat(loss_sums, 0), tf.concat(hit_sums, 0)
            return tf.concat(loss_sums, 0), tf.concat(hit_sums, 0), tf.concat(metric_sums, 0)

        self._functions[active] = (train, evaluate)
        return train, evaluate

    # -- epochs ------------------------------------------------------------------------------

    def _schedule(self) -> tuple[np.ndarray, np.ndarray]:
        """Per step and unit: 1 / the rows of the unit's current batch, and whether the
        unit updates after this step (its batch is complete)."""
        n, micro = len(self.orders), self.micro
        steps = math.ceil(n / micro)
        scales = np.zeros((steps, len(self.units)), "float32")
        applies = np.zeros((steps, len(self.units)), bool)
        m = np.arange(steps)
        for u, unit in enumerate(self.units):
            k = unit.batch_size // micro
            rows = np.minimum(unit.batch_size, n - (m // k) * unit.batch_size)
            scales[:, u] = 1.0 / rows
            applies[:, u] = ((m + 1) % k == 0) | (m == steps - 1)
        return scales, applies

    def _rates(self, epoch: int) -> np.ndarray:
        """Per step and trial: the learning rate of the trial's update after that step, for
        units with a schedule (0 elsewhere, unread). A trial counts its own updates."""
        n, micro = len(self.orders), self.micro
        steps = math.ceil(n / micro)
        rates = np.zeros((steps, len(self.trials)), "float32")
        m = np.arange(steps)
        for unit in self.units:
            if not unit.scheduled:
                continue
            k = unit.batch_size // micro
            updates = epoch * math.ceil(n / unit.batch_size) + m // k
            for t in unit.slots:
                rates[:, t] = self.schedules[t].rates(updates)
        return rates

    def _train_epoch(self, epoch: int, perm: np.ndarray, active: tuple[int, ...]) -> None:
        train, _ = self._compiled(active)
        scales, applies = (a[:, list(active)] for a in self._schedule())
        rates = self._rates(epoch)
        rows = self.orders[perm].T  # (seeds, n)
        n, micro, views = rows.shape[1], self.micro, len(self.seeds)
        full = n // micro
        self.loss_acc.assign(tf.zeros_like(self.loss_acc))
        self.hit_acc.assign(tf.zeros_like(self.hit_acc))
        self.sum_acc.assign(tf.zeros_like(self.sum_acc))
        for a in range(0, full, _STEPS_PER_CALL):
            b = min(a + _STEPS_PER_CALL, full)
            chunk = rows[:, a * micro : b * micro].reshape(views, b - a, micro).transpose(1, 0, 2)
            train(chunk, scales[a:b], applies[a:b], rates[a:b], a * micro, epoch)
            if self.ctx.stop.is_set():
                raise KeyboardInterrupt
        if full * micro < n:  # the last, partial micro-batch
            last = rows[None, :, full * micro :]
            train(last, scales[full:], applies[full:], rates[full:], full * micro, epoch)

    def _evaluate(self, rows: np.ndarray, active: tuple[int, ...]) -> tuple:
        """Mean loss and metric over ``rows`` of each trial an active unit owns (else nan),
        and the added metrics by name."""
        _, evaluate = self._compiled(active)
        T = len(self.trials)
        loss, hit = np.zeros(T), np.zeros(T)
        sums = np.zeros(tuple(self.sum_acc.shape), "float32")
        slots = np.concatenate([self.units[u].slots for u in active])
        owned = np.concatenate([self.units[u].owned[self.units[u].slots] for u in active])
        # A CNN's feature maps are large: fewer rows at once (packing sizes packs by it).
        cnn = any(isinstance(self.units[u], ConvStackUnit) for u in active)
        chunk = CNN_EVAL_BATCH if cnn else EVAL_BATCH
        for a in range(0, len(rows), chunk):
            out = evaluate(rows[a : a + chunk].astype("int32"))
            np.add.at(loss, slots[owned], out[0].numpy()[owned])
            np.add.at(hit, slots[owned], out[1].numpy()[owned])
            if self.layout is not None:
                np.add.at(sums, slots[owned], out[2].numpy()[owned])
        seen = np.zeros(T, bool)
        seen[slots[owned]] = True
        loss[~seen], hit[~seen] = np.nan, np.nan
        return loss / len(rows), hit / len(rows), self._added(sums, len(rows), seen)

    def _added(self, sums: np.ndarray, rows: int, seen: np.ndarray | None = None) -> dict:
        """The added metrics per trial from their sums over ``rows`` (nan where unseen)."""
        if self.layout is None:
            return {}
        out = self.layout.finalize(sums, rows)
        if seen is not None:
            for values in out.values():
                values[~seen] = np.nan
        return out

    # -- snapshots and compaction ------------------------------------------------------------

    def _snapshot(self, mask: np.ndarray, restore: bool = False) -> None:
        """Copy the weights of the trials in ``mask`` aside (or back, with ``restore``)."""
        for unit in self.units:
            mine = mask & unit.owned
            if not mine.any() or (restore and unit.keep is None):
                continue
            if unit.keep is None:
                unit.keep = [tf.Variable(v) for v in unit.weights]
            for i, (v, k) in enumerate(zip(unit.weights, unit.keep, strict=True)):
                if unit.maps is None:  # a branch: the whole model is one trial's
                    (v if restore else k).assign(k if restore else v)
                else:
                    m = tf.constant(mine[unit.maps[i]])
                    (v if restore else k).assign(
                        tf.where(m, k, v) if restore else tf.where(m, v, k)
                    )

    def _compact(self, epoch: int, done: np.ndarray, seconds: float) -> None:
        """Move the live trials of a stack into smaller stacks where the time its done trials
        would waste in the epochs left outweighs the extra stacks' per-step cost and a new
        trace. The epoch took ``seconds``: shared out by parameters, that prices them."""
        active = [u for u in self.units if (u.owned & ~done).any()]
        work = sum(u.n_params[t] for u in active for t in u.slots if u.owned[t]) or 1
        steps = math.ceil(len(self.orders) / self.micro)
        for unit in list(self.units):
            if not isinstance(unit, StackUnit) or unit not in active:
                continue
            owned = [t for t in unit.slots if unit.owned[t]]
            live = [t for t in owned if not done[t]]
            idle = sum(unit.n_params[t] for t in owned if done[t])
            left = unit.epochs - (epoch + 1)
            if not live or not idle or left < 1:
                continue
            live_trials = [self.trials[t] for t in live]
            plans, _ = plan_units(self.ctx.sweep.model, live_trials, self.data.width)
            extra = (len(plans) - 1) * STACK_NS * 1e-9 * steps
            if (idle / work * seconds - extra) * left < _COMPACT_SAVING:
                continue
            weights = [v.numpy() for v in unit.trainable]
            slots = {k: [v.numpy() for v in vs] for k, vs in unit.updater.slots.items()}
            keep = None if unit.keep is None else [v.numpy() for v in unit.keep]
            for plan in plans:
                blocks = tuple(tuple(live[i] for i in row) for row in plan.blocks)
                plan = Stack(plan.key, plan.seeds, blocks, plan.widths)
                carried = {t: unit.extract(weights, t) for t in plan.order}
                new = make_stack(plan, self.trials, self.spec, self.data.width, carried)
                self._attach(new)
                new.carry(unit, slots, keep)
            self.compactions += 1
            self._functions.clear()

    # -- the run -----------------------------------------------------------------------------

    def run(self, on_epoch: EpochHook | None, judge: PackJudge | None = None) -> list[Outcome]:
        """Train until every trial is done (its epochs, early stopping, or pruned at a rung
        by ``judge``); each trial's outcome, in pack order."""
        objective, direction = self.ctx.objective
        self.schedules = self._schedules()
        ledger = Ledger(
            self.trials, self.ctx.dataset.spec.metric, objective, direction, on_epoch, judge
        )
        ledger.schedules = self.schedules
        ledger.records_learning_rate = self.ctx.records_learning_rate
        for unit in self.units:
            for i in unit.slots:
                ledger.outcomes[i].n_params = unit.n_params[i]
        shuffle = np.random.RandomState(self.ctx.shuffle_seed(self.fold))
        n = len(self.orders)
        for epoch in range(ledger.epochs):
            # Every epoch draws its permutation, so a trial's batches never depend on its pack.
            perm = shuffle.permutation(n)
            done = ledger.done
            active = tuple(u for u, unit in enumerate(self.units) if (unit.owned & ~done).any())
            if not active:
                break
            started = time.perf_counter()
            self._train_epoch(epoch, perm, active)
            seconds = time.perf_counter() - started
            train = (
                self.loss_acc.numpy() / n,
                self.hit_acc.numpy() / n,
                self._added(self.sum_acc.numpy(), n),
            )
            keep_now = ledger.record(epoch, train, self._evaluate(self.split.val_idx, active))
            self._snapshot(keep_now)
            if 0 < ledger.done.sum() < len(self.trials):
                self._compact(epoch, ledger.done, seconds)
        self._snapshot(ledger.kept, restore=True)
        self._test(ledger.outcomes)
        if self.ctx.keep_weights:
            self._give_weights(ledger.outcomes)
        return ledger.outcomes

    def _give_weights(self, out: list[Outcome]) -> None:
        """Each tested trial's weights (restored: best or final) as its own Keras model lists
        them: a stack's block unpadded into kernel and bias per layer, a branch's as is."""
        arrays: dict[int, list[np.ndarray]] = {}
        for t, o in enumerate(out):
            if o.diverged is not None or o.pruned is not None:
                continue  # never tested, never kept
            unit = next(u for u in self.units if u.owned[t])
            if isinstance(unit, BranchUnit):
                o.weights = [np.array(w) for w in unit.model.get_weights()]
                continue
            if id(unit) not in arrays:
                arrays[id(unit)] = [v.numpy() for v in unit.trainable]
            o.weights = [a for layer in unit.extract(arrays[id(unit)], t) for a in layer]

    def _test(self, out: list[Outcome]) -> None:
        if self.ctx.dataset.n_test == 0 or all(o.diverged or o.pruned for o in out):
            return
        rows = np.arange(self.data.n_train, self.data.n_rows)
        loss, metric, added = self._evaluate(rows, tuple(range(len(self.units))))
        name = self.ctx.dataset.spec.metric
        for t, o in enumerate(out):
            if o.diverged is None and o.pruned is None:  # a pruned trial was not chosen
                o.test = {"loss": float(loss[t]), name: float(metric[t])}
                o.test.update({k: float(v[t]) for k, v in added.items()})


def _trial_values(trials: Sequence[Trial]) -> tuple:
    """Each trial's optimizer kind, settings (arrays by pack slot), l1, l2; the micro-batch."""
    kinds = [optimizer_kind(t.params) for t in trials]
    per_trial = [
        _optimizers.trial_settings(k, t.params) for k, t in zip(kinds, trials, strict=True)
    ]
    settings = {
        name: np.array([s[name] for s in per_trial], "float32")
        for name in ("learning_rate", "momentum", "weight_decay", "clipnorm")
    }
    p = [_params.resolve(t.params, "mlp") for t in trials]
    l1 = np.array([q["l1"] for q in p], "float32")
    l2 = np.array([q["l2"] for q in p], "float32")
    return kinds, settings, l1, l2, min(q["batch_size"] for q in p)


def signature(trials: Sequence[Trial], stacks: Sequence[Stack]) -> tuple:
    """What a pack's traces depend on: two packs with the same signature share them."""
    kinds, settings, l1, l2, micro = _trial_values(trials)
    units = []
    for plan in stacks:
        mine = plan.order
        dropout = any(_params.resolve(trials[t].params, "mlp")["dropout"] for t in mine)
        flags = tuple(
            (name, bool(np.all(v[mine] == v[mine][0])), bool(np.any(v[mine])))
            for name, v in sorted(settings.items())
        )
        units.append(
            (
                plan.key,
                plan.blocks,
                tuple(padded_widths(w, plan.key.activation) for w in plan.widths),
                dropout,
                bool(l1[mine].any()),
                bool(l2[mine].any()),
                flags,
                _scheduling([trials[t] for t in mine]),
            )
        )
    p = [_params.resolve(t.params, None) for t in trials]
    targets = (
        any(q["class_weight"] is not None for q in p),
        any(q["label_smoothing"] for q in p),
    )
    # A forced pool path is in the traces (``pool_paths``); a measured one is fixed per process.
    paths = pool_paths.forced()
    return (len({t.seed for t in trials}), len(trials), micro, targets, tuple(units), paths)


# Recent packs by signature, for the next pack of the same shape; a few, so that memory
# stays bounded (and alternating shapes, as in --no-pack runs, still find theirs).
_RECENT: dict[tuple, Pack] = {}
_RECENT_SIZE = 4
_RECENT_DATA: dict[str, Any] = {}


def train(
    trials: Sequence[Trial],
    ctx: Any,
    stacks: Sequence[Stack],
    branches: dict[int, Any],
    on_epoch: EpochHook | None,
    judge: PackJudge | None = None,
) -> list[Outcome]:
    """Train a pack; one outcome per trial. A pack of stacks only whose signature matches
    the previous pack's reuses its units and traced functions (a trace took 0.2-0.4 s).
    ``judge`` prunes trials at their rungs (``nnsweep.definition.pruning``)."""
    if _RECENT_DATA.get("dataset") is not ctx.dataset:
        _RECENT.clear()  # their traces read another dataset's table
        _RECENT_DATA["dataset"] = ctx.dataset
    # The added metrics are the sweep's: part of the traces, outside the trials.
    key = None if branches else (signature(trials, stacks), tuple(ctx.sweep.metrics))
    pack = _RECENT.pop(key, None) if key is not None else None  # a failing pack is not kept
    if pack is None:
        pack = Pack(trials, ctx, stacks, branches)
    else:
        pack.load(trials, ctx, stacks)
    outcomes = pack.run(on_epoch, judge)
    if key is not None:
        _RECENT[key] = pack
        while len(_RECENT) > _RECENT_SIZE:
            del _RECENT[next(iter(_RECENT))]
    return outcomes


def _scheduling(trials: Sequence[Trial]) -> tuple[bool, bool]:
    """Whether a unit of these trials reads its rates from the schedules' table, and
    whether its rates are per block (schedules that differ, or plateaus of several)."""
    keys = {(schedule_key(t.params), t.params.get("learning_rate")) for t in trials}
    kinds = {key[0][0] for key in keys}
    scheduled = kinds != {"constant"}
    return scheduled, scheduled and (len(keys) > 1 or ("plateau" in kinds and len(trials) > 1))


def _unit_rates(unit: Any, rates: tf.Tensor) -> list[tf.Tensor]:
    """Each of a unit's variables' learning rate this step, from the trials' rates (by pack
    slot): one value, or per block through the unit's maps."""
    per_block = unit.updater.per_block["learning_rate"]
    return [
        tf.gather(rates, unit.maps[i]) if per_block[i] else rates[unit.slots[0]]
        for i in range(len(unit.trainable))
    ]


def _update(unit: Any, grads: list[tf.Tensor], apply: tf.Tensor, rates: Any = None) -> None:
    """Update now, or add to the unit's accumulated gradient until its batch is complete
    (``rates``: each variable's scheduled learning rate, or None)."""
    if not unit.accumulate:
        unit.updater.apply(grads, rates)
        return

    def update() -> tf.Tensor:
        summed = [a + g for a, g in zip(unit.accumulators, grads, strict=True)]
        unit.updater.apply(summed, rates)
        for a in unit.accumulators:
            a.assign(tf.zeros_like(a))
        return tf.constant(0)

    def gather() -> tf.Tensor:
        for a, g in zip(unit.accumulators, grads, strict=True):
            a.assign_add(g)
        return tf.constant(0)

    tf.cond(apply, update, gather)
