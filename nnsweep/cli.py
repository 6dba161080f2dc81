"""The ``nnsweep`` command line: the only place that prints for users and picks exit codes.

Exit codes: 0 success, 1 a sweep whose every trial failed, a chief that cannot be reached,
a regression that `diff --fail-on-regression` found (or an internal error), 2 bad input
(sweep file, data, results folder, usage), 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from nnsweep import errors
from nnsweep._progress import ProgressLine as _ProgressLine
from nnsweep._progress import clock as _clock
from nnsweep.confirm import DEFAULT_SEEDS, DEFAULT_TOP
from nnsweep.distributed import DEFAULT_CONNECT_TIMEOUT, DEFAULT_PORT, DEFAULT_WORKER_TIMEOUT
from nnsweep.results import DEFAULT_RESULTS
from nnsweep.training.packing import DEFAULT_PACK_SIZE, input_size

_state = {"debug": False}
# The codes the error classes carry, for what is not one of them (Ctrl-C, an OS refusal).
EXIT_FAILED = errors.SweepFailedError.exit_code
EXIT_USAGE = errors.NnsweepError.exit_code
EXIT_INTERRUPTED = errors.SweepInterrupted.exit_code
# click >= 8.2 raises this for a bare group or command; older versions print help themselves.
_NoArgsIsHelp = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        _state["debug"] = True
    return value


debug_option = click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_debug,
    help="Show tracebacks and TensorFlow's own log messages.",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="NNSWEEP_DATA_DIR",
    help="Folder with dataset files named as Keras names them (e.g. mnist.npz). "
    "[env: NNSWEEP_DATA_DIR]",
)
pack_size_option = click.option(
    "--pack-size",
    type=click.IntRange(min=1),
    default=DEFAULT_PACK_SIZE,
    show_default=True,
    help="Train up to N trials together as one TensorFlow program (any hyperparameters; "
    "see run --dry-run for the packs).",
)
sweep_file_option = click.option(
    "--sweep",
    "sweep_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The sweep file (default: sweeps/NAME.py); --export and confirm train from it.",
)
results_option = click.option(
    "--results",
    "results",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RESULTS,
    show_default=True,
    help="Folder that holds one sub-folder per sweep.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nnsweep")
@debug_option
def cli() -> None:
    """Hyperparameter sweeps that compare Keras architectures, beyond seed noise.

    Write a sweep file (see sweeps/), run it with `nnsweep run`, then look at the
    table with `nnsweep show` or pandas (nnsweep.load_results).
    """


# -- run ------------------------------------------------------------------------------


@cli.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dry-run", is_flag=True, help="List the trials and the packs they train in; train nothing."
)
@click.option(
    "--max-trials",
    type=click.IntRange(min=1),
    help="Train at most N trials (models) in this run; run again to continue.",
)
@click.option(
    "--fresh", is_flag=True, help="Move old results aside (never deleted) and start over."
)
@data_dir_option
@results_option
@pack_size_option
@click.option("--no-pack", is_flag=True, help="Train trials one by one (same as --pack-size 1).")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
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
    "--chief",
    is_flag=True,
    help="Serve this sweep's trials to workers on other machines (trains nothing itself).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="With --chief: the port workers connect to.")  # fmt: skip
@click.option("--host", default="0.0.0.0", show_default=True,
              help="With --chief: the address to listen on.")  # fmt: skip
@click.option(
    "--worker-timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_WORKER_TIMEOUT,
    show_default=True,
    help="With --chief: seconds a worker may stay silent before its trial goes to another.",
)
@click.option(
    "--worker",
    "chief_address",
    metavar="HOST:PORT",
    help="Train trials handed out by the chief at HOST:PORT, into the shared results folder.",
)
@click.option("--worker-id", help="With --worker: a stable name (a restart resumes its trial).")
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_CONNECT_TIMEOUT,
    show_default=True,
    help="With --worker: how long to keep trying to reach the chief.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Threads TensorFlow may use (e.g. 1 per worker when workers share a machine).",
)
@debug_option
def run(
    sweep_file: Path,
    dry_run: bool,
    max_trials: int | None,
    fresh: bool,
    data_dir: Path | None,
    results: Path,
    pack_size: int,
    no_pack: bool,
    epochs: int | None,
    verbose: bool,
    tensorboard: bool,
    chief: bool,
    port: int,
    host: str,
    worker_timeout: float,
    chief_address: str | None,
    worker_id: str | None,
    connect_timeout: float,
    threads: int | None,
) -> None:
    """Train every trial of SWEEP_FILE that is not in its results yet.

    Writes results/<name>/trials.csv (one row per trial), history.csv (one row per trial
    and epoch) and sweep.json. Running it again resumes where it stopped. On many
    machines: `--chief --port 8000` on one, `--worker HOST:8000` on each of the others,
    all with the same results folder (a shared filesystem).
    """
    from nnsweep.sweep import load_sweep

    sweep = _load(load_sweep, sweep_file)
    if epochs is not None:
        from dataclasses import replace

        from nnsweep.sweep import with_overrides

        # Its own folder, so a quick look never mixes with (or blocks) the real results.
        sweep = replace(with_overrides(sweep, epochs=epochs), name=f"{sweep.name}-epochs{epochs}")
    if dry_run:
        _print_plan(sweep, results, 1 if no_pack else pack_size)
        return
    if chief and chief_address:
        raise click.UsageError("--chief and --worker are two different machines' roles")
    if chief:
        _serve(sweep, results, data_dir, fresh, port, host, worker_timeout)
        return
    worker = None
    if chief_address:
        if max_trials is not None:
            raise click.UsageError("--max-trials is the sweep's (max_trials) on many machines")
        from nnsweep.distributed import Worker, default_worker_id

        worker = Worker(
            chief_address,
            worker_id or default_worker_id(),
            connect_timeout=connect_timeout,
            log=lambda message: click.echo(message, err=True),
        )
    from nnsweep._keras import backend_name
    from nnsweep.runner import run_sweep

    if backend_name() != "tensorflow" and not no_pack and pack_size > 1:
        click.echo(
            f"warning: packs need TensorFlow; on the {backend_name()} backend every trial "
            "trains alone, through Keras's fit",
            err=True,
        )
    summary = run_sweep(
        sweep,
        results=results,
        data_dir=data_dir,
        max_trials=max_trials,
        fresh=fresh,
        pack_size=1 if no_pack else pack_size,
        verbose=verbose,
        debug=_state["debug"],
        progress=_ProgressLine(verbose=verbose, debug=_state["debug"]),
        worker=worker,
        threads=threads,
        tensorboard=tensorboard,
    )
    _print_summary(summary)
    click.echo(f"results: {summary.results_dir / 'trials.csv'}")
    if tensorboard:
        _print_tensorboard(summary.results_dir)


def _print_tensorboard(results_dir: Path) -> None:
    from nnsweep.tensorboard import log_dir

    click.echo(f"tensorboard: tensorboard --logdir {log_dir(results_dir)}")


def _print_summary(summary: Any) -> None:
    """The closing lines of a run: what trained, in how many packs, what fell back."""
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts.items())) or "nothing new"
    packs = f" in {summary.packs} pack{'s' if summary.packs != 1 else ''}" if summary.packs else ""
    fallbacks = ""
    if summary.fallbacks:
        fallbacks = (
            f"; {summary.fallbacks} of them failed as a whole and trained one by one "
            "(see the warnings above)"
        )
    click.echo(
        f"trained {len(summary.rows)} trials{packs} in {_clock(summary.seconds)} ({counts}); "
        f"{summary.done_before} were already done{fallbacks}",
        err=True,
    )
    for note in summary.notes:
        click.echo(note, err=True)
    if summary.remaining:
        click.echo(f"{summary.remaining} trials remain; run the same command to go on", err=True)


def _serve(
    sweep: Any,
    results: Path,
    data_dir: Path | None,
    fresh: bool,
    port: int,
    host: str,
    worker_timeout: float,
) -> None:
    from nnsweep.distributed import serve_chief

    def log(message: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {message}", err=True)

    summary = serve_chief(
        sweep,
        port=port,
        host=host,
        results=results,
        data_dir=data_dir,
        fresh=fresh,
        worker_timeout=worker_timeout,
        log=log,
    )
    click.echo(
        f"search done: {summary.ended} tuner trials ended in {_clock(summary.seconds)}", err=True
    )
    click.echo(f"results: {summary.results_dir / 'trials.csv'}")


# A dry run lists this many trials, then counts the rest: a large sweep is a summary, not
# a million lines.
_LIST_LIMIT = 200


def _print_plan(sweep: Any, results: Path, pack_size: int) -> None:
    from nnsweep.results import TRIALS, read_rows
    from nnsweep.runner import plan

    trials = plan(sweep)
    if trials is None:
        click.echo(
            f"{sweep.name}: strategy {sweep.strategy} picks up to {sweep.max_trials} "
            "configurations as it goes"
        )
        return
    path = results / sweep.name / TRIALS
    done = {r["trial_id"] for r in read_rows(path)} if path.exists() else set()
    click.echo(
        f"{sweep.name}: {len(trials)} trials ({len(done & {t.trial_id for t in trials})} done) "
        f"on {sweep.data_name} with model {sweep.model_name}"
    )
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
        params = " ".join(f"{k}={t.params[k]}" for k in swept) or "(all fixed)"
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

        inputs = input_size(sweep)
        packs = make_packs(
            pending,
            model=sweep.model,
            max_size=pack_size,
            input_size=inputs,
            backend=backend_name(),
        )
        lines = describe(packs, sweep.model, inputs)
        click.echo(f"the {len(pending)} trials to train: {lines[0]}")
        for line in lines[1:]:
            click.echo(line)


# -- list and show --------------------------------------------------------------------


@cli.command("list")
@click.option(
    "--sweeps",
    "sweeps_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="sweeps",
    show_default=True,
    help="Folder of sweep files.",
)
@results_option
@debug_option
def list_(sweeps_dir: Path, results: Path) -> None:
    """List sweep files and the state of their results."""
    from nnsweep.results import TRIALS, read_rows
    from nnsweep.sweep import load_sweep

    files = sorted(sweeps_dir.glob("*.py")) if sweeps_dir.is_dir() else []
    if not files:
        click.echo(f"no sweep files in {sweeps_dir}/")
        return
    for path in files:
        if path.name.startswith("_"):
            continue
        try:
            sweep = _load(load_sweep, path)
        except errors.NnsweepError as exc:
            click.echo(f"{path}  (cannot load: {exc})")
            continue
        grid = sweep.strategy == "grid" and sweep.adaptive is None  # adaptive: not known ahead
        planned = sweep.grid_trials() if grid else None
        trials_path = results / sweep.name / TRIALS
        try:
            rows = read_rows(trials_path)
        except errors.ResultsError as exc:
            click.echo(f"{path}  {sweep.name}: (cannot read results: {exc})")
            continue
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        total = len(planned) if planned is not None else "?"
        state = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "not run"
        question = (sweep.description or "").splitlines()[0] if sweep.description else ""
        click.echo(f"{path}  {sweep.name}: {len(rows)}/{total} trials ({state})")
        if question:
            click.echo(f"    {question}")


@cli.command()
@click.argument("name")
@results_option
@click.option("--metric", help="Column to rank by (default: the sweep's validation objective).")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many configurations to list.",
)
@debug_option
def show(name: str, results: Path, metric: str | None, top: int) -> None:
    """Trials by status and the best configurations (mean ± std over seeds and folds).

    Ranked by the validation objective (choosing by the test split would flatter it), over
    the search rows; rows of `nnsweep confirm` are in the report.
    """
    from nnsweep.report.stats import (
        check_metric,
        held_out_column,
        metric_direction,
        search_rows,
        selection_metric,
        summarize,
    )
    from nnsweep.results import load_results, load_sweep_json, results_dir_for

    df = load_results(name, results)
    folder = results_dir_for(name, results)
    info = load_sweep_json(folder) if (folder / "sweep.json").exists() else {}
    counts = df["status"].value_counts().to_dict()
    click.echo(
        f"{info.get('name', name)}: {len(df)} trials ("
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + ")"
    )
    if info.get("description"):
        click.echo(info["description"].splitlines()[0])
    metric = metric or selection_metric(df, info)
    check_metric(df, metric)
    direction = metric_direction(metric, info)
    swept = info.get("swept") or []
    table = summarize(search_rows(df), metric, by=[c for c in swept if c in df.columns])
    if table.empty:
        click.echo("no successful trials yet")
    else:
        table = table.sort_values("mean", ascending=direction == "min").head(top)
        shown = table.drop(columns=["config_id"])
        shown.insert(
            len(shown.columns) - 5,
            metric,
            [
                f"{m:.4f} ± {s:.4f}" if s == s else f"{m:.4f}"
                for m, s in zip(table["mean"], table["std"], strict=True)
            ],
        )
        shown = shown.drop(columns=["mean", "std", "ci_low", "ci_high"])
        test_metric = held_out_column(metric, df, info)
        if test_metric is not None:  # a check on the choice, never the chooser
            test = summarize(search_rows(df), test_metric, by=[])
            test = test.set_index("config_id").reindex(table["config_id"])
            shown.insert(
                len(shown.columns) - 1,
                test_metric,
                [
                    f"{m:.4f} ± {s:.4f}" if s == s else f"{m:.4f}"
                    for m, s in zip(test["mean"], test["std"], strict=True)
                ],
            )
        better = "lower" if direction == "min" else "higher"
        click.echo(
            f"\nbest configurations by {metric} ({better} is better), "
            "mean ± std over seeds and folds:"
        )
        click.echo(shown.to_string(index=False))
    bad = df[df["status"] != "ok"]
    if len(bad):
        click.echo(f"\n{len(bad)} trials did not finish ok:")
        for _, r in bad.head(20).iterrows():
            click.echo(f"  {r['trial_id']} {r['status']}: {r['error']}")


@cli.command()
@click.argument("names", nargs=-1)
@results_option
@click.option(
    "--metric",
    help="Column to rank by (default: the sweep's validation objective; the test metric is "
    "shown beside it).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "svg"]),
    default="png",
    show_default=True,
    help="File format of the figures.",
)
@click.option("--open", "open_", is_flag=True, help="Open each HTML report in the browser.")
@debug_option
def report(
    names: tuple[str, ...], results: Path, metric: str | None, fmt: str, open_: bool
) -> None:
    """Figures, statistics over seeds and an HTML report for each sweep NAME (default: all).

    Writes results/<name>/report/index.html with one figure file per figure beside it, and
    prints the summary table. Naming two or more sweeps also writes one figure that overlays
    them under results/_compare/. Reads the CSVs only: no Keras or TensorFlow.
    """
    from nnsweep.report import write_comparison, write_report
    from nnsweep.results import list_result_dirs

    targets = list(names) or [p.name for p in list_result_dirs(results)]
    if not targets:
        raise errors.ResultsError(f"no sweep results under {results}/; run a sweep first")
    for i, name in enumerate(targets):
        result = write_report(name, results=results, metric=metric, fmt=fmt)
        for line in result.mixed_versions:
            mixed = f"{name}'s trials trained under different versions: {line}"
            click.echo(f"warning: {mixed}", err=True)
        click.echo(("\n" if i else "") + result.summary_text)
        click.echo(f"report: {result.html_path}")
        if open_:
            click.launch(str(result.html_path))
    if len(names) > 1:  # only sweeps the user named: unrelated ones may share no metric
        path = write_comparison(list(names), results=results, metric=metric, fmt=fmt)
        click.echo(f"\n{path.with_suffix('.txt').read_text().strip()}")
        click.echo(f"comparison: {path}")


@cli.command()
@click.argument("name")
@results_option
@click.option("--metric", help="Column to choose by (default: the sweep's validation objective).")
@click.option(
    "--export",
    "export",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Train the best configuration once more on all training data and save it (.keras).",
)
@sweep_file_option
@data_dir_option
@debug_option
def best(
    name: str,
    results: Path,
    metric: str | None,
    export: Path | None,
    sweep_file: Path | None,
    data_dir: Path | None,
) -> None:
    """The best configuration of sweep NAME (mean and 95 % interval over seeds and folds).

    Chosen by the validation objective, not the test split. With --export PATH.keras, trains
    it once more on the whole training split and saves the model in Keras's format, with
    its summary (and a diagram beside it where pydot and graphviz are installed).
    """
    from nnsweep.best import best_configuration, params_of, train_best

    chosen = best_configuration(name, results=results, metric=metric)
    click.echo(f"best of {name} by {chosen.metric}: {chosen.describe()}")
    if export is None:
        return
    if export.suffix != ".keras":
        raise errors.ResultsError(f"--export must name a .keras file, got {export}")
    from nnsweep.sweep import load_sweep

    sweep = _load(load_sweep, sweep_file or Path("sweeps") / f"{name}.py")
    params = params_of(sweep, chosen.config_id, results)
    click.echo("training it on the whole training split...", err=True)
    model, test = train_best(sweep, params, data_dir=data_dir, debug=_state["debug"])
    if test:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in test.items())
        click.echo(f"the exported model on the test split: {scores}")
    export.parent.mkdir(parents=True, exist_ok=True)
    model.save(export)
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
    type=click.IntRange(min=1),
    default=DEFAULT_SEEDS,
    show_default=True,
    help="Fresh seeds per configuration: seeds the sweep never used.",
)
@sweep_file_option
@data_dir_option
@results_option
@pack_size_option
@debug_option
def confirm(
    name: str,
    top: int,
    seeds: int,
    sweep_file: Path | None,
    data_dir: Path | None,
    results: Path,
    pack_size: int,
) -> None:
    """Retrain the best configurations of sweep NAME on fresh seeds, to check the choice.

    Appends their rows to results/<name>/trials.csv with phase "confirm" (the sweep's own
    rows read as "search"); running it again resumes. `nnsweep report NAME` then ranks them
    on the fresh seeds (pairwise Welch tests, Holm-corrected) and shows the winner's curse:
    how far the chosen configuration fell from its search seeds to fresh ones.
    """
    from nnsweep.confirm import Confirm
    from nnsweep.report.confirmation import confirmation
    from nnsweep.runner import run_sweep
    from nnsweep.sweep import load_sweep

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
    )
    _print_summary(summary)
    from nnsweep.report.stats import metric_direction, selection_metric
    from nnsweep.results import load_results, load_sweep_json

    df = load_results(summary.results_dir)
    info = load_sweep_json(summary.results_dir)
    metric = selection_metric(df, info)
    swept = [c for c in info.get("swept") or [] if c in df.columns]
    result = confirmation(df, metric, swept, metric_direction(metric, info))
    for line in result.text if result is not None else []:
        click.echo(line)
    click.echo(f"results: {summary.results_dir / 'trials.csv'}")


# -- entry point ----------------------------------------------------------------------


@cli.command("tensorboard")
@click.argument("name")
@results_option
@debug_option
def tensorboard_(name: str, results: Path) -> None:
    """Write TensorBoard logs of sweep NAME from its trials.csv and history.csv.

    For sweeps run without --tensorboard: one run per trial under
    results/<name>/tensorboard/ (hyperparameters with seed and fold, every epoch's
    metrics, test metrics), the sweep's domains for the HParams dashboard. Running it again
    rewrites them: no point twice. Reads the CSVs only: no Keras or TensorFlow.
    """
    from nnsweep.report._page import _folder
    from nnsweep.tensorboard import write_logs

    folder, n = write_logs(_folder(name, results))
    click.echo(f"wrote {n} trials' runs to {folder}")
    click.echo(f"see them: tensorboard --logdir {folder}")


@cli.command()
@click.argument("a")
@click.argument("b")
@results_option
@click.option("--metric", help="Column to compare (default: the test metric, else the objective).")
@click.option(
    "--fail-on-regression",
    is_flag=True,
    help="Exit 1 when a configuration is worse in B beyond seed noise (a gate for CI).",
)
@debug_option
def diff(a: str, b: str, results: Path, metric: str | None, fail_on_regression: bool) -> None:
    """Compare sweep B with sweep A (names or results folders) on their shared configurations.

    Configurations are matched by the values of the hyperparameters both swept; for each,
    the two means, the difference B - A with its 95 % interval and Welch's test over the
    seeds, Holm-corrected; then the versions and settings that differ (from sweep.json).
    Run a sweep before and after upgrading TensorFlow or changing a model, then diff them.
    """
    from nnsweep.diff import diff_sweeps, format_diff

    result = diff_sweeps(a, b, results=results, metric=metric)
    click.echo(format_diff(result))
    if fail_on_regression and result.regressions:
        worst = ", ".join(c.label for c in result.regressions[:3])
        raise errors.RegressionFound(
            f"{len(result.regressions)} configurations are worse in {b} than in {a} on "
            f"{result.metric} beyond seed noise ({worst})"
        )


def _load(load_sweep: Any, path: Path) -> Any:
    """A sweep file's Sweep; TensorFlow's start-up lines stay hidden if it imports Keras."""
    from nnsweep._keras import quiet_imports

    with quiet_imports(_state["debug"]):
        return load_sweep(path)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI, turning errors into one line on stderr and an exit code."""
    _state["debug"] = False
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="nnsweep",
            standalone_mode=False,
        )
    except click.exceptions.Abort:
        # click's word for Ctrl-C inside a command: the same line as anywhere else.
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except _NoArgsIsHelp as exc:
        exc.show()  # a bare command prints its help
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # One line, like every other error: what is wrong, and where to read more.
        where = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            where = f" (see '{exc.ctx.command_path} --help')"
        click.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(exc.exit_code)
    except errors.SweepInterrupted as exc:
        sys.stderr.write("\n")  # below the progress line
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except errors.NnsweepError as exc:
        _report(exc)
        sys.exit(exc.exit_code)
    except OSError as exc:
        # The machine's refusal (a read-only folder, a full disk, a name too long): the
        # user's to fix, so one line naming the file, not an internal error.
        _report(_os_error(exc))
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - the last line of defence prints, never hides
        _report(exc, internal=True)
        sys.exit(EXIT_FAILED)
    sys.exit(0)


def _os_error(exc: OSError) -> Exception:
    where = f"{exc.filename}: " if exc.filename else ""
    error = errors.NnsweepError(f"{where}{exc.strerror or exc}")
    error.__cause__ = exc
    error.__traceback__ = exc.__traceback__
    return error


def _report(exc: BaseException, internal: bool = False) -> None:
    if _state["debug"]:
        traceback.print_exception(exc)
    prefix = "internal error" if internal else "error"
    hint = " (run with --debug for the traceback)" if internal and not _state["debug"] else ""
    click.echo(f"{prefix}: {exc}{hint}", err=True)


if __name__ == "__main__":
    main()
