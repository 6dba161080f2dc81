#!/usr/bin/env bash
# Runs the classic sweeps one after another on this machine, timing each, into
# examples/results/ (the committed example results).
# Usage: NNSWEEP_DATA_DIR=../shared/datasets bash benchmarks/classic_sweeps.sh [SWEEP ...]
# (default: the MNIST and Boston sweeps; IMDB and Reuters need Keras's download.)
set -uo pipefail
cd "$(dirname "$0")/.."
sweeps=("$@")
[ ${#sweeps[@]} -gt 0 ] || sweeps=(hidden_units depth optimizers batch_lr dropout boston_housing cnn_vs_mlp)
for entry in "${sweeps[@]}"; do
    read -r name extra <<<"$entry"
    start=$(date +%s)
    nnsweep run "sweeps/$name.py" --results examples/results $extra 2>&1 | tail -n 3
    echo "== $name ${extra:-}: $(( $(date +%s) - start )) s"
done
