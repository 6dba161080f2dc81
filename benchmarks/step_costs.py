"""What a FLOP floor leaves out: the optimizer's pass over the weights in every step.

Twelve 128-unit MNIST MLPs, one epoch, as one pack (``run_sweep``, best of ``--rounds``),
side by side in this process: Adam and SGD with a learning rate per block (the update as
separate operations), Adam and SGD at one learning rate (Adam's fused kernel), and Adam
with a learning rate per block at batch 256 (a quarter of the steps). The products are
the same in every run but the last; what differs is the update's cost per step.

    NNSWEEP_DATA_DIR=../shared/datasets python benchmarks/step_costs.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

LRS = [1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2]
CASES = {
    "adam, 6 learning rates x 2 seeds (per block)": (
        {"optimizer": "adam", "learning_rate": LRS},
        2,
    ),
    "sgd, 6 learning rates x 2 seeds (per block)": ({"optimizer": "sgd", "learning_rate": LRS}, 2),
    "adam, 1 learning rate x 12 seeds (fused)": ({"optimizer": "adam", "learning_rate": 1e-3}, 12),
    "sgd, 1 learning rate x 12 seeds": ({"optimizer": "sgd", "learning_rate": 1e-2}, 12),
    "adam, 6 learning rates x 2 seeds, batch 256": (
        {"optimizer": "adam", "learning_rate": LRS, "batch_size": 256},
        2,
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from nnsweep import Sweep, run_sweep
    from nnsweep._keras import import_keras
    from nnsweep.data import load_dataset

    import_keras()
    load_dataset("mnist")  # read once before any clock
    seconds = {}
    for name, (swept, seeds) in CASES.items():
        space = {"hidden_units": 128, "epochs": 1, "batch_size": 64, **swept}
        sweep = Sweep(name="steps", data="mnist", space=space, seeds=seeds)
        best = float("inf")
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                summary = run_sweep(sweep, results=tmp)
                best = min(best, time.perf_counter() - t0)
        seconds[name] = best
        print(f"{name:<48} {len(summary.rows)} models  {best:6.2f} s", flush=True)
    first = next(iter(seconds.values()))
    for name, s in seconds.items():
        print(f"  {name:<48} {s / first:5.2f}x the first")


if __name__ == "__main__":
    main()
