#!/usr/bin/env bash
# Re-run the last part of an equal-budget run with its trajectory kept for checkpoint averaging
# (issue 10). The runs trained before train.snapshots_from existed committed only two or three
# checkpoints of their 128-px phase, too few to average. This continues each from a committed
# checkpoint inside that phase (its weights and images seen; Adam's moments start afresh) over the
# same stream - a pure function of images seen, so the same photos and crops in the same order - to
# the same 300,000-image budget, into a run folder of its own (<run>-tail), keeping a snapshot at
# every checkpoint from 240,000 images; then `python -m experiments.average` averages them and
# ships the mean only if it beats the shipped model on the fixed validation photos.
# Resumable: the same command continues each run from its own checkpoint.
#   ITEMS="classification:d4eb7ec:results/checkpoints/classification.pt" bash experiments/scripts/tail_rerun.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export OMP_WAIT_POLICY=PASSIVE
NICE=${NICE:-10}
init_dir=${TAIL_INIT_DIR:-$HOME/.cache/colorization-workbench/tail-init}
mkdir -p "$init_dir"
for item in ${ITEMS:?ITEMS=\"method:REV:PATH ...\"}; do
  m=${item%%:*}
  rest=${item#*:}
  cfg=experiments/configs/$m.toml
  run=$(sed -n 's/^run *= *"\(.*\)"/\1/p' "$cfg" | head -n1)-tail
  init="$init_dir/$m-${rest%%:*}.${rest##*.}"
  [ -f "$init" ] || git show "$rest" > "$init" || { echo "cannot read $rest from git"; exit 2; }
  echo "[$(date -u +%H:%M:%S)] $m: $run from $rest"
  nice -n "$NICE" python -m experiments.train --config "$cfg" train.run="$run" train.snapshots_from=240000 \
    --init-from "$init" --no-progress || exit $?
done
echo "[$(date -u +%H:%M:%S)] tail reruns done"
