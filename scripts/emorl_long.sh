#!/usr/bin/env bash
# The long EMORL Tetrominoes run (issue 17): the original config (batch 32, GECO, 200k steps),
# continued in stages. Each stage resumes from results/emorl_tetrominoes/long/checkpoints/last
# (committed), trains for at most SECONDS, and keeps only `last` (model, optimiser and loop state:
# what --resume needs). A checkpoint is written, with validation FG-ARI/MSE/KL, every 50 steps.
# Usage: scripts/emorl_long.sh SECONDS [DEVICES]   (nice 19: builds on the machine go first)
# GESTALT_BIN=/path/to/gestalt runs a copy of the binary (so rebuilds during the stage are safe).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:?seconds for this stage}"; devices="${2:-2}"
run="results/emorl_tetrominoes/long"
g="${GESTALT_BIN:-./target/release/gestalt}"
[ -n "${GESTALT_BIN:-}" ] || cargo build --release -q
words=(train/tetrominoes/EMORL training.checkpoint_freq=50 training.validation_images=64)
source scripts/train_stage.sh
train_stage "$g" "$run" "$secs" "$devices" "${words[@]}"
find "$run/checkpoints" -type f ! -name last -delete
tail -n 1 "$run/stages.txt"
