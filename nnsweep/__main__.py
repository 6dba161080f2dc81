"""``python -m nnsweep`` runs the command line."""

from nnsweep.cli import main

main()
