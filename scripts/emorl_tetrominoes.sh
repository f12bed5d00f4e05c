#!/usr/bin/env bash
# Reproduce results/emorl_tetrominoes: EMORL on generated Tetrominoes with the original config,
# for as many steps as a CPU run allows (batch 8, warm-up 200 steps instead of 10,000 so that a
# short run learns at all), then the test configs: FG-ARI/MSE/KL on the 320 test images and the
# sample pictures.
# Usage: scripts/emorl_tetrominoes.sh [ITERS] [BACKEND] [BATCH] [WARMUP]   (defaults: 600 flex 8 200)
set -euo pipefail
cd "$(dirname "$0")/.."
iters="${1:-600}"; backend="${2:-flex}"; batch="${3:-8}"; warmup="${4:-200}"
res="results/emorl_tetrominoes"; out="$res/run"
rm -rf "$out"; mkdir -p "$res"
cargo build --release -q
g=./target/release/gestalt
words=(train/tetrominoes/EMORL training.batch_size="$batch" training.iters="$iters" training.warmup="$warmup"
       training.checkpoint_freq=100 training.validation_images=64)
start=$(date +%s)
$g train with "${words[@]}" --backend "$backend" --out "$out" --quiet | tail -n 1 > "$res/test.json"
end=$(date +%s)
$g evaluate with test/tetrominoes/sample_viz/EMORL test.num_images_to_process=4 net_path="$out" --backend "$backend" > /dev/null
rm -rf "$out"/checkpoints "$out"/tb   # weights and events stay out of git
{
  echo "command: scripts/emorl_tetrominoes.sh $iters $backend $batch $warmup"
  echo "words: ${words[*]}"
  echo "wall_s: $((end - start))"
  echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
} > "$res/run.txt"
cat "$res/test.json"
