#!/usr/bin/env bash
# SQAIR's first STEPS steps with the original config (train/multi_mnist/SQAIR) for several seeds:
# the objects per frame and the bound against the step, to see whether discovery survives the
# early phase. `schedule=1` keeps the rate at 1e-5 (the original's rate for its first 400k steps)
# while `train_itr=STEPS` stops the run. Usage: scripts/sqair_early.sh STEPS "SEEDS" [OUT] [words…]
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:?steps}"; seeds="${2:-0 1 2}"; out="${3:-results/sqair_mnist/early}"; shift $(( $# < 3 ? $# : 3 ))
g="${GESTALT_BIN:-./target/release/gestalt}"
[ -n "${GESTALT_BIN:-}" ] || cargo build --release -q
[ -f data/mnist/train-images.idx3-ubyte ] || bash scripts/fetch_mnist.sh data/mnist
mkdir -p "$out"
for s in $seeds; do
  run="$out/seed_$s"
  rm -rf "$run"
  start=$(date +%s)
  "$g" train with train/multi_mnist/SQAIR seed="$s" train_itr="$steps" schedule=1 log_itr=100 \
    report_loss_every=25 eval_size_fraction=0.0256 save_itr=0 fig_itr="$steps" "$@" --out "$run" --quiet > /dev/null
  echo "seed $s: $steps steps in $(( $(date +%s) - start )) s, $(nproc) cores $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >> "$out/times.txt"
  rm -rf "$run/checkpoints"
done
python3 - "$out" $seeds <<'PY'
import json, sys
out, seeds = sys.argv[1], sys.argv[2:]
rows = {}
for s in seeds:
    for line in open(f"{out}/seed_{s}/metrics.jsonl"):
        d = json.loads(line)
        if d.get("split") == "train_running":
            rows.setdefault(d["step"], {})[s] = (d["num_steps"], d["iwae"])
with open(f"{out}/summary.md", "w") as f:
    f.write("objects per frame (running mean over 25 steps, 3-frame sequences) / IWAE per frame\n\n")
    f.write("| step | " + " | ".join(f"seed {s}" for s in seeds) + " |\n|---|" + "---|" * len(seeds) + "\n")
    for step in sorted(rows):
        f.write(f"| {step} | " + " | ".join("%.3f / %.1f" % rows[step][s] if s in rows[step] else "" for s in seeds) + " |\n")
print(open(f"{out}/summary.md").read())
PY
