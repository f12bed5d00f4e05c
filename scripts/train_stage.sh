# Sourced by the staged long-run scripts: `train_stage BIN RUN SECONDS DEVICES WORDS…` trains for at
# most SECONDS (nice 19), resuming from RUN/checkpoints/last when it exists, then appends the stage
# (length, last logged step, resume, devices, machine) to RUN/stages.txt.
train_stage() {
  local g="$1" run="$2" secs="$3" devices="$4"; shift 4
  local resume=(); [ -f "$run/checkpoints/last" ] && resume=(--resume)
  mkdir -p "$run"
  local start end step
  start=$(date +%s)
  timeout --signal=INT "$secs" nice -n 19 "$g" train with "$@" --devices "$devices" --out "$run" \
    "${resume[@]}" --quiet > /dev/null || [ $? -eq 124 ]
  end=$(date +%s)
  step=$(sed -n 's/.*"step":\([0-9]*\).*/\1/p' "$run/metrics.jsonl" 2>/dev/null | tail -n 1)
  echo "$(date -u +%FT%TZ) stage of $((end - start)) s to step ${step:-?} (last logged), ${resume[*]:-fresh}, devices $devices, $(nproc) cores $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >> "$run/stages.txt"
}
