#!/usr/bin/env bash
# Reproduce results/static_shapes: RNN-EM on static shapes at the seed's config.
# Usage: scripts/static_shapes.sh [MAX_EPOCH] [BACKEND] [DEVICES]   (defaults: 500 = the paper's run, flex, 1)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs="${1:-500}"; backend="${2:-flex}"; devices="${3:-1}"
out="results/static_shapes/run"
rm -rf "$out"; mkdir -p results/static_shapes
cargo build --release -q
start=$(date +%s)
./target/release/gestalt train with dataset.shapes network.shapes nem.k=4 nem.nr_steps=15 noise.prob=0.1 \
  training.max_epoch="$epochs" --backend "$backend" --devices "$devices" --out "$out" --quiet | tail -n 1 > results/static_shapes/test.json
end=$(date +%s)
rm -rf "$out"/checkpoints "$out"/tb "$out"/viz/frames   # weights, events and frames stay out of git
{
  echo "command: scripts/static_shapes.sh $epochs $backend $devices"
  echo "wall_s: $((end - start))"
  echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
} > results/static_shapes/run.txt
cat results/static_shapes/test.json
