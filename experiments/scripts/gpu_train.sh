#!/usr/bin/env bash
# Prepared GPU training (issue 10): when a GPU is lent, train every learned method to the same
# budget in a few minutes of wall time and ship what beats the shipped models, with provenance.
#   bash experiments/scripts/gpu_train.sh [IMAGES]          # default 300000 images per method
# What differs from the CPU recipe (experiments/configs/<method>.toml, same data, same crop
# schedule shape: the first two thirds at 64-px crops, the last third at 128 px):
# - wider, paper-size decoders/networks where the CPU configs shrink them (gan: ngf_decoder 32;
#   classification: decoder 256-192-128; fusion: the paper's widths 64-128-256-512 and FC
#   1024-512-256);
# - batch 64 / 32, data-loader workers 8, mixed precision (automatic on CUDA in TorchColorizer);
# - runs named <method>-gpu, so the CPU runs are untouched; each ships only when it beats the
#   shipped model on the fixed validation photos (experiments.train --ship-if-better).
# A run that the time limit cuts resumes exactly with the same command.
set -uo pipefail
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
python - <<'EOF' || { echo "no CUDA GPU here: nothing to do (the CPU recipe is experiments/scripts/train_rounds.sh)"; exit 3; }
import sys, torch
sys.exit(0 if torch.cuda.is_available() else 1)
EOF
images=${1:-300000}
phase2=$(( images * 2 / 3 ))
common=("train.images=$images" "data.workers=8" "data.batch_size=64" "data.schedule=[[$phase2,128,32]]" "train.checkpoint_every=500")
run() {  # method, run name, extra overrides...
  local m=$1 name=$2; shift 2
  echo "[$(date -u +%H:%M:%S)] $m -> $name"
  python -m experiments.train --config "experiments/configs/$m.toml" --device cuda "${common[@]}" "train.run=$name" "$@" \
    --ship-if-better --no-progress || echo "$m failed"
}
run classification classification-gpu "model.decoder_widths=[256,192,128]" "model.lr_milestones=[$(( phase2 / 64 )),$(( phase2 / 64 + (images - phase2) / 32 * 2 / 3 ))]"
run gan gan-gpu model.ngf_decoder=32 "model.decay_start=$(( phase2 / 64 ))" "model.decay_steps=$(( (images - phase2) / 32 ))"
run fusion fusion-gpu "model.widths=[64,128,256,512]" "model.fc=[1024,512,256]"
run regression regression-gpu
run koalarization koalarization-gpu "model.widths=[64,128,256,512]" "model.fc=[1024,512,256]"
echo "[$(date -u +%H:%M:%S)] done; commit results/checkpoints and results/runs/*-gpu"
