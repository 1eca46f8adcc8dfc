"""The benchmark's peak-memory-by-photo-size rows (``python -m experiments.benchmark --memory``)."""

from __future__ import annotations

import pytest

import backends
from experiments import benchmark


@pytest.mark.slow
def test_memory_rows_measure_a_fresh_process_per_size(tmp_path):
    if not backends.status("classification").available:
        pytest.skip(backends.status("classification").reason)
    rows = benchmark.memory_by_size(["classification", "no_such_method"], megapixels=(0.05, 2), threads=1)
    small, large, missing = rows[0], rows[1], rows[2]
    assert abs(small["width"] * small["height"] - 50_000) < 500 and abs(large["width"] / large["height"] - 1.6) < 0.01
    for r in (small, large):
        assert r["peak_rss_mb"] >= r["model_rss_mb"] > 50 and r["seconds"] > 0
    assert large["peak_rss_mb"] > small["peak_rss_mb"], "a 2-MP photo needs more than a 0.05-MP one"
    assert "error" in missing and "no_such_method" in missing["error"]
    md = benchmark.memory_markdown(rows, "test machine")
    assert "| `classification` | 2 |" in md and "no_such_method" in md
