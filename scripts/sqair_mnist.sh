#!/usr/bin/env bash
# SQAIR on moving multi-MNIST (issue 20): the seed's `train_multi_mnist.sh` (train/multi_mnist/SQAIR:
# batch 32, 5 particles, the 3 → 10 frame curriculum, RMSProp 1e-5 with the '4,6,10' schedule over
# 2M steps), trained in stages of at most SECONDS that resume from OUT/checkpoints/last. Validation
# (256 sequences) and a checkpoint every 250 steps; after the stage, `last` is scored on 1,000
# validation sequences of 10 frames and on 256 new sequences of 100 frames (the generalisation test).
# Usage: scripts/sqair_mnist.sh SECONDS [DEVICES] [OUT]   (nice 19; MNIST from scripts/fetch_mnist.sh)
# GESTALT_BIN=/path/to/gestalt runs a copy of the binary (so rebuilds during the stage are safe).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:?seconds for this stage}"; devices="${2:-1}"; run="${3:-results/sqair_mnist/run}"
g="${GESTALT_BIN:-./target/release/gestalt}"
[ -n "${GESTALT_BIN:-}" ] || cargo build --release -q
[ -f data/mnist/train-images.idx3-ubyte ] || bash scripts/fetch_mnist.sh data/mnist
words=(train/multi_mnist/SQAIR log_itr=250 save_itr=250 fig_itr=250 report_loss_every=50 eval_size_fraction=0.0256)
source scripts/train_stage.sh
train_stage "$g" "$run" "$secs" "$devices" "${words[@]}"
ckpt="$run/checkpoints/last"
nice -n 19 "$g" evaluate with "${words[@]}" eval_size_fraction=0.1 net_path="$ckpt" --devices "$devices" --out "$run/eval10" \
  | tail -n 1 > "$run/eval_10_frames.json"
nice -n 19 "$g" evaluate with "${words[@]}" dataset.h5_path=seq_mnist_100.h5 dataset.frames=100 \
  dataset.sizes.train=32 dataset.sizes.validation=256 eval_size_fraction=1.0 net_path="$ckpt" --devices "$devices" \
  --out "$run/eval100" | tail -n 1 > "$run/eval_100_frames.json"
find "$run/checkpoints" -type f ! -name last -delete
tail -n 1 "$run/stages.txt"
