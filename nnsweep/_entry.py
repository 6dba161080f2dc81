"""The ``nnsweep`` console script: Ctrl-C while the command line loads exits quietly, and
SIGTERM or SIGHUP (what Slurm, systemd and a closed terminal send) act as Ctrl-C."""

from __future__ import annotations

import signal
import sys

# Treated as Ctrl-C: a scheduler's stop request ends a run as an interrupt does (the pack in
# flight is dropped, every finished trial is kept, "interrupted", exit 130), not at once.
AS_CTRL_C = (signal.SIGTERM, signal.SIGHUP)


def main() -> None:
    for sig in AS_CTRL_C:
        signal.signal(sig, signal.default_int_handler)
    try:
        from nnsweep.cli import main as cli_main
    except KeyboardInterrupt:
        # The same words and exit code as an interrupt once the command runs.
        sys.stderr.write("\ninterrupted\n")
        sys.exit(130)
    cli_main()
