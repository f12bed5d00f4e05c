#!/usr/bin/env bash
# Reproduce results/minimal: the default experiment (its own words, nothing added) on three
# report data seeds × three training seeds, the seed's network.minimal on the same data, k-means
# on the same test images, and the summary table. The report seeds (200–202) were used for no
# choice: the default was chosen on the validation splits of seeds 100–102 (scripts/tune_minimal.sh).
# Usage: scripts/minimal.sh [BACKEND]   (default flex). Wall times are of this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-flex}"
cargo build --release -q
bin=./target/release/gestalt   # `cargo run --release`: the same binary
machine="$(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
data_seeds=(200 201 202)
for cfg in default minimal; do
  words=(); seeds=(0 1 2)
  [ "$cfg" = minimal ] && words=(with dataset.shapes24 network.minimal) && seeds=(0)
  for ds in "${data_seeds[@]}"; do
    for seed in "${seeds[@]}"; do
      out="results/minimal/$cfg/data${ds}_seed$seed"
      data="data/shapes24-$ds"
      rm -rf "$out" "$data"   # time the whole job: generate, train, evaluate, draw
      start=$(date +%s.%N)
      "$bin" train "${words[@]}" dataset.seed="$ds" dataset.path="$data" --seed "$seed" --backend "$backend" \
        --out "$out" --quiet > /dev/null
      end=$(date +%s.%N)
      rm -rf "$out/checkpoints" "$out/tb" "$out/viz/frames"   # weights and frames stay out of git
      python3 - "$out/run.json" "$cfg" "$ds" "$seed" "$backend" "$start" "$end" "$machine" "${words[*]:-}" <<'PY'
import json, sys
path, cfg, ds, seed, backend, start, end, machine, words = sys.argv[1:]
cmd = f"gestalt train {words} dataset.seed={ds} dataset.path=data/shapes24-{ds} --seed {seed} --backend {backend}"
json.dump({"config": cfg, "data_seed": int(ds), "seed": int(seed), "backend": backend,
           "command": cmd.replace("  ", " "), "wall_s": round(float(end) - float(start), 1), "machine": machine},
          open(path, "w"), indent=1)
PY
    done
  done
done
python3 scripts/kmeans_baseline.py results/minimal/kmeans_baseline.json \
  $(for ds in "${data_seeds[@]}"; do echo "data/shapes24-$ds/shapes24.h5"; done)
python3 scripts/summarize_minimal.py
