"""Private plotting modules behind ``nnsweep.report``.

Each figure is split in two, optuna style: ``gather_*`` turns tables into the small frame
a figure shows (vectorised pandas, testable without drawing), ``draw_*`` puts it on an
Axes, and ``caption_*`` states its finding in numbers. None imports Keras or pyplot.
"""
