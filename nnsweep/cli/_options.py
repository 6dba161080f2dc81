"""What every command shares: the click group, option sets, and the debug switch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nnsweep import errors
from nnsweep.store.results import DEFAULT_RESULTS
from nnsweep.training.packing import DEFAULT_PACK_SIZE

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


class _Keep(click.ParamType):
    """A count of configurations >= 1, or ``all``."""

    name = "K|all"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from nnsweep.definition._checks import check_keep

        try:
            return check_keep(value if not isinstance(value, str) else value.strip().lower())
        except errors.SweepDefinitionError:
            self.fail(f"{value!r} is not a count of configurations >= 1 or 'all'", param, ctx)


keep_models_option = click.option(
    "--keep-models",
    type=_Keep(),
    metavar="K|all",
    help="Keep the trained models (every seed and fold, best-epoch weights) of the K best "
    "configurations so far by the validation objective, or of all, as .keras files under "
    "results/<name>/models/; `best --export` then exports one without training. Default: "
    "as the sweep says (Sweep(keep_models=...)), else none.",
)


class _Size(click.ParamType):
    """A size in bytes: 500MB, 1.5GiB, 2G, 1000000."""

    name = "SIZE"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from nnsweep.store.kept import parse_size

        if isinstance(value, int):
            return value
        size = parse_size(str(value))
        if size is None:
            self.fail(f"{value!r} is not a size (such as 500MB, 2GB or 1.5GiB)", param, ctx)
        return size


max_model_disk_option = click.option(
    "--max-model-disk",
    type=_Size(),
    help="With --keep-models: at most SIZE (500MB, 2GB) of kept models; the lowest-ranked "
    "configurations' files go first.",
)


def sweep_file_option(text: str) -> Any:
    """``--sweep FILE``, with the help of the command that takes it (each reads it for
    its own reason)."""
    return click.option(
        "--sweep", "sweep_file", type=click.Path(dir_okay=False, path_type=Path), help=text
    )


def epochs_option(what: str) -> Any:
    """``--epochs N``: the quick look ``run --epochs N`` wrote (``results/<name>-epochsN``)."""
    return click.option(
        "--epochs",
        type=click.IntRange(min=1),
        help=f"{what} the quick look `nnsweep run --epochs N` trained (results/<name>-epochsN).",
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


def _load(load_sweep: Any, path: Path) -> Any:
    """A sweep file's Sweep; TensorFlow's start-up lines stay hidden if it imports Keras."""
    from nnsweep._keras import quiet_imports

    with quiet_imports(_state["debug"]):
        return load_sweep(path)
