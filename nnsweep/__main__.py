"""``python -m nnsweep`` runs the command line."""

from nnsweep._entry import main

main()
