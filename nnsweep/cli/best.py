"""``nnsweep best``: the best configuration, and exporting its model (kept, or trained)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nnsweep import errors
from nnsweep.cli._options import (
    _load,
    _state,
    cli,
    data_dir_option,
    debug_option,
    epochs_option,
    results_option,
    sweep_file_option,
)


@cli.command()
@click.argument("name")
@results_option
@click.option("--metric", help="Column to choose by (default: the sweep's validation objective).")
@click.option(
    "--export",
    "export",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the best configuration's model (.keras): its kept model where the run kept "
    "one (no training), else trained once more on all training data.",
)
@click.option(
    "--ensemble",
    is_flag=True,
    help="With --export: one model averaging the predictions of the configuration's kept "
    "models (its seeds and folds), with its test metric beside theirs.",
)
@sweep_file_option(
    "With --export: the sweep file that defines NAME, whose model and data the best "
    "configuration trains on (default: sweeps/NAME.py)."
)
@data_dir_option
@epochs_option("Choose from")
@debug_option
def best(
    name: str,
    results: Path,
    metric: str | None,
    export: Path | None,
    ensemble: bool,
    sweep_file: Path | None,
    data_dir: Path | None,
    epochs: int | None,
) -> None:
    """The best configuration of sweep NAME (mean and 95 % interval over seeds and folds).

    Chosen by the validation objective, not the test split. With --export PATH.keras, saves
    its model in Keras's format: the kept model of its best seed where `run --keep-models`
    kept it (nothing is trained; its test metric is its row's), else trained once more on
    the whole training split. Its summary is printed (and a diagram saved beside it where
    pydot and graphviz are installed).
    """
    from nnsweep.run.best import best_configuration
    from nnsweep.run.quick_look import folder_name
    from nnsweep.store.kept import kept_models
    from nnsweep.store.results import results_dir_for

    name = folder_name(name, epochs)
    if export is not None and export.suffix != ".keras":
        raise errors.ResultsError(f"--export must name a .keras file, got {export}")
    if ensemble and export is None:
        raise click.UsageError("--ensemble goes with --export PATH.keras")
    chosen = best_configuration(name, results=results, metric=metric)
    if export is None:
        click.echo(f"best of {name} by {chosen.metric}: {chosen.describe()}")
        return
    kept = kept_models(results_dir_for(name, results)).get(chosen.config_id)
    if ensemble and not kept:
        raise errors.ResultsError(
            f"--ensemble needs the kept models of configuration {chosen.config_id}; run the "
            "sweep with --keep-models K to keep them"
        )
    # The sweep (where it is needed: to train, or for the ensemble's test split) and the
    # configuration's place in it are checked before anything is printed.
    sweep = _sweep_of(name, sweep_file) if ensemble or not kept else None
    if kept:
        click.echo(f"best of {name} by {chosen.metric}: {chosen.describe()}")
        model = _export_kept(name, results, chosen, sweep, data_dir, export, ensemble)
    else:
        model = _export_trained(name, results, chosen, sweep, data_dir, export)
    model.summary(print_fn=lambda line, **kw: click.echo(line))
    try:
        import keras

        diagram = export.with_suffix(".png")
        keras.utils.plot_model(model, to_file=str(diagram), show_shapes=True)
        if diagram.exists():  # without pydot, Keras prints a hint and returns
            click.echo(f"diagram: {diagram}")
    except (ImportError, OSError, AttributeError):  # pydot or graphviz missing
        pass
    click.echo(f"saved: {export}")


def _export_trained(
    name: str, results: Path, chosen: Any, sweep: Any, data_dir: Path | None, export: Path
) -> Any:
    """No kept model: the configuration trained once more, on the whole training split."""
    from nnsweep.run.best import params_of, train_best

    params = params_of(sweep, chosen.config_id, results)
    click.echo(f"best of {name} by {chosen.metric}: {chosen.describe()}")
    click.echo(
        "no kept model of it (run with --keep-models K to keep them): training it on the "
        "whole training split...",
        err=True,
    )
    model, test = train_best(sweep, params, data_dir=data_dir, debug=_state["debug"])
    if test:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in test.items())
        click.echo(f"the exported model on the test split: {scores}")
    export.parent.mkdir(parents=True, exist_ok=True)
    model.save(export)
    return model


def _export_kept(
    name: str,
    results: Path,
    chosen: Any,
    sweep: Any,
    data_dir: Path | None,
    export: Path,
    ensemble: bool,
) -> Any:
    """The kept model of the configuration's best seed (by validation), or the ensemble of
    its kept models; nothing is trained."""
    from nnsweep._keras import import_keras
    from nnsweep.run import keep
    from nnsweep.store.kept import copy_atomic, write_atomic

    members = keep.kept_of(name, results=results, config_id=chosen.config_id)
    keras = import_keras(_state["debug"])
    test_columns = [c for c in members[0].row if c.startswith("test_")]
    if not ensemble:
        top = members[0]
        scores = ", ".join(f"{c} {top.row[c]:.4f}" for c in test_columns)
        click.echo(
            f"exporting the kept model of trial {top.trial_id} (seed {top.row['seed']}, fold "
            f"{top.row['fold']}: the configuration's best by {chosen.metric}); trained in the "
            f"sweep, nothing trained now; its test scores are its row's: {scores or 'none'}"
        )
        copy_atomic(top.path, export)
        return keras.models.load_model(export)
    from nnsweep.run.prepare import load_data

    dataset = load_data(sweep, data_dir)
    models = [keras.models.load_model(m.path) for m in members]
    model = keep.ensemble(models, dataset.spec)
    test = keep.scores_on_test(model, dataset)
    metric = f"test_{dataset.spec.metric}"
    singles = ", ".join(f"{m.row[metric]:.4f}" for m in members if metric in m.row)
    click.echo(
        f"the ensemble of {len(members)} kept models of {chosen.config_id} (seeds "
        + ", ".join(str(m.row["seed"]) for m in members)
        + f"), nothing trained: {metric} "
        + (f"{test[metric]:.4f}" if test else "(no test split)")
        + (f"; each alone (their rows): {singles}" if singles else "")
    )
    write_atomic(export, lambda temp: model.save(temp))
    return model


def _sweep_of(name: str, sweep_file: Path | None) -> Any:
    """The sweep that trained results NAME: its file (default sweeps/NAME.py), or, for a
    quick look NAME-epochsN, its sweep's file as ``run --epochs N`` trained it."""
    from nnsweep.definition.sweep import load_sweep
    from nnsweep.run.quick_look import quick_look, split

    base, looked = split(name)
    default = Path("sweeps") / f"{name}.py"
    if sweep_file is None and looked and not default.is_file():
        default = Path("sweeps") / f"{base}.py"
    sweep = _load(load_sweep, sweep_file or default)
    if looked and sweep.name == base:
        sweep, _ = quick_look(sweep, looked)
    return sweep
