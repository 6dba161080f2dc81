"""The ``nnsweep`` console script: Ctrl-C while the command line loads exits quietly."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from nnsweep.cli import main as cli_main
    except KeyboardInterrupt:
        # The same words and exit code as an interrupt once the command runs.
        sys.stderr.write("\ninterrupted\n")
        sys.exit(130)
    cli_main()
