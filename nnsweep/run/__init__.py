"""Running a sweep: the set-up, the runner and its loop (strategy -> executor -> store),
the executors (this process, Ray), confirmation on fresh seeds, and the best configuration.

Importing this package imports nothing heavy; each module loads on first use.
"""
