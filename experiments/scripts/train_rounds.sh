#!/usr/bin/env bash
# Train the four learned methods round-robin on a machine without a GPU, shipping after every
# round, so a session that ends at any time leaves every method with its latest checkpoint in
# results/checkpoints (runs resume from results/runs/<method>/checkpoint.*).
#   nohup bash experiments/scripts/train_rounds.sh [CHUNK] [ROUNDS] > results/runs/train_rounds.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
chunk=${1:-400}
rounds=${2:-20}
methods=${METHODS:-"classification gan fusion regression"}
for r in $(seq 1 "$rounds"); do
  for m in $methods; do
    done_steps=$(tail -n1 "results/runs/$m/log.csv" 2>/dev/null | cut -d, -f1)
    [[ "$done_steps" =~ ^[0-9]+$ ]] || done_steps=0
    target=$(( (done_steps / chunk + 1) * chunk ))
    echo "[$(date -u +%H:%M:%S)] round $r: $m $done_steps -> $target"
    python -m experiments.train --config "experiments/configs/$m.toml" "train.steps=$target" --ship --no-progress || echo "$m failed"
  done
done
