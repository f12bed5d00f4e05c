#!/usr/bin/env bash
# results/flying_shapes: the seed's flying-shapes command (RNN-EM, K = 3, 3 shapes, 20 steps) on a
# generated set, for as long as a CPU allows, then the test split's AMI per frame.
# Usage: scripts/flying_shapes.sh [EPOCHS] [TRAIN_SIZE] [DEVICES]   (defaults: 8 1024 2)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs="${1:-8}"; train="${2:-1024}"; devices="${3:-2}"
res="results/flying_shapes"; out="$res/run"
rm -rf "$out"; mkdir -p "$res"
cargo build --release -q
g=./target/release/gestalt
words=(nem.sequential dataset.flying_shapes network.flying_shapes nem.k=3 nem.nr_steps=20
       dataset.sizes.training="$train" dataset.sizes.validation=256 dataset.sizes.test=256
       dataset.path=data/flying training.max_epoch="$epochs")
start=$(date +%s)
$g train with "${words[@]}" --devices "$devices" --out "$out" --quiet > /dev/null
$g evaluate with "${words[@]}" net_path="$out" run_config.AMI=True --devices "$devices" --quiet | tail -n 1 > "$res/test.json"
end=$(date +%s)
rm -rf "$out"/checkpoints "$out"/tb "$out"/viz/frames   # weights and frames stay out of git
{
  echo "command: scripts/flying_shapes.sh $epochs $train $devices"
  echo "words: ${words[*]} --devices $devices"
  echo "wall_s: $((end - start))"
  echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
} > "$res/run.txt"
cat "$res/test.json"
