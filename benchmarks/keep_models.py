"""What does ``--keep-models`` cost? The same sweep with and without it, side by side.

Runs ``nnsweep run SWEEP`` into fresh results folders, alternating without and with
``--keep-models K`` (``--rounds`` times each, so drift on a shared machine hits both), and
prints each run's wall seconds, the medians, their ratio, the kept files and their bytes;
then, for the last kept run, whether the kept models' own test accuracy (Keras's
``evaluate`` in this process) equals their rows'.

    NNSWEEP_DATA_DIR=../shared/datasets python benchmarks/keep_models.py \\
        [sweeps/hidden_units.py] [--keep 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(sweep: Path, results: Path, keep: str | None) -> float:
    cmd = [sys.executable, "-m", "nnsweep", "run", str(sweep), "--results", str(results)]
    if keep is not None:
        cmd += ["--keep-models", keep]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def check(sweep_file: Path, folder: Path) -> str:
    """The kept models' test accuracy by Keras's evaluate, against their rows."""
    import keras

    from nnsweep.definition.sweep import load_sweep
    from nnsweep.run.prepare import load_data
    from nnsweep.store.kept import kept_models
    from nnsweep.store.results import load_results

    data = load_data(load_sweep(sweep_file), None)
    rows = load_results(folder).set_index("trial_id")
    worst, n = 0.0, 0
    for files in kept_models(folder).values():
        for tid, path in files.items():
            model = keras.models.load_model(path)
            got = model.evaluate(data.x_test, data.y_test, batch_size=1024, verbose=0)
            want = rows.loc[tid, ["test_loss", f"test_{data.spec.metric}"]].to_numpy(float)
            worst = max(worst, *(abs(g - w) / abs(w) for g, w in zip(got, want, strict=True)))
            n += 1
    return f"{n} kept models evaluated by Keras: worst relative difference to its row {worst:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", nargs="?", default="sweeps/hidden_units.py", type=Path)
    parser.add_argument("--keep", default="3")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for kept in (False, True):
                results = Path(tmp) / f"{'kept' if kept else 'plain'}-{i}"
                seconds = run(args.sweep, results, args.keep if kept else None)
                times[kept].append(seconds)
                label = f"--keep-models {args.keep}" if kept else "plain"
                print(f"round {i + 1}: {label:<16} {seconds:6.1f} s", flush=True)
        (folder,) = [p for p in (Path(tmp) / f"kept-{args.rounds - 1}").iterdir() if p.is_dir()]
        files = list((folder / "models").glob("*/*.keras"))
        size = sum(p.stat().st_size for p in files)
        plain, kept = statistics.median(times[False]), statistics.median(times[True])
        print(
            f"median: plain {plain:.1f} s, --keep-models {args.keep} {kept:.1f} s, "
            f"ratio {kept / plain:.3f}"
        )
        print(f"kept: {len(files)} files, {size / 1e6:.2f} MB")
        print(check(args.sweep, folder))


if __name__ == "__main__":
    main()
