"""The two pool paths of a stacked CNN's first convolution, side by side on this machine.

Each case (``sweep_speed``'s MNIST CNN cases, and one of another shape: 5x5 kernels at batch
32) runs whole through ``run_sweep`` with ``NNSWEEP_CONV_POOL=strided`` (the strided
convolutions, the only path before paths were measured) and ``=maxpool`` (TensorFlow's max
pool) and unset (the path ``pool_paths`` measures here, into a fresh cache), in turn in one
process for ``--rounds``. Prints each one's median seconds, their ratios, and the path
measuring took (from the run's summary).

    NNSWEEP_DATA_DIR=../shared/datasets python benchmarks/pool_paths.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_speed import CASES, case_sweep  # noqa: E402

OTHER_SHAPE = {
    **CASES["cnn"],
    "fixed": {**CASES["cnn"]["fixed"], "kernel_size": 5, "batch_size": 32},
}
CHOICES = {"cnn": CASES["cnn"], "cnn-deep": CASES["cnn-deep"], "cnn-k5-b32": OTHER_SHAPE}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=list(CHOICES), choices=list(CHOICES))
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from nnsweep import run_sweep
    from nnsweep.training import _pool, pool_paths

    print(f"machine: {_pool.machine()}")
    cache = tempfile.mkdtemp()
    os.environ[pool_paths.CACHE_ENV] = cache  # measured afresh here, not read from before
    paths = ("strided", "maxpool", "measure")
    for name in args.cases:
        sweep = case_sweep(CHOICES[name])
        seconds: dict[str, list[float]] = {p: [] for p in paths}
        picked: list[str] = []
        for r in range(args.rounds):
            for path in paths[r % 3 :] + paths[: r % 3]:
                os.environ[pool_paths.ENV] = path
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    summary = run_sweep(sweep, results=tmp)
                    seconds[path].append(time.perf_counter() - t0)
                assert summary.fallbacks == 0 and summary.counts.get("ok") == len(summary.rows)
                if path == "measure":
                    picked = [n for n in summary.notes if n.startswith("cnn pool")]
                print(f"  {name} {path}: {seconds[path][-1]:.1f} s", flush=True)
        median = {p: statistics.median(v) for p, v in seconds.items()}
        print(
            f"{name}: strided {median['strided']:.1f} s, max pool {median['maxpool']:.1f} s, "
            f"measured {median['measure']:.1f} s (strided / max pool "
            f"{median['strided'] / median['maxpool']:.2f}, strided / measured "
            f"{median['strided'] / median['measure']:.2f}); measuring took: "
            + ("; ".join(picked) or "no pool taken first")
        )


if __name__ == "__main__":
    main()
