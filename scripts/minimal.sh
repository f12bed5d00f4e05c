#!/usr/bin/env bash
# Reproduce results/minimal: the default experiment and the seed's network.minimal, three seeds
# each, on shapes24 (24×24, 1024 train / 128 validation / 128 test), plus the summary table.
# Usage: scripts/minimal.sh [BACKEND]   (default flex). Wall times are of this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-flex}"
cargo build --release -q
bin=./target/release/gestalt   # `cargo run --release`: the dev profile runs ~1.25× slower
machine="$(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for cfg in default minimal; do
  words=(); [ "$cfg" = minimal ] && words=(with dataset.shapes24 network.minimal)
  for seed in 0 1 2; do
    out="results/minimal/$cfg/seed$seed"
    rm -rf "$out" "data/shapes24.h5"   # time the whole job: generate, train, evaluate, draw
    start=$(date +%s.%N)
    "$bin" train "${words[@]}" --seed "$seed" --backend "$backend" --out "$out" --quiet > /dev/null
    end=$(date +%s.%N)
    rm -rf "$out/checkpoints" "$out/tb" "$out/viz/frames"   # weights and frames stay out of git
    python3 - "$out/run.json" "$cfg" "$seed" "$backend" "$start" "$end" "$machine" "${words[*]:-}" <<'PY'
import json, sys
path, cfg, seed, backend, start, end, machine, words = sys.argv[1:]
cmd = f"gestalt train {words} --seed {seed} --backend {backend}".replace("  ", " ")
json.dump({"config": cfg, "seed": int(seed), "backend": backend, "command": cmd,
           "wall_s": round(float(end) - float(start), 1), "machine": machine}, open(path, "w"), indent=1)
PY
  done
done
python3 scripts/summarize_minimal.py
