#!/usr/bin/env bash
# Raise the equal budget of every learned method together (issue 10): each method continues its
# equal-budget run from the run's committed last weights (results/runs/<run>/resume.<ext>; Adam's
# moments start afresh) over the same stream - a pure function of images seen, so it goes on with
# the photos and crops an uninterrupted run would have drawn next - to BUDGET images, into a run
# folder of its own (<run>-<TAG>), keeping a snapshot at every checkpoint for averaging, with the
# config's own schedule and any OVERRIDES (e.g. model.encoder_scale=1.4; not for koalarization,
# which has no SqueezeNet encoder) and OVERRIDES_<method> (e.g. the gan's learning rate, whose
# linear decay reached 0 at the end of its run). Nothing is shipped here: when every method has
# reached BUDGET, `python -m experiments.average --ship-if-better` or `experiments.train --ship`
# ships what beats the shipped model on the fixed validation photos, so budgets stay equal.
# Resumable: the same command continues each run from its own checkpoint.
# For the configs' recipe since 2026-12-05, whose rate has fallen to 0 at the budget, a run's end
# is no place to go on from: experiments/scripts/train_round.sh raises the budget by a constant-rate
# trunk and a decaying branch instead.
#   BUDGET=340000 TAG=s14 OVERRIDES="model.encoder_scale=1.4" \
#     OVERRIDES_gan="model.lr=1e-4 model.decay_start=12500 model.decay_steps=2500" bash experiments/scripts/extend_all.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export OMP_WAIT_POLICY=PASSIVE
NICE=${NICE:-10}
BUDGET=${BUDGET:?BUDGET=images}
TAG=${TAG:?TAG=name}
METHODS=${METHODS:-"classification regression fusion gan koalarization"}
for m in $METHODS; do
  cfg=experiments/configs/$m.toml
  base=$(sed -n 's/^run *= *"\(.*\)"/\1/p' "$cfg" | head -n1)
  base=${base:-$m}
  ext=.pt; [ "$m" = regression ] && ext=.keras
  init=results/runs/$base/resume$ext
  [ -f "$init" ] || { echo "$m: no $init"; exit 2; }
  from=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['images_seen'])" "results/runs/$base/resume.json")
  over=${OVERRIDES:-}
  [ "$m" = koalarization ] && over=
  var="OVERRIDES_$m"
  over="$over ${!var:-}"
  echo "[$(date -u +%H:%M:%S)] $m: $base-$TAG from $init ($from images) to $BUDGET ${over}"
  # shellcheck disable=SC2086
  nice -n "$NICE" python -m experiments.train --config "$cfg" train.run="$base-$TAG" train.images="$BUDGET" \
    train.snapshots_from="$from" $over --init-from "$init" --no-progress || exit $?
done
echo "[$(date -u +%H:%M:%S)] extension to $BUDGET done"
