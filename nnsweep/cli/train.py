"""The commands that train: ``run`` (alone, as a chief or as a worker) and ``confirm``."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from nnsweep import errors
from nnsweep._keras import MAX_THREADS
from nnsweep._progress import ProgressLine as _ProgressLine
from nnsweep._progress import print_summary as _print_summary
from nnsweep.cli._options import (
    _load,
    _state,
    cli,
    data_dir_option,
    debug_option,
    keep_models_option,
    max_model_disk_option,
    pack_size_option,
    results_option,
    sweep_file_option,
)
from nnsweep.cli._plan import print_plan
from nnsweep.definition.params import MAX_EPOCHS
from nnsweep.run.confirm import DEFAULT_SEEDS, DEFAULT_TOP

# confirm trains every seed it is asked for, for each configuration: a typo must not hang.
MAX_CONFIRM_SEEDS = 1000


@cli.command()
# Not required by click: "run --ray sweeps/x.py" would take the file as --ray's address and
# say only that the argument is missing (see _sweep_file_given).
@click.argument(
    "sweep_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=False,
    metavar="SWEEP_FILE",
)
@click.option(
    "--dry-run", is_flag=True, help="List the trials and the packs they train in; train nothing."
)
@click.option(
    "--max-models",
    type=click.IntRange(min=1),
    help="Train at most N models (trials: configuration x seed x fold) in this run; run "
    "again to continue.",
)
@click.option("--max-trials", "old_max_trials", hidden=True)  # refused: see _refuse_gone
@click.option(
    "--fresh", is_flag=True, help="Move old results aside (never deleted) and start over."
)
@data_dir_option
@results_option
@pack_size_option
@click.option("--no-pack", is_flag=True, help="Train trials one by one (same as --pack-size 1).")
@click.option(
    "--epochs",
    type=click.IntRange(1, MAX_EPOCHS),
    help="A quick look: train every trial for N epochs, into results/<name>-epochsN.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show every trial's metrics after each epoch.")
@click.option(
    "--tensorboard",
    is_flag=True,
    help="Log every trial as it trains for TensorBoard's HParams dashboard, under "
    "results/<name>/tensorboard/.",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Train packs as Ray tasks: on a cluster at ADDRESS (auto, or HOST:PORT of its head), "
    "or, with no address, on a Ray started on this machine. This process alone writes the "
    "results.",
)
@click.option("--ray-cpus", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="With --ray: CPUs each pack task takes.")  # fmt: skip
@click.option("--ray-gpus", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="With --ray: GPUs each pack task takes.")  # fmt: skip
@click.option("--chief", is_flag=True, hidden=True)
@click.option("--worker", "chief_address", hidden=True)
@click.option(
    "--threads",
    type=click.IntRange(1, MAX_THREADS),
    help="Threads TensorFlow may use (e.g. 1 per worker when workers share a machine).",
)
@click.option(
    "--prune/--no-prune",
    default=None,
    help="Stop configurations that are worse than the leader beyond seed noise at their "
    "rungs (--prune: the defaults, for a sweep that does not ask), or train every trial to "
    "its end (--no-prune). Default: as the sweep says (Sweep(prune=...)).",
)
@keep_models_option
@max_model_disk_option
@debug_option
def run(
    sweep_file: Path,
    dry_run: bool,
    max_models: int | None,
    old_max_trials: str | None,
    fresh: bool,
    data_dir: Path | None,
    results: Path,
    pack_size: int,
    no_pack: bool,
    epochs: int | None,
    verbose: bool,
    tensorboard: bool,
    ray_address: str | None,
    ray_cpus: float,
    ray_gpus: float,
    chief: bool,
    chief_address: str | None,
    threads: int | None,
    prune: bool | None,
    keep_models: int | str | None,
    max_model_disk: int | None,
) -> None:
    """Train every trial of SWEEP_FILE that is not in its results yet.

    Writes results/<name>/trials.csv (one row per trial), history.csv (one row per trial
    and epoch) and sweep.json; with --keep-models, the best configurations' trained models
    in results/<name>/models/. Running it again resumes where it stopped. On many
    machines: `--ray ADDRESS` (a Ray cluster); packs go out as Ray tasks and their rows
    come back here.

    \f
    Long for its signature (one parameter per option); each role is a helper.
    """
    from nnsweep.definition.sweep import load_sweep

    _refuse_gone(chief or bool(chief_address), old_max_trials is not None)
    sweep = _load(load_sweep, _sweep_file_given(sweep_file, ray_address))
    if epochs is not None:
        from nnsweep.run.quick_look import quick_look

        # Its own folder, so a quick look never mixes with (or blocks) the real results.
        sweep, note = quick_look(sweep, epochs, prune_given=prune is not None)
        if note:
            click.echo(note, err=True)
    sweep = _with_pruning(sweep, prune)
    _check_combination(dry_run, no_pack)
    if dry_run:
        print_plan(sweep, results, 1 if no_pack else pack_size)
        return
    ray = _ray_options(ray_address, ray_cpus, ray_gpus)
    from nnsweep.run.runner import run_sweep

    _warn_if_alone(no_pack, pack_size)
    summary = run_sweep(
        sweep,
        results=results,
        data_dir=data_dir,
        max_trials=max_models,
        fresh=fresh,
        pack_size=1 if no_pack else pack_size,
        verbose=verbose,
        debug=_state["debug"],
        progress=_ProgressLine(verbose=verbose, debug=_state["debug"]),
        threads=threads,
        tensorboard=tensorboard,
        ray=ray,
        keep_models=keep_models,
        max_model_disk=max_model_disk,
    )
    _print_summary(summary)
    click.echo(f"results: {summary.results_dir / 'trials.csv'}")
    if tensorboard:
        _print_tensorboard(summary.results_dir)


# Options that a dry run ignores: asked for with --dry-run, they would do nothing.
_RUN_ONLY = (
    "fresh",
    "max_models",
    "tensorboard",
    "ray_address",
    "threads",
    "verbose",
    "keep_models",
    "max_model_disk",
)


def _sweep_file_given(sweep_file: Path | None, ray_address: str | None) -> Path:
    """SWEEP_FILE, or the usage error that says why it is missing."""
    if sweep_file is not None:
        return sweep_file
    if ray_address is not None and (ray_address.endswith(".py") or Path(ray_address).is_file()):
        raise click.UsageError(
            f"--ray took {ray_address} as the cluster's address, and SWEEP_FILE is missing: "
            f"put the sweep file first (nnsweep run {ray_address} --ray) or write "
            "--ray=ADDRESS"
        )
    raise click.UsageError("Missing argument 'SWEEP_FILE'.")


def _refuse_gone(chief: bool, max_trials: bool) -> None:
    """Options that are gone, each refused with what replaces it."""
    if chief:
        raise click.UsageError(
            "--chief and --worker are gone: run the sweep on many machines with --ray "
            "(see `nnsweep run --help` and the README's 'Running on many machines')"
        )
    if max_trials:
        raise click.UsageError(
            "--max-trials is now --max-models: it counts models (configuration x seed x "
            "fold), while a sweep's max_trials counts configurations"
        )


def _check_combination(dry_run: bool, no_pack: bool) -> None:
    """Refuse options that do nothing beside the others given (a user expects them to)."""
    ctx = click.get_current_context()

    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source in (
            click.core.ParameterSource.COMMANDLINE,
            click.core.ParameterSource.ENVIRONMENT,
        )

    if no_pack and given("pack_size"):
        raise click.UsageError("--no-pack trains trials one by one: leave out --pack-size")
    if dry_run:
        ignored = [
            f"--{n.replace('_address', '').replace('_', '-')}" for n in _RUN_ONLY if given(n)
        ]
        if ignored:
            raise click.UsageError(
                f"--dry-run trains nothing and writes nothing: {', '.join(ignored)} would do "
                "nothing; leave them out"
            )


def _with_pruning(sweep: Any, prune: bool | None) -> Any:
    """The sweep with --prune (its own rule, else the defaults) or --no-prune applied."""
    from dataclasses import replace

    if prune is None or (prune and sweep.prune is not None):
        return sweep
    try:
        return replace(sweep, prune=prune)
    except errors.SweepDefinitionError as exc:
        raise errors.SweepDefinitionError(f"--prune: {exc.field}", exc.rule, exc.value) from None


def _ray_options(address: str | None, cpus: float, gpus: float) -> Any:
    """The Ray options of a run (None without --ray); --ray-* alone is a mistake."""
    if address is None:
        if cpus != 1.0 or gpus:
            raise click.UsageError("--ray-cpus and --ray-gpus go with --ray")
        return None
    from nnsweep.run.executors import RayOptions

    return RayOptions(address=address, cpus=cpus, gpus=gpus)


def _warn_if_alone(no_pack: bool, pack_size: int) -> None:
    """Packs need TensorFlow: say so where another Keras backend trains trials alone."""
    from nnsweep._keras import backend_name, import_keras

    if backend_name() == "tensorflow":
        return
    import_keras(_state["debug"])  # a backend that cannot load: that line, not this one
    if not no_pack and pack_size > 1:
        click.echo(
            f"warning: packs need TensorFlow; on the {backend_name()} backend every trial "
            "trains alone, through Keras's fit",
            err=True,
        )


def _print_tensorboard(results_dir: Path) -> None:
    from nnsweep.tensorboard import log_dir

    click.echo(f"tensorboard: tensorboard --logdir {shlex.quote(str(log_dir(results_dir)))}")


@cli.command()
@click.argument("name")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=DEFAULT_TOP,
    show_default=True,
    help="How many of the best configurations (by the validation objective) to retrain.",
)
@click.option(
    "--seeds",
    type=click.IntRange(1, MAX_CONFIRM_SEEDS),
    default=DEFAULT_SEEDS,
    show_default=True,
    help="Fresh seeds per configuration: seeds the sweep never used.",
)
@sweep_file_option(
    "The sweep file that defines NAME: its model, data and space, for the configurations "
    "retrained (default: sweeps/NAME.py)."
)
@data_dir_option
@results_option
@pack_size_option
@keep_models_option
@max_model_disk_option
@debug_option
def confirm(
    name: str,
    top: int,
    seeds: int,
    sweep_file: Path | None,
    data_dir: Path | None,
    results: Path,
    pack_size: int,
    keep_models: int | str | None,
    max_model_disk: int | None,
) -> None:
    """Retrain the best configurations of sweep NAME on fresh seeds, to check the choice.

    Appends their rows to results/<name>/trials.csv with phase "confirm" (the sweep's own
    rows read as "search"); running it again resumes. `nnsweep report NAME` then ranks them
    on the fresh seeds (pairwise Welch tests, Holm-corrected) and shows the winner's curse:
    how far the chosen configuration fell from its search seeds to fresh ones.
    """
    from nnsweep.definition.sweep import load_sweep
    from nnsweep.report.confirmation import confirmation
    from nnsweep.run.confirm import Confirm
    from nnsweep.run.runner import run_sweep

    sweep = _load(load_sweep, sweep_file or Path("sweeps") / f"{name}.py")
    if sweep.name != name:
        raise errors.SweepFileError(
            f"{sweep_file} defines sweep {sweep.name!r}, not {name!r}; name the sweep it defines"
        )
    summary = run_sweep(
        sweep,
        results=results,
        data_dir=data_dir,
        pack_size=pack_size,
        debug=_state["debug"],
        progress=_ProgressLine(verbose=False, debug=_state["debug"]),
        confirm=Confirm(top=top, seeds=seeds),
        keep_models=keep_models,
        max_model_disk=max_model_disk,
    )
    _print_summary(summary)
    from nnsweep.report.stats import metric_direction, selection_metric
    from nnsweep.store.results import load_results, load_sweep_json

    df = load_results(summary.results_dir)
    info = load_sweep_json(summary.results_dir)
    metric = selection_metric(df, info)
    swept = [c for c in info.get("swept") or [] if c in df.columns]
    result = confirmation(df, metric, swept, metric_direction(metric, info))
    for line in result.text if result is not None else []:
        click.echo(line)
    click.echo(f"results: {summary.results_dir / 'trials.csv'}")
