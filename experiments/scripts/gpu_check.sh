#!/usr/bin/env bash
# Every method on the GPU in a few minutes: load + colorize (device each ran on, seconds), one
# training step per trainable method, then the benchmark's CUDA rows and its video frames/s. Run it whenever a CUDA
# machine is available, and commit results/benchmarks/<hardware>.{json,csv,md}:
#
#   bash experiments/scripts/gpu_check.sh                 # after: pip install -r requirements.txt
#   GPU_TF=1 bash experiments/scripts/gpu_check.sh        # first swap tensorflow-cpu for TensorFlow with CUDA
#
# Settings (environment): GPU_CHECK_METHODS (default: every registered method), GPU_CHECK_SIZES
# (benchmark sizes, default 256,512), GPU_CHECK_OUT (default results/benchmarks),
# GPU_CHECK_DEVICE (default cuda; "cpu" runs the same steps on the CPU - used by the tests).
# Exit status: 0 all ran on the device; 1 some method failed or fell back to the CPU; 3 no CUDA GPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
OUT=${GPU_CHECK_OUT:-results/benchmarks}
SIZES=${GPU_CHECK_SIZES:-256,512}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ "$DEVICE" = cuda ]; then
  if ! $PY -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_check: no CUDA GPU visible to PyTorch (torch.cuda.is_available() is False)." >&2
    echo "gpu_check: run it on a machine with an NVIDIA GPU, its driver and a CUDA build of torch (pip install torch on x86_64 Linux)." >&2
    exit 3
  fi
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  if [ "${GPU_TF:-0}" = 1 ]; then
    $PY -m pip uninstall -y -q tensorflow-cpu || true
    $PY -m pip install -q -r requirements-gpu.txt
  fi
fi

METHODS=${GPU_CHECK_METHODS:-$($PY -c 'import backends; print(",".join(backends.names()))')}
echo "gpu_check: device $DEVICE, methods $METHODS"

# 1. load + colorize each method; 2. one training step of each trainable one (synthetic photos)
set +e
$PY - "$DEVICE" "$METHODS" "$WORK" "$OUT" <<'PY'
import json, subprocess, sys, time
from pathlib import Path

import numpy as np
from PIL import Image

import backends

device, methods, work, out = sys.argv[1], sys.argv[2].split(","), Path(sys.argv[3]), Path(sys.argv[4])
report = {"device": device, "colorize": {}, "train": {}}
if device == "cuda":
    import torch
    report["gpu"] = torch.cuda.get_device_name(0)
    try:
        import tensorflow as tf
        report["tensorflow_gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    except ImportError as exc:
        report["tensorflow_gpus"] = f"TensorFlow not importable ({exc})"
rng = np.random.default_rng(0)
photo = (rng.random((300, 420, 3)) * 255).astype(np.uint8)
for split, n in (("train", 8), ("val", 4)):
    for label in ("a", "b"):
        d = work / "data" / split / label
        d.mkdir(parents=True)
        for i in range(n):
            Image.fromarray((rng.random((96, 96, 3)) * 255).astype(np.uint8)).save(d / f"{i}.png")

failed = []
for m in methods:
    row = {}
    try:
        t0 = time.perf_counter()
        model = backends.load(m, device=device, **({"iterations": 5} if backends.describe(m).speed == "slow" else {}))
        row["load_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        img = model.colorize(photo)
        row["colorize_s"] = round(time.perf_counter() - t0, 2)
        row["device"] = str(getattr(model, "device", "?"))
        if m == "regression" and device == "cuda":
            row["tensorflow_device"] = "GPU" if report.get("tensorflow_gpus") and isinstance(report["tensorflow_gpus"], list) else "CPU (no TensorFlow GPU: GPU_TF=1)"
        row["ok"] = img.shape == photo.shape and row["device"].startswith(device) and "CPU (" not in row.get("tensorflow_device", "")
    except backends.ColorizationError as exc:
        row = {"ok": None, "unavailable": str(exc)[:300]}
    except Exception as exc:  # noqa: BLE001
        row = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    report["colorize"][m] = row
    print(f"colorize {m:18s} {row}", flush=True)
    if row.get("ok") is False:
        failed.append(f"colorize {m}")

    config = Path("experiments/configs") / f"{m}.toml"
    if not config.exists():
        continue
    cmd = [sys.executable, "-m", "experiments.train", "--config", str(config), "--device", device, "--fresh", "--no-progress",
           "train.steps=1", "train.images=0", "train.log_every=1", "train.checkpoint_every=1", f"train.runs_dir={work / 'runs'}",
           f"data.train={work / 'data' / 'train'}", f"data.val={work / 'data' / 'val'}", "data.crop=64", "data.batch_size=4",
           "data.schedule=[]", "data.cache=false", "data.workers=0", "data.val_count=4", "data.val_photos=4"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    trow = {"ok": r.returncode == 0, "seconds": round(time.perf_counter() - t0, 1)}
    if r.returncode:
        trow["error"] = (r.stderr.strip().splitlines() or ["?"])[-1][:300]
        failed.append(f"train {m}")
    report["train"][m] = trow
    print(f"train    {m:18s} {trow}", flush=True)

report["failed"] = failed
out.mkdir(parents=True, exist_ok=True)
name = "gpu_check" if device == "cuda" else f"gpu_check_{device}"
(out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
print(f"gpu_check: wrote {out / (name + '.json')}")
sys.exit(1 if failed else 0)
PY
status=$?
set -e

# 3. the benchmark's rows for this device (CUDA rows join the hardware's table)
$PY -m experiments.benchmark --methods "$METHODS" --device "$DEVICE" --sizes "$SIZES" --repeats 3 --warmup 1 --skip-slow \
  --eval-photos 16 --batch 8 --quiet --out "$OUT" || status=1
# 4. video: frames/s of each feed-forward method on the 480p clip on this device (-> video-<hardware>.*)
VIDEO_METHODS=$($PY -c 'import sys; print(",".join(m for m in sys.argv[1].split(",") if m != "neural_style"))' "$METHODS")
if [ -n "$VIDEO_METHODS" ]; then
  $PY -m experiments.benchmark --video --methods "$VIDEO_METHODS" --device "$DEVICE" --video-frames "${GPU_CHECK_VIDEO_FRAMES:-100}" \
    --video-no-memory --out "$OUT" || status=1
fi
exit $status
