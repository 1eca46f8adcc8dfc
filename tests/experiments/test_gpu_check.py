"""experiments/scripts/gpu_check.sh: says clearly when there is no GPU; its steps run (on the CPU here)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.venvs import PROJECT

SCRIPT = PROJECT / "experiments" / "scripts" / "gpu_check.sh"


def run(env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT), **env},
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_without_cuda_it_exits_3_saying_what_is_missing():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the real check applies")
    r = run({"CUDA_VISIBLE_DEVICES": ""}, timeout=300)
    assert r.returncode == 3, r.stderr
    assert "no CUDA GPU visible to PyTorch" in r.stderr and "CUDA build of torch" in r.stderr


@pytest.mark.slow
def test_its_steps_run_end_to_end_on_the_cpu(tmp_path):
    r = run({"GPU_CHECK_DEVICE": "cpu", "GPU_CHECK_METHODS": "gan", "GPU_CHECK_SIZES": "64", "GPU_CHECK_OUT": str(tmp_path),
             "GPU_CHECK_VIDEO_FRAMES": "8"})  # fmt: skip
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    report = json.loads((tmp_path / "gpu_check_cpu.json").read_text())
    assert report["colorize"]["gan"]["ok"] and report["colorize"]["gan"]["device"] == "cpu"
    assert report["train"]["gan"]["ok"] and report["failed"] == []
    (bench,) = [p for p in tmp_path.glob("*.json") if p.name != "gpu_check_cpu.json" and not p.name.startswith("video-")]
    rows = json.loads(bench.read_text())["rows"]
    assert any(x["method"] == "gan" and x["kind"] == "latency" and x["size"] == 64 and x["status"] == "ok" for x in rows)
    (video,) = tmp_path.glob("video-*.json")  # the video frames/s on the device
    vrows = json.loads(video.read_text())["rows"]
    assert [(x["method"], x["device"], x["kind"]) for x in vrows] == [("gan", "cpu", "speed")] and vrows[0]["fps"] > 0
