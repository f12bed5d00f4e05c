#!/usr/bin/env bash
# The original's flying-MNIST curriculum: train on 20 distinct digits (lr 0.001), then on 500
# (lr 5e-4, warm start from stage 1's best), then on all of MNIST (hard_2, lr 5e-4, warm start
# from stage 2's best). MNIST's idx files must be in dataset.mnist_path (scripts/fetch_mnist.sh).
# Usage: scripts/flying_mnist_curriculum.sh OUT_DIR [EXTRA CONFIG WORDS…]  (e.g. training.max_epoch=5)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?output folder}"; shift
cargo build --release -q
g=./target/release/gestalt
common=(nem.sequential network.flying_mnist nem.k=2 nem.nr_steps=20 nem.loss_inter_weight=0.2)
prev=()
for stage in "medium_20_2 0.001" "medium_500_2 0.0005" "hard_2 0.0005"; do
  set -- $stage "$@"; data="$1"; lr="$2"; shift 2
  "$g" train with "${common[@]}" "dataset.flying_mnist_$data" training.params.learning_rate="$lr" \
    "${prev[@]}" "$@" --out "$out/$data" --quiet | tail -n 1
  prev=(net_path="$out/$data")
done
