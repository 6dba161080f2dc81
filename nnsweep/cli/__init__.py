"""The ``nnsweep`` command line: the only place that prints for users and picks exit codes.

Exit codes: 0 success, 1 a sweep whose every trial failed, a chief that cannot be reached,
a regression that `diff --fail-on-regression` found (or an internal error), 2 bad input
(sweep file, data, results folder, usage), 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import click

from nnsweep import errors

# The commands register themselves with the group as their modules load.
from nnsweep.cli import best, read, train  # noqa: F401
from nnsweep.cli._options import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    _NoArgsIsHelp,
    _state,
    cli,
)

__all__ = ["cli", "main"]


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
