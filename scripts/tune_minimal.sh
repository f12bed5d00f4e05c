#!/usr/bin/env bash
# How the default experiment was chosen: each candidate trained on the tuning data seeds (never
# the reported ones) and scored on their VALIDATION splits only, with 1, 16 and 32 restarts.
# Usage: scripts/tune_minimal.sh [WORK_DIR]   Writes results/minimal/tuning.json.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/gestalt-tuning}"
cargo build --release -q
bin=./target/release/gestalt
seeds=(100 101 102)
declare -A cand=(
  [default]=""
  [inter_1.0]="nem.loss_inter_weight=1.0"
  [epochs_30]="training.max_epoch=30"
  [relu128_layer]='network.output=[{"name":"fc","size":128,"act":"relu"},{"name":"fc","size":576,"act":"*"}]'
)
rows="$work/rows.jsonl"; mkdir -p "$work"; : > "$rows"
for name in "${!cand[@]}"; do
  words=(); [ -n "${cand[$name]}" ] && words=("${cand[$name]}")
  for ds in "${seeds[@]}"; do
    data=(dataset.seed="$ds" dataset.path="$work/data$ds"); dir="$work/$name/data$ds"
    rm -rf "$dir"
    "$bin" train "${data[@]}" "${words[@]}" --devices 2 --seed 0 --out "$dir" --quiet > /dev/null
    for r in 1 16 32; do
      line=$("$bin" evaluate "${data[@]}" "${words[@]}" net_path="$dir" run_config.usage=validation \
        run_config.restarts="$r" --devices 2 --out "$dir/r$r" --quiet | tail -1)
      echo "{\"candidate\":\"$name\",\"data_seed\":$ds,\"restarts\":$r,\"valid\":$line}" >> "$rows"
    done
  done
done
python3 - "$rows" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
table = {}
for r in rows:
    table.setdefault(f"{r['candidate']} r{r['restarts']}", []).append(round(r["valid"]["last_AMI"], 4))
out = {"split": "validation", "data_seeds": sorted({r["data_seed"] for r in rows}), "score": "last_AMI",
       "median": {k: statistics.median(v) for k, v in sorted(table.items())}, "per_seed": table,
       "command": "scripts/tune_minimal.sh"}
open("results/minimal/tuning.json", "w").write(json.dumps(out, indent=1) + "\n")
for k, v in sorted(out["median"].items(), key=lambda kv: -kv[1]):
    print(f"{k:24s} {v:.3f} {table[k]}")
PY
