"""Where a sweep's time goes, part by part, beside the arithmetic floor of each part.

Each case of ``sweep_speed.py`` runs in a fresh process through ``run_sweep``, with timers
around the pack engine's parts (building a pack's variables, its first training epoch,
which traces the step, its later epochs, validation, the test pass, the best-weights
snapshots, compaction) and around loading the data; what ``run_sweep`` spends outside
them (planning, rows, the store, progress) is the rest. Training, validation and test are
printed beside their floors (``sweep_speed.floor_seconds``, at the matmul and convolution
rates measured in the same run), and the whole process beside a process that only imports
TensorFlow. Trace time is the first epoch less a later one, where a pack has later epochs.

``arch-mix-masks`` is ``arch-mix`` with its dropout values swapped for two initializers:
the same shapes and arithmetic without dropout masks, so the two cases' training times
price the masks.

    NNSWEEP_DATA_DIR=../shared/datasets python benchmarks/time_parts.py [--cases ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sweep_speed as speed  # noqa: E402

CASES = dict(speed.CASES)
CASES["arch-mix-masks"] = {
    **speed.CASES["arch-mix"],
    "swept": {
        "hidden_units": [64, 256],
        "depth": [1, 2],
        "kernel_initializer": ["glorot_uniform", "he_uniform"],
    },
}
DEFAULT_CASES = ["hidden-units", "arch-mix", "arch-mix-masks", "training", "early-stop", "cnn"]
PARTS = (
    "data",
    "build",
    "train, first epoch",
    "train, later epochs",
    "validate",
    "test",
    "snapshots",
    "compaction",
)


def _timed(parts: dict, name, method, first: set | None = None):
    """``method`` with its seconds added to ``parts[name]`` (``name(self)`` when callable)."""

    def wrapper(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            parts[name(self) if callable(name) else name] += time.perf_counter() - t0

    return wrapper


def child(case: dict) -> dict:
    t0 = time.perf_counter()
    speed._quiet_keras()
    imported = time.perf_counter() - t0
    import nnsweep.data
    from nnsweep import run_sweep
    from nnsweep.training import _engine

    parts: dict[str, float] = defaultdict(float)
    epochs: dict[int, int] = defaultdict(int)
    first_epochs: list[float] = []
    later_epochs: list[float] = []
    Pack = _engine.Pack
    train_epoch = Pack._train_epoch

    def epoch(self, *args, **kwargs):
        t = time.perf_counter()
        out = train_epoch(self, *args, **kwargs)
        seconds = time.perf_counter() - t
        # A compaction traces new functions: the epoch after it is a first one again.
        key = (id(self), self.compactions)
        (later_epochs if epochs[key] else first_epochs).append(seconds)
        parts["train, later epochs" if epochs[key] else "train, first epoch"] += seconds
        epochs[key] += 1
        return out

    Pack._train_epoch = epoch
    Pack.__init__ = _timed(parts, "build", Pack.__init__)
    Pack.load = _timed(parts, "build", Pack.load)
    in_test = [False]
    test = Pack._test

    def tested(self, *args, **kwargs):
        in_test[0] = True
        try:
            return test(self, *args, **kwargs)
        finally:
            in_test[0] = False

    Pack._evaluate = _timed(parts, lambda _: "test" if in_test[0] else "validate", Pack._evaluate)
    Pack._test = tested
    Pack._snapshot = _timed(parts, "snapshots", Pack._snapshot)
    Pack._compact = _timed(parts, "compaction", Pack._compact)
    load = nnsweep.data.load_dataset

    def load_timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return load(*args, **kwargs)
        finally:
            parts["data"] += time.perf_counter() - t

    nnsweep.data.load_dataset = load_timed
    sweep = speed.case_sweep(case)
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        summary = run_sweep(sweep, results=tmp)
        total = time.perf_counter() - t1
    ran: dict[str, list[int]] = {}
    for row in summary.rows:
        config = {**speed.DEFAULTS, **case["fixed"], **{k: row[k] for k in case["swept"]}}
        ran.setdefault(speed._label(config, case), []).append(int(row["epochs_run"]))
    trace = None
    if later_epochs:
        trace = sum(first_epochs) - len(first_epochs) * sum(later_epochs) / len(later_epochs)
    return {
        "imported": imported,
        "total": total,
        "parts": dict(parts),
        "epochs": ran,
        "trace": trace,
        "packs": len(first_epochs),
    }


def _spawn(name: str, cfg: dict) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", name, json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "process": time.perf_counter() - t0}


def _report(name: str, case: dict, rates: dict) -> None:
    r = _spawn("parts", {"case": case})
    conv = {}
    if case.get("model") == "cnn":
        conv = speed._spawn("conv-rate", {"shapes": speed.conv_shapes(case)})["gflops"]
    floors = {
        part: speed.floor_seconds(case, r["epochs"], rates["matmul"], conv, parts=(part,))
        for part in ("train", "val", "test")
    }
    floor = sum(floors.values())
    p = r["parts"]
    train = p.get("train, first epoch", 0.0) + p.get("train, later epochs", 0.0)
    data = p.get("data", 0.0)
    engine = sum(p.get(k, 0.0) for k in PARTS) - data
    start = r["process"] - r["total"] - r["imported"]
    whole = r["process"] / (floor + rates["import"])
    print(f"\n{name}: {r['process']:.1f} s as a whole process, {whole:.2f}x its floor "
          f"({floor:.1f} s of arithmetic + the {rates['import']:.1f} s import); "
          f"{r['packs']} layouts trained (a pack, or one after a compaction)")  # fmt: skip
    rows = [
        ("python, TensorFlow's import, exit", r["imported"] + start, rates["import"]),
        ("data", data, None),
        ("build (variables, initial weights)", p.get("build", 0.0), None),
        ("train", train, floors["train"]),
        ("  of it, first epochs (tracing)", p.get("train, first epoch", 0.0), None),
        ("  of it, later epochs", p.get("train, later epochs", 0.0), None),
        ("validate", p.get("validate", 0.0), floors["val"]),
        ("test", p.get("test", 0.0), floors["test"]),
        ("snapshots (best weights)", p.get("snapshots", 0.0), None),
        ("compaction", p.get("compaction", 0.0), None),
        ("rest of run_sweep (planning, rows, store)", r["total"] - engine - data, None),
    ]
    for label, seconds, floor_part in rows:
        share = f"{seconds / r['process']:5.1%}"
        vs = f"  floor {floor_part:6.1f} s ({seconds / floor_part:.2f}x)" if floor_part else ""
        print(f"  {label:<44} {seconds:7.1f} s  {share}{vs}")
    if r["trace"] is not None:
        print(f"  tracing, estimated (first epochs less later ones): {r['trace']:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", choices=list(CASES), help=f"default: {DEFAULT_CASES}")
    parser.add_argument("--quick", action="store_true", help="1 epoch, fewer values: a smoke run")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child[1])["case"])))
        return
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; python {sys.version.split()[0]}")
    matmul = speed._spawn("matmul", {})["gflops"]
    imported = min(speed._spawn("import", {})["process"] for _ in range(2))
    print(f"float32 matmul {matmul:.1f} GFLOP/s; importing TensorFlow alone {imported:.1f} s")
    rates = {"matmul": matmul, "import": imported}
    for name in args.cases or DEFAULT_CASES:
        case = speed._quick(CASES[name]) if args.quick else CASES[name]
        _report(name, case, rates)


if __name__ == "__main__":
    main()
