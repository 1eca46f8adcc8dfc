#!/usr/bin/env bash
# Train the learned methods round-robin on a machine without a GPU, to equal budgets of images
# seen, shipping after every chunk when the model beats the shipped one on the fixed validation
# photos, so a session that ends at any time leaves every method with its best checkpoint in
# results/checkpoints. Runs resume exactly from results/runs/<run>/checkpoint.* (the data stream
# is a pure function of images seen). Run checkpoints are too big to commit, so after every chunk
# they are also kept outside the work tree ($TRAIN_STATE_DIR, default
# ~/.cache/colorization-workbench/runs), and restored from there when a new checkout lacks them;
# failing both, from the run's committed resume.<ext> (its latest weights, float16, written after
# every checkpoint and committed with the logs), else from the shipped checkpoint when it came from
# this run (weights and images seen restored, the optimiser state starts afresh in both cases).
#   nohup bash experiments/scripts/train_rounds.sh > results/runs/train_rounds.log 2>&1 &
# PLAN lists method:chunk pairs (images added per round; a method stops at its config's budget),
# e.g. PLAN="classification:20000 gan:20000". CONFIG_<method> overrides the config file.
# SHIP=0 trains without shipping (e.g. while the committed tables are being computed from the
# shipped checkpoints); the next run with shipping on ships the run if it is better.
set -uo pipefail
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export OMP_WAIT_POLICY=PASSIVE   # OpenMP workers sleep instead of spinning on a shared CPU
rounds=${ROUNDS:-100}
plan=${PLAN:-"classification:20000 gan:20000 fusion:20000 regression:20000"}
NICE=${NICE:-5}
state_dir=${TRAIN_STATE_DIR:-$HOME/.cache/colorization-workbench/runs}
run_of() {  # run folder named in the config ([train] run = "..."), else the method name
  local r
  r=$(sed -n 's/^run *= *"\(.*\)"/\1/p' "$1" | head -n1)
  echo "${r:-$2}"
}
for r in $(seq 1 "$rounds"); do
  left=0
  for item in $plan; do
    m=${item%%:*}
    chunk=${item##*:}
    var="CONFIG_$m"
    cfg=${!var:-experiments/configs/$m.toml}
    run=$(run_of "$cfg" "$m")
    budget=$(sed -n 's/^images *= *\([0-9]*\)/\1/p' "$cfg" | head -n1)
    ext=.pt; [ "$m" = regression ] && ext=.keras
    init=()
    if [ ! -f "results/runs/$run/checkpoint$ext" ] && [ -f "$state_dir/$run/checkpoint$ext" ]; then
      mkdir -p "results/runs/$run" && cp "$state_dir/$run/checkpoint$ext" "$state_dir/$run/checkpoint.json" "results/runs/$run/"
      [ -f "$state_dir/$run/best.json" ] && cp "$state_dir/$run/best$ext" "$state_dir/$run/best.json" "results/runs/$run/"
      echo "[$(date -u +%H:%M:%S)] $m: restored the run checkpoint from $state_dir/$run"
    fi
    if [ ! -f "results/runs/$run/checkpoint$ext" ] && [ -f "results/runs/$run/resume$ext" ] && [ -f "results/runs/$run/resume.json" ]; then
      init=(--init-from "results/runs/$run/resume$ext")
      cp "results/runs/$run/resume.json" "results/runs/$run/checkpoint.json"
      echo "[$(date -u +%H:%M:%S)] $m: no run checkpoint; continuing from the committed resume weights (optimiser state afresh)"
    fi
    if [ ! -f "results/runs/$run/checkpoint$ext" ] && [ ${#init[@]} = 0 ] && grep -q "\"shipped_from\": \"results/runs/$run\"" "results/checkpoints/$m.json" 2>/dev/null; then
      init=(--init-from "results/checkpoints/$m$ext")
      cp "results/checkpoints/$m.json" "results/runs/$run/checkpoint.json" 2>/dev/null
      echo "[$(date -u +%H:%M:%S)] $m: no run checkpoint; continuing from the shipped one (optimiser state afresh)"
    fi
    seen=$(python -c "import json,sys; print(json.load(open(sys.argv[1])).get('images_seen', 0))" "results/runs/$run/checkpoint.json" 2>/dev/null || echo 0)
    [[ "$seen" =~ ^[0-9]+$ ]] || seen=0
    if [ -n "$budget" ] && [ "$seen" -ge "$budget" ]; then
      echo "[$(date -u +%H:%M:%S)] $m: budget of $budget images reached"
      continue
    fi
    left=1
    target=$(( (seen / chunk + 1) * chunk ))
    [ -n "$budget" ] && [ "$target" -gt "$budget" ] && target=$budget
    echo "[$(date -u +%H:%M:%S)] round $r: $m ($run) $seen -> $target images"
    ship=(--ship-if-better); [ "${SHIP:-1}" = 0 ] && ship=()
    nice -n "$NICE" python -m experiments.train --config "$cfg" "train.images=$target" "${init[@]}" "${ship[@]}" --no-progress || echo "$m failed"
    if [ -f "results/runs/$run/checkpoint$ext" ]; then
      mkdir -p "$state_dir/$run" && cp "results/runs/$run/checkpoint$ext" "results/runs/$run/checkpoint.json" "$state_dir/$run/"
      [ -f "results/runs/$run/best.json" ] && cp "results/runs/$run/best$ext" "results/runs/$run/best.json" "$state_dir/$run/"
    fi
  done
  [ "$left" = 1 ] || { echo "every budget reached"; break; }
done
