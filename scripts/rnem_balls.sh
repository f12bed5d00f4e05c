#!/usr/bin/env bash
# results/rnem_balls: R-NEM against RNN-EM and the LSTM on generated balls4mass64 (issue 19), for
# as long as a CPU allows: each model trains EPOCHS epochs on TRAIN sequences, then the test split's
# ARI and BCE per frame, a 20-step rollout after the observed steps, and the extrapolation to
# 6–8 balls (K = 8 for the slot models), as the Relational-NEM README runs them.
# Usage: scripts/rnem_balls.sh [EPOCHS] [TRAIN] [DEVICES] [STEPS]   (defaults: 3 512 2 30)
# GESTALT_BIN=/path/to/gestalt runs a copy of the binary; RESUME=1 continues a model whose run
# still holds checkpoints/last (a stopped stage) instead of starting it afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs="${1:-3}"; train="${2:-512}"; devices="${3:-2}"; steps="${4:-30}"
res="results/rnem_balls"; mkdir -p "$res"
g="${GESTALT_BIN:-./target/release/gestalt}"
[ -n "${GESTALT_BIN:-}" ] || cargo build --release -q
common=(nem.nr_steps="$steps" training.batch_size=16 training.max_epoch="$epochs" training.log_steps=8
        dataset.sizes.training="$train" dataset.sizes.validation=64 dataset.sizes.test=128 dataset.path=data/balls)
start=$(date +%s)
for spec in "r_nem:network.r_nem nem.k=5:8" "rnn_em:network.rnn_250 nem.k=5:8" "lstm:network.lstm_250 nem.k=1:1"; do
  IFS=: read -r name model extrapolate_k <<< "$spec"
  read -r -a words <<< "$model"
  run="$res/$name"; resume=()
  if [ -n "${RESUME:-}" ] && [ -f "$run/checkpoints/last" ]; then resume=(--resume); else rm -rf "$run"; fi
  t0=$(date +%s)
  $g train with dataset.balls4mass64 "${words[@]}" "${common[@]}" --devices "$devices" --out "$run" --quiet \
     "${resume[@]}" > /dev/null
  t1=$(date +%s)
  $g rollout with dataset.balls4mass64 "${words[@]}" "${common[@]}" net_path="$run" \
     run_config.rollout_steps=20 run_config.batch_size=32 | tail -n 1 > /dev/null
  $g evaluate with dataset.balls678mass64 "${words[@]}" "${common[@]}" nem.k="$extrapolate_k" net_path="$run" \
     --devices "$devices" --out "$run/extrapolation" --quiet > /dev/null
  # Rollout GIFs on 6–8 balls (eight sequences).
  $g rollout with dataset.balls678mass64 "${words[@]}" "${common[@]}" nem.k="$extrapolate_k" net_path="$run" \
     dataset.test_size=8 run_config.rollout_steps=20 run_config.batch_size=8 --out "$run/extrapolation" | tail -n 1 > /dev/null
  echo "$name train_s $((t1 - t0)) total_s $(($(date +%s) - t0)) ${resume[*]}" >> "$res/times.txt"
  rm -rf "$run"/checkpoints "$run"/tb "$run"/viz/frames   # weights and frames stay out of git
done
end=$(date +%s)
python3 scripts/summarize_rnem.py "$res" > "$res/summary.md"
{
  echo "command: scripts/rnem_balls.sh $epochs $train $devices $steps"
  echo "words: dataset.balls4mass64 <model> ${common[*]} --devices $devices"
  echo "wall_s: $((end - start))"
  echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
} > "$res/run.txt"
cat "$res/summary.md"
