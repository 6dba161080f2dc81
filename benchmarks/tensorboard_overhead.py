"""What does ``--tensorboard`` cost? The same sweep with and without it, side by side.

Runs ``nnsweep run SWEEP`` into fresh results folders, alternating without and with
``--tensorboard`` (``--rounds`` times each, so drift on a shared machine hits both), and
prints each run's wall seconds, the medians, their ratio, and how many event files and
bytes the logs took.

    NNSWEEP_DATA_DIR=../shared/datasets python benchmarks/tensorboard_overhead.py \\
        [sweeps/hidden_units.py] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(sweep: Path, results: Path, tensorboard: bool) -> float:
    cmd = [sys.executable, "-m", "nnsweep", "run", str(sweep), "--results", str(results)]
    if tensorboard:
        cmd.append("--tensorboard")
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", nargs="?", default="sweeps/hidden_units.py", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for logged in (False, True):
                results = Path(tmp) / f"{'tb' if logged else 'plain'}-{i}"
                seconds = run(args.sweep, results, logged)
                times[logged].append(seconds)
                print(f"round {i + 1}: {'--tensorboard' if logged else 'plain        '} "
                      f"{seconds:6.1f} s", flush=True)  # fmt: skip
        logs = [p for p in Path(tmp).glob("tb-0/*/tensorboard/**/events.out.tfevents.*")]
        size = sum(p.stat().st_size for p in logs)
    plain, logged = statistics.median(times[False]), statistics.median(times[True])
    print(f"median: plain {plain:.1f} s, --tensorboard {logged:.1f} s, ratio {logged / plain:.3f}")
    print(f"logs: {len(logs)} event files, {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
