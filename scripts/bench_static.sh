#!/usr/bin/env bash
# Train-step times of the static-shapes systems (issue 2): RNN-EM and N-EM, B=64, K=4, T=15, on
# each backend given (default: flex ndarray wgpu). One JSON line per (system, backend).
# Usage: scripts/bench_static.sh [STEPS] [BACKEND...]
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-10}"; shift || true
backends=("${@:-flex ndarray wgpu}"); read -ra backends <<< "${backends[*]}"
cargo build --release -q
for net in network.shapes network.NEM; do
  for b in "${backends[@]}"; do
    ./target/release/gestalt bench with dataset.shapes "$net" nem.k=4 nem.nr_steps=15 noise.prob=0.1 \
      --steps "$steps" --backend "$b" 2>/dev/null | tail -n 1
  done
done
