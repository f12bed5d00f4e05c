#!/usr/bin/env bash
# gestalt beside the PyTorch reference steps (../shared/bench) on this machine's CPU, in one run:
# static-shapes RNN-EM (B=64, K=4, T=15), the seed-003 minimal system, and EMORL Tetrominoes
# (B=32, I=3, GECO on from step 1001). Both sides use 2 threads; gestalt runs with one model
# replica (its matrix products threaded) and with two (`--devices 2`: a thread each). Each is
# measured ROUNDS times, alternating, and the medians are compared: ratio = gestalt / torch.
# Usage: scripts/bench_cpu.sh REF_DIR [OUT_JSON] [ROUNDS]
#   PYTHON (default python3) must import torch, numpy, scikit-learn and h5py.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=$(realpath "$1"); out=${2:-results/bench/cpu.json}; rounds=${3:-3}
py=${PYTHON:-python3}
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2
cargo build --release -q
g=./target/release/gestalt
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# The data files, generated once before anything is timed.
"$g" generate with dataset.shapes >/dev/null 2>&1
"$g" generate with dataset.shapes24 >/dev/null 2>&1
"$g" generate with train/tetrominoes/EMORL dataset.sizes.train=512 dataset.sizes.test=64 \
  dataset.data_path="$tmp" >/dev/null 2>&1

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
declare -A words=(
  [static_rnnem]="dataset.shapes network.shapes nem.k=4 nem.nr_steps=15 training.batch_size=64 --steps 10"
  [minimal]="dataset.shapes24 network.minimal --steps 200"
  [emorl_tetrominoes_b32]="train/tetrominoes/EMORL training.batch_size=32 dataset.sizes.train=512 dataset.sizes.test=64 dataset.data_path=$tmp --steps 5 --start-step 1001"
)
gestalt_ms() {  # NAME DEVICES -> "median_ms peak_mib cpu_util"
  # shellcheck disable=SC2086
  line=$("$g" bench with ${words[$1]} --devices "$2" 2>/dev/null | tail -n 1)
  echo "$(echo "$line" | field median_step_ms) $(echo "$line" | field peak_rss_mib) $(echo "$line" | field cpu_util)"
}
torch_ms() {  # NAME -> "median_ms peak_mib"
  case $1 in
    static_rnnem)
      /usr/bin/time -f "%M" -o "$tmp/rss" "$py" "$ref/ref_static_rnnem.py" 64 4 15 10 2>/dev/null \
        | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' | tr '\n' ' '
      echo "$(( $(cat "$tmp/rss") / 1024 ))" ;;
    minimal)
      /usr/bin/time -f "%M" -o "$tmp/rss" "$py" "$ref/ref_minimal_nem.py" --seed 0 --epochs 5 --quiet --json "$tmp/min.json" >/dev/null 2>&1
      "$py" -c "import json; s=json.load(open('$tmp/min.json'))['summary']; print(round(s['train_s']*1000/(5*32), 3), end=' ')"
      echo "$(( $(cat "$tmp/rss") / 1024 ))" ;;
    emorl_tetrominoes_b32)
      "$py" "$ref/ref_emorl.py" bench --config tetrominoes --batch 32 --steps 5 --warmup 2 2>/dev/null \
        | sed -n 's/.*median_ms=\([0-9.]*\) peak_rss_mb=\([0-9.]*\).*/\1 \2/p' ;;
  esac
}

machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
rows=()
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
printf '%-22s %10s %10s %10s %8s %8s %8s %8s %8s\n' work torch_ms g1_ms g2_ms ratio1 ratio2 torch_MiB g1_MiB g2_MiB
for name in static_rnnem minimal emorl_tetrominoes_b32; do
  g1=(); g2=(); ts=()
  for _ in $(seq "$rounds"); do
    read -r a m1 u1 <<< "$(gestalt_ms "$name" 1)"; g1+=("$a")
    read -r a m2 u2 <<< "$(gestalt_ms "$name" 2)"; g2+=("$a")
    read -r b tm <<< "$(torch_ms "$name")"; ts+=("$b")
  done
  m_1=$(med "${g1[@]}"); m_2=$(med "${g2[@]}"); t_med=$(med "${ts[@]}")
  r1=$(awk -v a="$m_1" -v b="$t_med" 'BEGIN {printf "%.2f", a / b}')
  r2=$(awk -v a="$m_2" -v b="$t_med" 'BEGIN {printf "%.2f", a / b}')
  printf '%-22s %10s %10s %10s %8s %8s %8s %8s %8s\n' "$name" "$t_med" "$m_1" "$m_2" "$r1" "$r2" "$tm" "$m1" "$m2"
  list() { local IFS=,; echo "$*"; }
  rows+=("{\"work\":\"$name\",\"torch_ms\":$t_med,\"gestalt_1_device_ms\":$m_1,\"gestalt_2_devices_ms\":$m_2,\"ratio_1_device\":$r1,\"ratio_2_devices\":$r2,\"torch_runs_ms\":[$(list "${ts[@]}")],\"gestalt_1_device_runs_ms\":[$(list "${g1[@]}")],\"gestalt_2_devices_runs_ms\":[$(list "${g2[@]}")],\"torch_peak_rss_mib\":$tm,\"gestalt_1_device_peak_rss_mib\":$m1,\"gestalt_2_devices_peak_rss_mib\":$m2,\"gestalt_1_device_cpu_util\":$u1,\"gestalt_2_devices_cpu_util\":$u2}")
done
mkdir -p "$(dirname "$out")"
torch_v=$("$py" -c 'import torch; print(torch.__version__)')
{
  echo "{\"machine\":\"$machine\",\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\",\"torch\":\"$torch_v\",\"threads\":2,"
  echo "\"command\":\"scripts/bench_cpu.sh REF_DIR $out $rounds\",\"gestalt_commit\":\"$(git rev-parse --short HEAD)\","
  echo "\"rows\":[$(IFS=,; echo "${rows[*]}")]}"
} | "$py" -m json.tool > "$out.tmp" && mv "$out.tmp" "$out"
echo "written $out"
