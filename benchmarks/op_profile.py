"""Where one training epoch's time goes, operation by operation (TensorFlow's profiler).

Each case of ``sweep_speed.py`` runs in a fresh process through ``run_sweep`` (which also
traces the pack's step); then one more training epoch of its first pack, every unit
active, runs under ``tf.profiler``. Its operations' busy time is added up by what they do:
the matrix products of the first layer (data times kernels) and of the later layers,
convolutions and pooling (CNNs), the
optimizer's fused updates, variable writes (gradients added up for batches of several
micro-batches, updates as separate operations), loss and metric, the inputs, the rest;
beside the epoch's wall time, its arithmetic floor (``sweep_speed.floor_seconds`` at the
matmul rate measured in the same run) and the cost per unit and micro-batch step. Busy
time is summed over TensorFlow's threads, so it can exceed the wall time; idle is the
threads' time outside TensorFlow's operations, which includes the XLA-compiled functions
(the CNNs' dropout masks and first pool): the profiler does not list them.

    NNSWEEP_DATA_DIR=../shared/datasets python benchmarks/op_profile.py [--cases ...]

Uses TensorFlow's profiler plugin (``tensorflow.python.profiler.internal``), a private
module: a TensorFlow release that moves it breaks this script, not nnsweep.
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sweep_speed as speed  # noqa: E402

DEFAULT_CASES = ["training", "hidden-units"]


def _kinds(pack, active) -> dict[str, str]:
    """Each matrix product of the step's loop body by name: first layer or later ones
    (its gradients named after it), read from the traced graph's shapes."""
    train, _ = pack._compiled(active)
    graph = train.get_concrete_function().graph
    loop = next(op for op in graph.get_operations() if op.type in ("While", "StatelessWhile"))
    body = graph._get_function(loop.get_attr("body").name).graph
    width = pack.data.width
    out = {}
    for op in body.get_operations():
        if "MatMul" in op.type and not op.name.startswith("gradient_tape"):
            kernel = op.inputs[1].shape
            out[op.name] = "first" if kernel.rank and kernel[-2] == width else "later"
    return out


def _category(op_type: str, name: str, kinds: dict[str, str]) -> str:
    if "Conv" in op_type:
        return "convolutions (forward and gradients)"
    if "Pool" in op_type or op_type in ("Maximum",):
        return "pooling"
    if "MatMul" in op_type:
        forward = name.split("/body/_1/", 1)[-1].removeprefix("gradient_tape/")
        forward = "/".join(forward.split("/")[:2])
        layer = kinds.get(forward, "later")
        return f"products, {'first layer' if layer == 'first' else 'later layers'}"
    if op_type.startswith("ResourceApply"):
        return "optimizer updates (fused kernels)"
    if op_type in ("AssignAddVariableOp", "AssignSubVariableOp", "AssignVariableOp"):
        return "variable writes (accumulation, separate-op updates)"
    if "Softmax" in op_type or op_type in ("ArgMax", "Equal", "Sigmoid", "ResourceScatterNdAdd"):
        return "output, loss and metric"
    if op_type in ("GatherV2", "Cast", "RealDiv"):
        return "inputs (gather, cast, scale)"
    return "elementwise and the rest"


def child(case: dict) -> dict:
    speed._quiet_keras()
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    from nnsweep import run_sweep
    from nnsweep.training import _engine

    packs = []
    run = _engine.Pack.run

    def capture(self, *args, **kwargs):
        packs.append(self)
        return run(self, *args, **kwargs)

    _engine.Pack.run = capture
    with tempfile.TemporaryDirectory() as tmp:
        run_sweep(speed.case_sweep(case), results=tmp)
    pack = packs[0]
    active = tuple(range(pack._base))  # the pack's own layout, before any compaction
    perm = np.arange(len(pack.orders))
    pack._train_epoch(0, perm, active)  # warm: the trace may have been replaced
    kinds = _kinds(pack, active)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        t0 = time.perf_counter()
        pack._train_epoch(0, perm, active)
        wall = time.perf_counter() - t0
        tf.profiler.experimental.stop()
        xplane = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[-1]
        data, _ = plugin.xspace_to_tools_data([xplane], "framework_op_stats", {})
    table = json.loads(data)
    table = table[0] if isinstance(table, list) else table
    cols = {c["id"]: i for i, c in enumerate(table["cols"])}
    seconds: Counter = Counter()
    rest: Counter = Counter()  # the rest, by operation type
    for row in table["rows"]:
        cells = [c["v"] if c else None for c in row["c"]]
        op_type, name = cells[cols["type"]], str(cells[cols["operation"]])
        micros = cells[cols["total_self_time"]]
        category = "idle" if op_type == "IDLE" else _category(op_type, name, kinds)
        seconds[category] += micros / 1e6
        if category == "elementwise and the rest":
            rest[op_type] += micros / 1e6
    configs = Counter()
    for t in pack.trials:
        config = {**speed.DEFAULTS, **case["fixed"], **{k: t.params[k] for k in case["swept"]}}
        configs[speed._label(config, case)] += 1
    return {
        "wall": wall,
        "seconds": dict(seconds),
        "rest": dict(rest.most_common(6)),
        "units": len(active),
        "trials": len(pack.trials),
        "steps": -(-len(pack.orders) // pack.micro),
        "micro": pack.micro,
        "epochs": {label: [1] * n for label, n in configs.items()},
    }


def _spawn(case: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(case)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"profiling failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _report(name: str, case: dict, matmul: float) -> None:
    r = _spawn(case)
    epochs = {speed._label(c, case): [] for c in speed._configs(case)}
    epochs.update(r["epochs"])
    conv = {}
    if case.get("model") == "cnn":
        conv = speed._spawn("conv-rate", {"shapes": speed.conv_shapes(case)})["gflops"]
    floor = speed.floor_seconds(case, epochs, matmul, conv, parts=("train",))
    per_step = r["wall"] / r["steps"] / r["units"] * 1e6
    print(f"\n{name}: one epoch of its first pack ({r['trials']} trials in {r['units']} units, "
          f"{r['steps']} steps of micro-batch {r['micro']}): {r['wall']:.2f} s, floor "
          f"{floor:.2f} s ({r['wall'] / floor:.2f}x); {per_step:.0f} us/unit/step")  # fmt: skip
    seconds = dict(r["seconds"])
    idle = seconds.pop("idle", 0.0)
    busy = sum(seconds.values())
    for category, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {category:<54} {s:6.2f} s  {s / busy:5.1%} of busy time")
    print(f"  busy {busy:.2f} s, idle {idle:.2f} s (summed over TensorFlow's threads; idle "
          "includes XLA-compiled functions)")  # fmt: skip
    top = ", ".join(f"{op} {s:.2f} s" for op, s in r["rest"].items())
    print(f"  the rest's largest operation types: {top}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [n for n in speed.CASES if not speed.CASES[n].get("branches")]
    parser.add_argument("--cases", nargs="*", choices=names, help=f"default: {DEFAULT_CASES}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; python {sys.version.split()[0]}")
    matmul = speed._spawn("matmul", {})["gflops"]
    print(f"float32 matmul {matmul:.1f} GFLOP/s")
    for name in args.cases or DEFAULT_CASES:
        _report(name, speed.CASES[name], matmul)


if __name__ == "__main__":
    main()
