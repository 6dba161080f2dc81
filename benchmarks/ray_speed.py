"""What does Ray cost, and what does it give on one machine? Local runs beside --ray runs.

Each case runs as whole processes, one after the other:
  search     sweeps/search_random.py (digits: 20 configurations x 3 seeds, 10 epochs),
             locally (one pack at a time) and with --ray --ray-cpus 1 (two one-CPU packs
             in flight on this 2-core machine; the oracle is asked for two at once)
  grid       a digits grid of 8 packs (hidden units x learning rate, 2 seeds, packs of 2),
             locally and with --ray

For each: wall seconds of the whole process, and with Ray the overhead: (Ray's wall time
- local wall time / packs in flight) per pack, and Ray's start alone (``ray.init`` of a
local Ray and one empty task).

    python benchmarks/ray_speed.py [--cases search grid]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

GRID = """
from nnsweep import Sweep

sweep = Sweep(name="grid8", data="digits", model="mlp", seeds=2,
              space={"hidden_units": [16, 32, 64, 128], "learning_rate": [1e-3, 1e-2],
                     "epochs": 20, "batch_size": 32})
"""


def _run(sweep_file: Path, *flags: str) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "nnsweep", "run", str(sweep_file), "--results", tmp, *flags],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"nnsweep run {' '.join(flags)} failed:\n{proc.stderr[-3000:]}")
    summary = next(ln for ln in proc.stderr.splitlines() if ln.startswith("trained "))
    return seconds, summary


def ray_start() -> float:
    """Seconds to start a local Ray and run one empty task, in a fresh process."""
    code = (
        "import time, ray\n"
        "t = time.perf_counter()\n"
        "ray.init(address='local', num_cpus=2, include_dashboard=False, log_to_driver=False)\n"
        "@ray.remote\n"
        "def one():\n"
        "    return 1\n"
        "ray.get(one.remote())\n"
        "print(time.perf_counter() - t)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"Ray did not start:\n{proc.stderr[-2000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def case(name: str, sweep_file: Path, packs: int, extra: list[str]) -> None:
    local, said_local = _run(sweep_file, *extra)
    on_ray, said_ray = _run(sweep_file, *extra, "--ray", "--ray-cpus", "1")
    slots = min(os.cpu_count() or 1, packs)
    per_pack = (on_ray - local / slots) / packs
    print(f"\n{name}: {packs} packs")
    print(f"  local   {local:7.1f} s   {said_local}")
    print(f"  --ray   {on_ray:7.1f} s   {said_ray}")
    print(f"  local / ray = {local / on_ray:.2f}x; Ray's overhead over a perfect split into "
          f"{slots} in flight: {per_pack:.2f} s a pack")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", choices=["search", "grid"], help="default: both")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores")
    print(f"Ray's start (local Ray, one empty task): {ray_start():.1f} s")
    cases = args.cases or ["search", "grid"]
    if "search" in cases:
        case("search", REPO / "sweeps" / "search_random.py", 20, [])
    if "grid" in cases:
        with tempfile.TemporaryDirectory() as tmp:
            grid = Path(tmp) / "grid8.py"
            grid.write_text(GRID)
            case("grid", grid, 8, ["--pack-size", "2"])


if __name__ == "__main__":
    main()
