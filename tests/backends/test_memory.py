"""Memory does not grow with the photo: a 40-megapixel photo through one method, measured.

The photo (8000 x 5000 grey PNG, 40 MP: the default COLORIZE_MAX_PIXELS) goes through the CLI in a
child process, which reports its own peak resident memory (``resource.getrusage``): load, the
method at its working size, the full-resolution join in float32 strips, the PNG written.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import backends
from tests.conftest import PROJECT

CEILING_MB = 3 * 1024

CHILD = """
import resource, sys
from experiments import colorize
rc = colorize.main(sys.argv[1:])
print("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rc", rc)
"""


def forty_megapixels(path):
    h, w = 5000, 8000
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    grey = (127 + 60 * np.sin(x * 40) * np.cos(y * 25) + 60 * y).clip(0, 255).astype(np.uint8)
    Image.fromarray(grey).save(path, compress_level=1)
    return path


@pytest.mark.slow
def test_a_40_megapixel_photo_stays_under_3_gb(tmp_path):
    if not backends.status("classification").available:
        pytest.skip(backends.status("classification").reason)
    src, dst = forty_megapixels(tmp_path / "big.png"), tmp_path / "out.png"
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "OMP_NUM_THREADS": "2"}
    r = subprocess.run([sys.executable, "-c", CHILD, "--method", "classification", "--input", str(src), "--output", str(dst), "--device", "cpu"],
                       cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    words = r.stdout.split()
    peak = float(words[words.index("peak_rss_mb") + 1])
    print(f"40 MP through classification: peak RSS {peak:.0f} MB")
    assert peak < CEILING_MB, f"peak resident memory {peak:.0f} MB for a 40-MP photo (ceiling {CEILING_MB} MB)"
    with Image.open(dst) as out:
        assert out.size == (8000, 5000) and out.mode == "RGB"
