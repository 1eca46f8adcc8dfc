#!/usr/bin/env bash
# Train the learned methods round-robin on a machine without a GPU, shipping after every chunk,
# so a session that ends at any time leaves every method with its latest checkpoint in
# results/checkpoints. Runs resume from results/runs/<method>/checkpoint.* or, when that is
# missing (run checkpoints are not committed), from the shipped results/checkpoints/<method>.*.
#   nohup bash experiments/scripts/train_rounds.sh [ROUNDS] > results/runs/train_rounds.log 2>&1 &
# PLAN lists method:chunk pairs (steps added per round), e.g. PLAN="classification:1500 gan:1500".
set -uo pipefail
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
rounds=${1:-20}
plan=${PLAN:-"classification:1000 gan:1000 regression:1000 fusion:200"}
for r in $(seq 1 "$rounds"); do
  for item in $plan; do
    m=${item%%:*}
    chunk=${item##*:}
    done_steps=$(tail -n1 "results/runs/$m/log.csv" 2>/dev/null | cut -d, -f1)
    [[ "$done_steps" =~ ^[0-9]+$ ]] || done_steps=0
    target=$(( (done_steps / chunk + 1) * chunk ))
    ext=.pt; [ "$m" = regression ] && ext=.keras
    echo "[$(date -u +%H:%M:%S)] round $r: $m $done_steps -> $target"
    python -m experiments.train --config "experiments/configs/$m.toml" "train.steps=$target" \
      --init-from "results/checkpoints/$m$ext" --ship --no-progress || echo "$m failed"
  done
done
