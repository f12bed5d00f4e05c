#!/usr/bin/env bash
# One prepared check for a lent GPU machine; it ends itself within BUDGET_S (default 330 s, so that
# it fits twice into 15 minutes of device time with the machine's start-up and the copying):
#   1. training-step times side by side: static-shapes RNN-EM (B=64, K=4, T=15) on vulkan and wgpu,
#      EMORL Tetrominoes (B=32, I=3, GECO form from step 1001) on vulkan, and the PyTorch
#      references on CUDA (REF_DEVICE=cuda) for both;
#   2. the default experiment end to end on vulkan;
#   3. EMORL Tetrominoes training on vulkan for the time left, scored (FG-ARI, MSE, KL) at the end.
# It writes OUT_DIR/summary.json (and a log per command beside it).
# Usage: scripts/gpu_check.sh GESTALT REF_DIR OUT_DIR [BUDGET_S]
#   GESTALT: a stripped release build of gestalt (`--features vulkan`), or it gzipped (`.gz`: the
#   stripped binary is ~90 MB, over the 64 MiB a device call carries); REF_DIR: a copy of the PyTorch references
#   (shared/bench, not part of the repository). The Vulkan loader, if the machine lacks it, comes
#   as Debian packages in ./.gl (see the README's GPU section).
set -uo pipefail
g=$(realpath "$1"); ref=$(realpath "$2"); out=$3; budget=${4:-330}
if [[ $g == *.gz ]]; then gunzip -c "$g" > /tmp/gestalt && chmod +x /tmp/gestalt && g=/tmp/gestalt; fi
mkdir -p "$out"; out=$(realpath "$out")
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
if ! ldconfig -p | grep -q 'libvulkan.so.1' && [ -d .gl ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
  echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
} > "$out/machine.txt"

data=$out/data
run() {  # NAME LIMIT_S CMD...: the command's last stdout line, or null, into $out/NAME.json
  local name=$1 lim=$2; shift 2
  local t0; t0=$(date +%s.%N)
  local line; line=$(timeout "$lim" "$@" 2>"$out/$name.log" | tail -n 1); local rc=$?
  [ -n "$line" ] || line=null
  echo "{\"rc\":$rc,\"wall_s\":$(python3 -c "print(round($(date +%s.%N) - $t0, 1))"),\"last_line\":$(python3 -c 'import json,sys; l=sys.argv[1]
try: print(json.dumps(json.loads(l)))
except Exception: print(json.dumps(l))' "$line")}" > "$out/$name.json"
}
static=(with dataset.shapes network.shapes nem.k=4 nem.nr_steps=15 training.batch_size=64 --steps 10)
emorl=(with train/tetrominoes/EMORL training.batch_size=32 dataset.sizes.train=4000 dataset.sizes.test=320
       "dataset.data_path=$data" --steps 6 --start-step 1001)
"$g" generate with dataset.shapes > /dev/null 2>&1
"$g" generate "${emorl[@]:0:6}" > /dev/null 2>&1

run static_vulkan 45 "$g" bench "${static[@]}" --backend vulkan
run static_wgpu 45 "$g" bench "${static[@]}" --backend wgpu
run static_torch_cuda 40 env REF_DEVICE=cuda python3 "$ref/ref_static_rnnem.py" 64 4 15 10
run emorl_vulkan 60 "$g" bench "${emorl[@]}" --backend vulkan
run emorl_torch_cuda 45 env REF_DEVICE=cuda python3 "$ref/ref_emorl.py" bench --config tetrominoes --batch 32 --steps 5 --warmup 2
run default_vulkan 70 "$g" train --backend vulkan --out "$out/default_vulkan" --quiet

# EMORL for what is left (30 s kept for its test scores), sized by the bench's step time; the
# learning-rate warm-up is a fifth of the run.
step_ms=$(python3 -c "import json; r=json.load(open('$out/emorl_vulkan.json'))['last_line']; print(r['median_step_ms'] if isinstance(r, dict) else '')" 2>/dev/null)
if [ -n "$step_ms" ] && [ "$(left)" -gt 60 ]; then
  iters=$(python3 -c "print(max(50, int(($(left) - 40) * 1000 / $step_ms / 1.15)))")
  run emorl_train_vulkan $(($(left) - 5)) "$g" train "${emorl[@]:0:6}" "training.iters=$iters" \
    "training.warmup=$((iters / 5))" "training.checkpoint_freq=$((iters + 2))" training.validation_images=0 \
    training.tqdm=false --backend vulkan --out "$out/emorl_train_vulkan" --quiet
fi
rm -rf "$out"/*/checkpoints "$data"
python3 - "$out" "$budget" <<'EOF'
import json, pathlib, sys, re
out = pathlib.Path(sys.argv[1])
s = {"machine": (out / "machine.txt").read_text().strip().splitlines(), "budget_s": int(sys.argv[2])}
for f in sorted(out.glob("*.json")):
    if f.name == "summary.json":
        continue
    r = json.loads(f.read_text())
    line = r["last_line"]
    if isinstance(line, str):  # a reference's RESULT line
        m = re.search(r"median_ms=([0-9.]+)", line)
        r["median_step_ms"] = float(m.group(1)) if m else None
    elif isinstance(line, dict):
        r["median_step_ms"] = line.get("median_step_ms")
    s[f.stem] = r
for work in ("static", "emorl"):
    t = (s.get(f"{work}_torch_cuda") or {}).get("median_step_ms")
    for b in ("vulkan", "wgpu"):
        m = (s.get(f"{work}_{b}") or {}).get("median_step_ms")
        if m and t:
            s[f"ratio_{work}_{b}_vs_torch_cuda"] = round(m / t, 2)
(out / "summary.json").write_text(json.dumps(s, indent=1))
print(json.dumps({k: v for k, v in s.items() if k.startswith("ratio")}))
EOF
