"""The commands that read results: ``list``, ``show``, ``report``, ``diff`` and
``tensorboard`` (none imports TensorFlow; ``best`` is in ``cli/best.py``)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from nnsweep import errors
from nnsweep.cli._options import (
    _load,
    cli,
    debug_option,
    epochs_option,
    results_option,
)


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
    from nnsweep.definition.sweep import load_sweep
    from nnsweep.store._layout import split_quick_look
    from nnsweep.store.results import TRIALS, quick_looks, read_rows

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
        # The sweep's own trials against its plan; nnsweep confirm's are counted apart.
        search = [r for r in rows if r.get("phase", "search") != "confirm"]
        counts: dict[str, int] = {}
        for r in search:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        total = len(planned) if planned is not None else "?"
        state = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "not run"
        if len(search) < len(rows):
            state += f"; {len(rows) - len(search)} confirmation trials"
        question = (sweep.description or "").splitlines()[0] if sweep.description else ""
        click.echo(f"{path}  {sweep.name}: {len(search)}/{total} trials ({state})")
        if question:
            click.echo(f"    {question}")
        for look in quick_looks(results / sweep.name):
            rows = read_rows(look / TRIALS)
            epochs = split_quick_look(look.name)[1]
            click.echo(f"    quick look, {epochs} epochs: {look.name}: {len(rows)} trials")


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
@epochs_option("Show")
@debug_option
def show(name: str, results: Path, metric: str | None, top: int, epochs: int | None) -> None:
    """Trials by status and the best configurations (mean ± std over seeds and folds).

    Ranked by the validation objective (choosing by the test split would flatter it), over
    the search rows; rows of `nnsweep confirm` are in the report.
    """
    from nnsweep.report.stats import held_out_column, rank_configurations, ranked_rows, summarize
    from nnsweep.run.quick_look import folder_name
    from nnsweep.store.kept import kept_models
    from nnsweep.store.results import load_results, load_sweep_json, results_dir_for

    name = folder_name(name, epochs)
    df = load_results(name, results)
    folder = results_dir_for(name, results)
    info = load_sweep_json(folder) if (folder / "sweep.json").exists() else {}
    # Ranked before anything is printed: a bad --metric is one line, the error.
    ranking = rank_configurations(df, info, metric=metric)  # what best and report choose
    counts = df["status"].value_counts().to_dict()
    click.echo(
        f"{info.get('name', name)}: {len(df)} trials ("
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + ")"
    )
    if info.get("description"):
        click.echo(info["description"].splitlines()[0])
    metric, direction, swept = ranking.metric, ranking.direction, ranking.by
    table = ranking.table[ranking.table["n"] > 0]
    if table.empty:
        click.echo("no successful trials yet")
    else:
        columns = ["config_id", *swept, "n", "mean", "std", "ci_low", "ci_high"]
        table = table[[c for c in columns if c in table]].head(top)
        shown = _shown(table, metric)
        test_metric = held_out_column(metric, df, info)
        if test_metric is not None:  # a check on the choice, never the chooser
            test = summarize(ranked_rows(df), test_metric, by=[])
            test = test.set_index("config_id").reindex(table["config_id"])
            shown.insert(len(shown.columns) - 1, test_metric, _pm(test))
        kept = kept_models(folder)
        if kept:  # which configurations `best --export` and load_model serve without training
            shown["kept"] = [len(kept.get(str(c), {})) for c in table["config_id"]]
        better = "lower" if direction == "min" else "higher"
        click.echo(
            f"\nbest configurations by {metric} ({better} is better), "
            "mean ± std over seeds and folds:"
        )
        click.echo(shown.to_string(index=False))
    _print_kept(name, folder)
    from nnsweep.report.pruned import pruned_account

    stopped = pruned_account(df, swept, info)
    if stopped is not None:
        click.echo("")
        for line in stopped.text:
            click.echo(line)
    bad = df[~df["status"].isin(["ok", "pruned"])]
    if len(bad):
        click.echo(f"\n{len(bad)} trials did not finish ok:")
        for _, r in bad.head(20).iterrows():
            click.echo(f"  {r['trial_id']} {r['status']}: {r['error']}")


def _print_kept(name: str, folder: Path) -> None:
    """Which configurations have kept models, and what they take on disk."""
    from nnsweep.store.kept import kept_totals, models_dir, plural, size_text

    kept, files, size = kept_totals(folder)
    if not kept:
        return
    configs = plural(len(kept), "configuration")
    click.echo(
        f"\nkept models: {files} files of {configs} ({size_text(size)}) in {models_dir(folder)} "
        f"(column kept); `nnsweep best {name} --export PATH.keras` exports the best one "
        "without training"
    )


def _pm(table: Any) -> list[str]:
    """``mean ± std`` per row of a summary (the mean alone for a single run)."""
    return [
        f"{m:.4f} ± {s:.4f}" if s == s else f"{m:.4f}"
        for m, s in zip(table["mean"], table["std"], strict=True)
    ]


def _integral(value: Any) -> bool:
    return isinstance(value, float) and value.is_integer()


def _shown(table: Any, metric: str) -> Any:
    """A summary as ``show`` prints it: the swept values, the metric, the run count."""
    shown = table.drop(columns=["config_id"])
    for column in shown.columns[:-5]:  # a swept value of None reads back from the CSV as NaN
        if shown[column].isna().any():  # and its integers became floats beside it
            values = shown[column].astype(object).where(shown[column].notna(), "None")
            shown[column] = values.map(lambda v: int(v) if _integral(v) else v)
    shown.insert(len(shown.columns) - 5, metric, _pm(table))
    return shown.drop(columns=["mean", "std", "ci_low", "ci_high"])


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
@epochs_option("Report on")
@debug_option
def report(
    names: tuple[str, ...],
    results: Path,
    metric: str | None,
    fmt: str,
    open_: bool,
    epochs: int | None,
) -> None:
    """Figures, statistics over seeds and an HTML report for each sweep NAME (default: all).

    Writes results/<name>/report/index.html with one figure file per figure beside it, and
    prints the summary table. Naming two or more sweeps also writes one figure that overlays
    them under results/_compare/. Reads the CSVs only: no Keras or TensorFlow.
    """
    from nnsweep.report import check_report, write_comparison, write_report
    from nnsweep.run.quick_look import folder_name
    from nnsweep.store.results import list_result_dirs

    names = tuple(folder_name(n, epochs) for n in names)
    _check_distinct(names, results)
    targets = list(names) or [p.name for p in list_result_dirs(results)]
    if not targets:
        raise errors.ResultsError(f"no sweep results under {results}/; run a sweep first")
    if len(targets) > 1:  # a sweep that cannot be reported on fails before any is written
        for name in targets:
            check_report(name, results=results, metric=metric)
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


def _check_distinct(names: tuple[str, ...], results: Path) -> None:
    """Refuse a sweep named twice (by name or by folder): an overlay of it with itself."""
    from nnsweep.store.results import results_dir_for

    seen: dict[Path, str] = {}
    for name in names:
        folder = results_dir_for(name, results).resolve()
        if folder in seen:
            raise click.UsageError(f"{seen[folder]!r} and {name!r} name the same sweep ({folder})")
        seen[folder] = name


@cli.command("tensorboard")
@click.argument("name")
@results_option
@epochs_option("Write the logs of")
@debug_option
def tensorboard_(name: str, results: Path, epochs: int | None) -> None:
    """Write TensorBoard logs of sweep NAME from its trials.csv and history.csv.

    For sweeps run without --tensorboard: one run per trial under
    results/<name>/tensorboard/ (hyperparameters with seed and fold, every epoch's
    metrics, test metrics), the sweep's domains for the HParams dashboard. Running it again
    rewrites them: no point twice. Reads the CSVs only: no Keras or TensorFlow.
    """
    from nnsweep.report._page import _folder
    from nnsweep.run.quick_look import folder_name
    from nnsweep.tensorboard import write_logs

    folder, n = write_logs(_folder(folder_name(name, epochs), results))
    click.echo(f"wrote {n} trials' runs to {folder}")
    click.echo(f"see them: tensorboard --logdir {shlex.quote(str(folder))}")


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
