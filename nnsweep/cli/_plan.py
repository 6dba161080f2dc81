"""``run --dry-run``: the trials a run would train and the packs they train in (no
TensorFlow, nothing written)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from nnsweep._progress import param_text as _param_text
from nnsweep.training.packing import input_shape

# A dry run lists this many trials, then counts the rest: a large sweep is a summary, not
# a million lines.
_LIST_LIMIT = 200


def print_plan(sweep: Any, results: Path, pack_size: int) -> None:
    """The trials (the first ``_LIST_LIMIT``, then a count), which are done, and the packs
    the rest would train in."""
    from nnsweep.run.runner import plan
    from nnsweep.store.results import TRIALS, read_rows

    trials = plan(sweep)
    if trials is None:
        runs = len(sweep.seed_list) * len(sweep.folds)
        click.echo(
            f"{sweep.name}: strategy {sweep.strategy} picks up to {sweep.max_trials} "
            f"configurations as it goes: at most {sweep.max_trials * runs} trials "
            f"({sweep.max_trials} configurations x {len(sweep.seed_list)} seeds x "
            f"{len(sweep.folds)} folds) on {sweep.data_name} with {_models(sweep)}"
        )
        return
    path = results / sweep.name / TRIALS
    done = {r["trial_id"] for r in read_rows(path)} if path.exists() else set()
    click.echo(
        f"{sweep.name}: {len(trials)} trials ({len(done & {t.trial_id for t in trials})} done) "
        f"on {sweep.data_name} with {_models(sweep)}"
    )
    if sweep.prune is not None:
        click.echo(sweep.prune.describe(sweep.max_epochs))
    if sweep.adaptive is not None:
        rule = sweep.adaptive
        click.echo(
            f"adaptive seeds: the first round trains these, {rule.min} seeds per configuration; "
            f"later rounds add {rule.step} seed{'s' if rule.step != 1 else ''} at a time (up to "
            f"{rule.max}) to the "
            "configurations whose 95 % interval still overlaps the best's"
        )
    swept = sweep.swept
    for t in trials[:_LIST_LIMIT]:
        params = _param_text(t.params, swept) or "(all fixed)"
        mark = "done" if t.trial_id in done else "todo"
        click.echo(f"  {mark}  {t.trial_id}  {params}  seed={t.seed} fold={t.fold}")
    if len(trials) > _LIST_LIMIT:
        click.echo(
            f"  ... and {len(trials) - _LIST_LIMIT:,} more ({sweep.grid_size:,} configurations "
            f"x {len({t.seed for t in trials})} seeds x {len(sweep.folds)} folds)"
        )
    pending = [t for t in trials if t.trial_id not in done]
    if pending:
        from nnsweep._keras import backend_name
        from nnsweep.training.packing import describe, make_packs

        shape = input_shape(sweep)
        inputs = math.prod(shape)
        packs = make_packs(
            pending,
            model=sweep.model,
            max_size=pack_size,
            input_size=inputs,
            input_shape=shape,
            backend=backend_name(),
            whole_configs=sweep.prune is not None,
        )
        lines = describe(packs, sweep.model, inputs)
        click.echo(f"the {len(pending)} trials to train: {lines[0]}")
        for line in lines[1:]:
            click.echo(line)


def _models(sweep: Any) -> str:
    if sweep.named_models:
        named = ", ".join(f"{n} ({family})" for n, (family, _) in sweep.named.items())
        return f"named models {named}"
    return f"model {sweep.model_name}"
