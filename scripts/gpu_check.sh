#!/usr/bin/env bash
# GPU measurements behind results/gpu: training-step times on wgpu for the default RNN-EM and for
# EMORL at the paper's batch (32), flex on the same host's cores beside them, the default
# experiment end to end on wgpu, then EMORL training on wgpu for the time that is left.
# Usage: scripts/gpu_check.sh GESTALT OUT_DIR [BUDGET_S]   (GESTALT: a release build of gestalt)
# Prepared for a lent GPU machine and not yet run there (no device was available when it was written).
set -uo pipefail
g=$(realpath "$1"); out=$2; budget=${3:-420}
mkdir -p "$out"; out=$(realpath "$out")
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
  echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
} | tee "$out/machine.txt"

bench() {  # NAME LIMIT_S ARGS...: one `gestalt bench` line into bench.jsonl
  local name=$1 lim=$2; shift 2
  local t0=$(date +%s.%N)
  line=$(timeout "$lim" "$g" bench "$@" --quiet 2>"$out/$name.err" | tail -n 1); rc=$?
  echo "{\"name\":\"$name\",\"rc\":$rc,\"wall_s\":$(echo "$(date +%s.%N) - $t0" | bc),\"result\":${line:-null}}" | tee -a "$out/bench.jsonl"
}

# Tetrominoes: 60,000 training images, as the original; written once, on the host's cores.
t0=$(date +%s); "$g" generate with train/tetrominoes/EMORL > "$out/generate.txt" 2>&1
echo "generate tetrominoes: rc=$? $(( $(date +%s) - t0 )) s" | tee -a "$out/machine.txt"

bench default_wgpu 120 --backend wgpu --steps 20
bench default_flex 60 --backend flex --steps 20
bench emorl32_wgpu 180 with train/tetrominoes/EMORL --backend wgpu --steps 6
bench emorl32_flex 120 with train/tetrominoes/EMORL --backend flex --steps 2

t0=$(date +%s)
timeout 150 "$g" train --backend wgpu --out "$out/default_wgpu" --quiet 2>"$out/default_wgpu.err" | tail -n 1 > "$out/default_wgpu.json"
echo "default on wgpu: rc=${PIPESTATUS[0]} $(( $(date +%s) - t0 )) s $(cat "$out/default_wgpu.json")"

# EMORL on wgpu for what is left (60 s kept for the test evaluation), sized by the bench's step;
# the learning-rate warm-up is a fifth of the run (the original's 10,000 steps outlast it).
step_ms=$(python3 -c "import json,sys
for l in open('$out/bench.jsonl'):
    d=json.loads(l)
    if d['name']=='emorl32_wgpu' and d['result']: print(d['result']['median_step_ms'])")
if [ -n "$step_ms" ] && [ "$(left)" -gt 120 ]; then
  iters=$(python3 -c "print(max(100, int(($(left) - 60) * 1000 / $step_ms)))")
  t0=$(date +%s)
  timeout $(($(left) - 5)) "$g" train with train/tetrominoes/EMORL training.iters="$iters" training.warmup=$((iters / 5)) \
    training.checkpoint_freq=$((iters / 4 + 1)) training.validation_images=64 --backend wgpu \
    --out "$out/emorl_wgpu" --quiet 2>"$out/emorl_wgpu.err" | tail -n 1 > "$out/emorl_wgpu.json"
  echo "emorl on wgpu: iters=$iters rc=${PIPESTATUS[0]} $(( $(date +%s) - t0 )) s $(cat "$out/emorl_wgpu.json")"
fi
rm -rf "$out"/*/checkpoints
