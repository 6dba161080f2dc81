"""What a sweep is: the ``Sweep`` and its validation, the search-space values, the
built-in hyperparameters, and the rules a sweep carries (adaptive seeds, pruning).

Importing this package imports nothing heavy; each module loads on first use.
"""
