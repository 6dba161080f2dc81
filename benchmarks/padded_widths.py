"""What does padding hidden widths to shared shapes cost and save? Side by side.

Stacks pad each hidden width to a multiple of 16 (of an eighth of its power of two above
256) with units of zero weights (``nnsweep.training._units.padded_width``). This trains
each case twice in fresh processes, alternating the order: as nnsweep does, and with the
padding switched off (``padded_widths`` replaced by the identity, as the tests do). It
prints each run's wall time (after the imports), RSS growth from the first trial to the
last, and the ratios. Cases:

  widths-per-pack  digits, 25 widths 4..76 x 8 seeds, packs of 8, 2 epochs (issue 15's
                   memory case: every pack a new shape)
  random-search    digits, Keras Tuner random search over width 8..300, depth 1-2 and
                   learning rate, 60 configurations x 2 seeds, packs of 8, 1 epoch
  odd-widths       MNIST (needs NNSWEEP_DATA_DIR), widths 10, 50, 100, 200, 300, 500 x 2
                   seeds in one pack, 1 epoch: the padded arithmetic, where no trace is
                   shared
  hidden-units     MNIST, the README's sweep: 8..512 units x 3 seeds, 2 epochs (only
                   8 units pads)

    NNSWEEP_DATA_DIR=../shared/datasets python benchmarks/padded_widths.py [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

CASES = {
    "widths-per-pack": (
        "Sweep(name='b', data='digits', seeds=8, space={'hidden_units': list(range(4, 79, 3)),"
        " 'epochs': 2, 'batch_size': 64})",
        8,
    ),
    "random-search": (
        "Sweep(name='b', data='digits', seeds=2, strategy='random', max_trials=60,"
        " space={'hidden_units': Int(8, 300), 'depth': Int(1, 2), 'epochs': 1,"
        " 'batch_size': 64, 'learning_rate': Float(1e-3, 1e-2, log=True)})",
        8,
    ),
    "odd-widths": (
        "Sweep(name='b', data='mnist', seeds=2, space={'hidden_units': [10, 50, 100, 200,"
        " 300, 500], 'epochs': 1, 'batch_size': 128, 'optimizer': 'rmsprop'})",
        64,
    ),
    "hidden-units": (
        "Sweep(name='b', data='mnist', seeds=3, space={'hidden_units': [8, 16, 32, 64, 128,"
        " 256, 512], 'epochs': 2, 'batch_size': 128, 'optimizer': 'rmsprop'})",
        64,
    ),
}

CHILD = """
import sys, tempfile, time
from pathlib import Path
from nnsweep import Float, Int, Sweep, run_sweep
from nnsweep.run.runner import Progress
import tensorflow  # noqa: imported before the clock
from nnsweep.training import _engine, _stack

if sys.argv[1] == "off":
    for module in (_engine, _stack):
        module.padded_widths = lambda widths, activation: widths

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

class Memory(Progress):
    def __init__(self):
        self.rss = []
    def trial_end(self, trial, row):
        self.rss.append(rss())

memory = Memory()
t0 = time.perf_counter()
run_sweep(SWEEP, results=tempfile.mkdtemp(), pack_size=PACK, progress=memory)
print(time.perf_counter() - t0, len(memory.rss), memory.rss[0], max(memory.rss))
"""


def run(case: str, padding: str) -> tuple[float, int, float]:
    sweep, pack = CASES[case]
    code = CHILD.replace("SWEEP", sweep).replace("PACK", str(pack))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", code, padding], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    seconds, trials, first, most = float(out[0]), int(out[1]), float(out[2]), float(out[3])
    return seconds, trials, most - first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    print(time.strftime("%Y-%m-%d %H:%M"), flush=True)
    for case in args.cases:
        seen: dict[str, list[tuple[float, int, float]]] = {"on": [], "off": []}
        for r in range(args.rounds):
            for padding in ("on", "off") if r % 2 == 0 else ("off", "on"):
                seen[padding].append(run(case, padding))
        on = min(s for s, _, _ in seen["on"]), max(g for _, _, g in seen["on"])
        off = min(s for s, _, _ in seen["off"]), max(g for _, _, g in seen["off"])
        trials = seen["on"][0][1]
        print(
            f"{case:16s} {trials:4d} trials  padded {on[0]:6.1f} s +{on[1]:4.0f} MB   "
            f"own widths {off[0]:6.1f} s +{off[1]:4.0f} MB   time ratio (own/padded) "
            f"{off[0] / on[0]:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
