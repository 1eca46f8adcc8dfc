#!/usr/bin/env bash
# Prepared GPU training (issue 10): train the learned methods to the same budget in minutes of GPU
# time, with provenance; what beats the shipped models is shipped (here or, for the lent device
# machine, at home after experiments.device_import).
#
#   bash experiments/scripts/gpu_train.sh [IMAGES]     # a GPU machine with this checkout and ../shared
#   PACK=.devicepack EXPORT=$OUT TIME_LIMIT=420 bash experiments/scripts/gpu_train.sh   # the lent device
#
# The lent device machine receives the checkout alone (no ../shared, at most 64 MiB): the round trip
# is in the README's "Training on a GPU" (experiments.devicepack, device_slim.sh, this script,
# experiments.device_import).
#
# What differs from the CPU recipe (experiments/configs/<method>.toml: same data, same crop schedule
# shape - the first two thirds at 64-px crops, the last third at 160 px with the learning rate
# falling linearly to 0 over it, classification's stepped x1/3 first - and the same stream):
# - wider networks than the CPU configs, still below the papers' sizes: each model's half-precision
#   weights must come back from the device in one file of at most 16 MiB (gan: ngf_decoder 48, 11.3
#   MiB; classification: decoder 256-192-128, 7.1 MiB; fusion: widths 32-64-128-128 and FC 512-256-128,
#   twice the CPU config's, 10.5 MiB - the paper's 64-128-256-512 and FC 1024-512-256 would weigh
#   80 MiB; koalarization: widths 48-96-192-384 and FC 768-384-192, 8.8 MiB);
# - batch 64 / 24 (the CPU's 32 / 12), mixed precision (automatic on CUDA in TorchColorizer);
# - from a device pack (128 px on the short side, so that 89% of the photos fit; at 160 px only 68%
#   do) the 160-px crops come from photos enlarged 1.25-1.56x, where the CPU's 160-px cache gives
#   1-1.25x;
# - weight snapshots at every checkpoint of the last fifth of the budget: the export carries their
#   mean when it scores at least as high as the best checkpoint on the validation photos (the CPU
#   runs ship such means; the first device round, 2026-12-04, exported single best checkpoints and
#   none beat the shipped models);
# - runs named <method>-<RUN_TAG> (default gpu-<UTC date>), so the CPU runs and earlier device
#   sessions' imports are untouched; the same day's command resumes them on a machine still warm.
#
# Environment:
#   METHODS     default "classification gan fusion koalarization regression"; regression is skipped
#               where TensorFlow is not importable (the device's Python has none)
#   PACK        a device pack (python -m experiments.devicepack): its photos are unpacked under WORK,
#               its SqueezeNet file is the encoders' (COLORIZE_WEIGHTS_DIR), the caches go under WORK
#   WORK        scratch folder for PACK (default /tmp/colorize-gpu)
#   PARALLEL    1: every method at once on the one GPU, 3 loader workers each (default 1 with PACK)
#   TIME_LIMIT  seconds from this script's start (unpacking and the cache decode count) after which
#               every run gets SIGTERM, saves a checkpoint and stops (resumable); each run is
#               exported as soon as it ends, so keep the call's timeout ~140 s above TIME_LIMIT
#   EXPORT      folder that receives <run>.tar.gz per run (best weights in half precision, else the
#               latest; logs, samples, provenance) and gpu_train.log, for experiments.device_import
#   RUN_TAG     the runs' suffix (default gpu-<UTC date>)
#   SHIP        1: ship-if-better after each run (default 1, 0 with PACK: gate at home on the originals)
#   DEVICE      cuda (default); cpu runs the same steps on the CPU (the tests)
#   PYTHON      interpreter (default: the checkout's .venv, else python3 - the device's, with torch)
#   COLORIZE_GIT_COMMIT  the commit the code is at, for the runs' provenance where .git did not travel
#   RUNS_DIR    where the runs go (default results/runs; with PACK, WORK/runs)
#   GPU_TRAIN_SMALL=1  keep the CPU configs' network sizes (the tests)
# Exit status: 0 when every run trained (or was cut by TIME_LIMIT) and, with EXPORT, was exported;
# 1 when any run or export failed; 2 when the pack could not be unpacked; 3 without a GPU.
set -uo pipefail
START=$SECONDS
cd "$(dirname "$0")/../.."
if . .venv/bin/activate 2>/dev/null; then PY=${PYTHON:-python}; else PY=${PYTHON:-python3}; fi  # the device: python3
DEVICE=${DEVICE:-cuda}
if [ "$DEVICE" = cuda ] && ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "no CUDA GPU here: nothing to do (the CPU recipe is experiments/scripts/train_rounds.sh)"
  exit 3
fi
images=${1:-300000}
phase2=$(( images * 2 / 3 ))
METHODS=${METHODS:-"classification gan fusion koalarization regression"}
RUN_TAG=${RUN_TAG:-gpu-$(date -u +%Y%m%d)}
# With PACK (the lent device) the runs live under WORK, outside the checkout: a warm machine's next
# call re-syncs the checkout and would delete a run's logs (untracked, not ignored) but keep its
# ignored checkpoint, so a resumed run would lose its history (seen on 2026-12-04).
RUNS_DIR=${RUNS_DIR:-$([ -n "${PACK:-}" ] && echo "${WORK:-/tmp/colorize-gpu}/runs" || echo results/runs)}
PARALLEL=${PARALLEL:-$([ -n "${PACK:-}" ] && echo 1 || echo 0)}
SHIP=${SHIP:-$([ -n "${PACK:-}" ] && echo 0 || echo 1)}
workers=8; [ "$PARALLEL" = 1 ] && workers=3
data=()
if [ -n "${PACK:-}" ]; then
  WORK=${WORK:-/tmp/colorize-gpu}
  PACK=$(realpath "$PACK") || exit 2
  rm -rf "$WORK/data"  # a machine still warm from an earlier call: only this pack's photos
  mkdir -p "$WORK"
  "$PY" -m experiments.devicepack --unpack "$PACK" "$WORK/data" || exit 2
  export COLORIZE_WEIGHTS_DIR="$PACK/weights" COLORIZE_CACHE_DIR="$WORK/cache"
  mapfile -t dirs < <(for d in "$WORK"/data/*/; do [ "$(basename "$d")" = val ] || realpath "$d"; done)
  roots=$(printf '"%s",' "${dirs[@]}"); roots=${roots%,}
  short=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["short_side"])' "$PACK/manifest.json")
  data=("data.train=[$roots]" "data.val=$(realpath "$WORK/data/val")" "data.cache_short=$short")
  # one decode for all runs (parallel runs would each start writing the same cache)
  "$PY" -c 'import sys; from experiments.datacache import build_cache; c = build_cache(sys.argv[2:], short=int(sys.argv[1]), progress=False); print(f"cache: {len(c)} photos, {len(c.classes)} labels")' \
    "$short" "${dirs[@]}" || exit 2
fi
common=("train.images=$images" "data.workers=$workers" "data.batch_size=64" "data.schedule=[[$phase2,160,24]]"
        "train.checkpoint_every=500" "train.snapshots_from=$(( images * 4 / 5 ))" "train.runs_dir=$RUNS_DIR" "${data[@]}")
small() { [ "${GPU_TRAIN_SMALL:-0}" = 1 ] || printf '%s\n' "$@"; }
overrides() {  # the paper-size networks and each method's schedule for this budget: the rate
  # falls linearly to 0 over the 160-px phase (the configs' decay_* count the CPU's batch sizes)
  echo "model.decay_start=$(( phase2 / 64 ))"; echo "model.decay_steps=$(( (images - phase2) / 24 ))"
  case $1 in
    classification) small "model.decoder_widths=[256,192,128]"
      echo "model.lr_milestones=[$(( phase2 / 64 ))]" ;;
    gan) small model.ngf_decoder=48 ;;
    fusion) small "model.widths=[32,64,128,128]" "model.fc=[512,256,128]" ;;
    koalarization) small "model.widths=[48,96,192,384]" "model.fc=[768,384,192]" ;;
  esac
}
ship=(); [ "$SHIP" = 1 ] && ship=(--ship-if-better)
log=${EXPORT:+$EXPORT/gpu_train.log}
[ -n "${EXPORT:-}" ] && mkdir -p "$EXPORT"
say() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a ${log:-/dev/null}; }
run() {  # method: one run, cut TIME_LIMIT seconds after the script's start (SIGTERM: it checkpoints
  # and stops), then exported; returns 0 when it trained (or was cut) and exported, else 1
  local m=$1 extra name="$1-$RUN_TAG" rc
  mapfile -t extra < <(overrides "$m")
  local lim=()
  if [ -n "${TIME_LIMIT:-}" ]; then
    local left=$(( TIME_LIMIT - (SECONDS - START) ))
    [ "$left" -lt 30 ] && left=30
    lim=(timeout -k 30 -s TERM "$left")
  fi
  say "$m -> $name (${images} images${lim[*]:+, ${lim[5]} s left})"
  "${lim[@]}" "$PY" -m experiments.train --config "experiments/configs/$m.toml" --device "$DEVICE" "${common[@]}" \
    "train.run=$name" "${extra[@]}" "${ship[@]}" --no-progress >> "$RUNS_DIR/$name.out" 2>&1
  rc=$?
  tail -n 3 "$RUNS_DIR/$name.out" | tee -a ${log:-/dev/null}
  local ok=1 cut=""
  case $rc in 0) ok=0 ;; 124|143) ok=0; cut=" (cut by TIME_LIMIT; the same command resumes)" ;; esac
  say "$m: exit $rc$cut"
  if [ -n "${EXPORT:-}" ] && [ -d "$RUNS_DIR/$name" ]; then
    "$PY" -m experiments.device_import --export "$RUNS_DIR/$name" "$EXPORT" ${PACK:+--pack "$PACK"} >> "$log" 2>&1 \
      || { say "$m: export failed (see above)"; ok=1; }
  elif [ -n "${EXPORT:-}" ]; then
    say "$m: nothing to export"; ok=1
  fi
  return $ok
}
mkdir -p "$RUNS_DIR"
todo=()
for m in $METHODS; do
  if [ "$m" = regression ] && ! "$PY" -c 'import tensorflow' 2>/dev/null; then
    say "regression: skipped (TensorFlow is not importable here; the Keras regression trains on the CPU recipe)"
    continue
  fi
  todo+=("$m")
done
failed=()
if [ "$PARALLEL" = 1 ]; then
  pids=()
  for m in "${todo[@]}"; do run "$m" & pids+=($!); done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${todo[$i]}"); done
else
  for m in "${todo[@]}"; do run "$m" || failed+=("$m"); done
fi
if [ ${#failed[@]} -gt 0 ]; then
  say "failed: ${failed[*]} (their console output: $RUNS_DIR/<method>-$RUN_TAG.out)"
  exit 1
fi
say "done$([ -n "${EXPORT:-}" ] && echo "; bring back $EXPORT, then python -m experiments.device_import DIR")"
