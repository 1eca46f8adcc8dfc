"""experiments.benchmark on tiny settings: the files it writes, unavailable and failing methods, bad
options. No timing assertions (the numbers depend on the machine and its load)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import backends
from backends.base import Colorizer
from experiments import benchmark

TINY = [
    "--repeats",
    "1",
    "--warmup",
    "0",
    "--batch",
    "2",
    "--eval-photos",
    "2",
    "--cpu-threads",
    "1",
    "--device",
    "cpu",
    "--quiet",
]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Untrained, small classification and gan checkpoints (speed does not depend on training)."""
    from backends.classification import ClassificationColorizer
    from backends.gan import GANColorizer

    d = tmp_path_factory.mktemp("checkpoints")
    ClassificationColorizer(ClassificationColorizer.Config(widths=[8, 8, 16, 16]), "cpu").save(
        d / "classification.pt", training=False
    )
    GANColorizer(GANColorizer.Config(ngf=8, ndf=8), "cpu").save(d / "gan.pt", training=False)
    return d


def run(tmp_path, tiny_data, checkpoints, methods: str, *extra: str) -> tuple[dict, list[dict], str]:
    out = tmp_path / "bench"
    photo = tiny_data / "val" / "meadow" / "meadow_0.png"
    argv = ["--methods", methods, "--photo", str(photo), "--data", str(tiny_data / "val"), "--checkpoints", str(checkpoints)]
    assert benchmark.main([*argv, *TINY, "--out", str(out), *extra]) == 0
    files = sorted(out.iterdir())
    assert [p.suffix for p in files] == [".csv", ".json", ".md"] and len({p.stem for p in files}) == 1
    report = json.loads((out / f"{files[0].stem}.json").read_text())
    with (out / f"{files[0].stem}.csv").open() as f:
        rows = list(csv.DictReader(f))
    return report, rows, (out / f"{files[0].stem}.md").read_text()


def test_isolated_run_writes_json_csv_and_md(tmp_path, tiny_data, checkpoints):
    report, rows, md = run(tmp_path, tiny_data, checkpoints, "classification,gan", "--sizes", "64,512")
    hw = report["hardware"]
    assert hw and benchmark.slug(hw) in str(tmp_path / "bench" / benchmark.slug(hw))
    assert report["settings"]["isolated"] and report["settings"]["sizes"] == [64, 512]
    assert report["software"]["torch"] and report["commit"] and report["created"]
    assert report["cpu"]["workers"]["cpu"]["torch_threads"] == 1 and report["cpu"]["workers"]["cpu"]["pinned"]

    # JSON: one latency row per method and size, plus load, throughput and evaluation rows
    for m in ("classification", "gan"):
        lat = {r["size"]: r for r in report["rows"] if r["kind"] == "latency" and r["method"] == m}
        assert sorted(lat) == [64, 512]
        assert all(
            r["status"] == "ok" and r["n"] == 1 and r["median_s"] > 0 and r["peak_mem_mb"] is not None for r in lat.values()
        )
        assert lat[64]["target"] == "" and lat[512]["target"] == "<= 0.25 s" and lat[512]["result"] in ("PASS", "FAIL")
        (ev,) = [r for r in report["rows"] if r["kind"] == "evaluation" and r["method"] == m]
        assert ev["n"] == 2 and ev["per_s"] > 0 and ev["target"] == ">= 10 photos/s" and ev["result"] in ("PASS", "FAIL")
        (tp,) = [r for r in report["rows"] if r["kind"] == "throughput" and r["method"] == m]
        assert tp["batch"] == 2 and tp["per_s"] > 0
        assert any(r["kind"] == "load" and r["method"] == m for r in report["rows"])
    (cmp,) = [r for r in report["rows"] if r["kind"] == "compare"]
    assert cmp["status"].startswith("n/a") and "regression" in cmp["status"] and cmp["result"] == ""

    # CSV: the same rows, the hardware on each
    assert {r["hardware"] for r in rows} == {hw}
    assert {"target", "result", "peak_mem_mb", "median_s", "p90_s"} <= set(rows[0])
    assert sorted((r["method"], r["size"]) for r in rows if r["kind"] == "latency") == [
        ("classification", "512"), ("classification", "64"), ("gan", "512"), ("gan", "64")]  # fmt: skip

    # Markdown: hardware, versions, threads, date, commit, and target / result columns
    assert f"# Benchmark: {hw}" in md and f"PyTorch {report['software']['torch']}" in md
    assert "| CPU threads | 1 torch thread(s), pinned" in md and report["commit"] in md and report["created"] in md
    assert "| method | device | photo (px) | working (px) | median (s) | p90 (s) | peak memory (MB) | target | result |" in md
    lat_lines = [ln for ln in md.splitlines() if ln.startswith(("| classification | cpu | 512 |", "| gan | cpu | 512 |"))]
    assert len(lat_lines) == 2 and all(ln.endswith(("| PASS |", "| FAIL |")) for ln in lat_lines)
    assert "CPU targets are stated for 2 CPU cores; this run used 1 thread(s)." in md


class BrokenColorizer(Colorizer):
    """Loads, then fails on every photo."""

    name = "broken"

    @classmethod
    def open(cls, checkpoint=None, device="auto", **options):
        return cls()

    def predict_ab(self, L, reference=None):
        raise RuntimeError("boom")


def test_unavailable_and_failing_methods_are_listed(tmp_path, tiny_data, checkpoints, monkeypatch):
    known = backends.method_class
    monkeypatch.setitem(backends.METHODS, "broken", (__name__, "BrokenColorizer"))
    monkeypatch.setattr(backends, "method_class", lambda n: BrokenColorizer if n == "broken" else known(n))
    report, rows, md = run(tmp_path, tiny_data, checkpoints, "gan,fusion,broken", "--sizes", "64", "--no-isolate")

    assert not report["settings"]["isolated"]
    assert "no trained checkpoint" in report["unavailable"]["fusion (cpu)"]
    (fusion,) = [r for r in rows if r["method"] == "fusion"]
    assert fusion["kind"] == "unavailable" and fusion["status"].startswith("unavailable: fusion: no trained checkpoint")
    assert "- `fusion` (cpu): unavailable: fusion: no trained checkpoint" in md
    broken = [r for r in report["rows"] if r["method"] == "broken" and r["kind"] in ("latency", "throughput", "evaluation")]
    assert len(broken) == 3 and all(r["status"] == "failed: RuntimeError: boom" for r in broken)
    assert "| broken | cpu | 64 | 256 | failed: RuntimeError: boom |" in md
    assert [r["status"] for r in report["rows"] if r["method"] == "gan" and r["kind"] == "latency"] == ["ok"]
    assert "All methods shared one process" in md


@pytest.mark.parametrize(
    "argv",
    [
        ["--sizes", "abc"],
        ["--sizes", "16"],
        ["--methods", "nope"],
        ["--repeats", "0"],
        ["--device", "tpu"],
        ["--bogus"],
        ["--photo", "/nonexistent/photo.png"],
        ["--data", "/nonexistent"],
    ],  # fmt: skip
)
def test_bad_options_exit_2_with_one_line(argv, tmp_path, capsys):
    assert benchmark.main([*argv, "--out", str(tmp_path / "bench")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "bench").exists()


def test_cuda_without_a_gpu_is_a_bad_option(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    assert benchmark.main(["--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_targets_and_slug():
    row = {"kind": "latency", "method": "gan", "device": "cpu", "ran_on": "cpu", "size": 512, "working_size": 256, "status": "ok",
           "median_s": 0.3, "per_s": None, "total_s": None}  # fmt: skip
    assert benchmark.judge(dict(row))["result"] == "FAIL"
    assert benchmark.judge({**row, "median_s": 0.1})["result"] == "PASS"
    assert benchmark.judge({**row, "ran_on": "cuda"})["result"] == ""  # a CPU target needs a CPU run
    ns = {**row, "method": "neural_style", "device": "cuda", "ran_on": "cuda", "size": 256, "median_s": 1.5}
    assert benchmark.judge(ns)["target"] == "<= 2 s" and ns["result"] == "PASS"
    assert benchmark.slug("NVIDIA H100 80GB HBM3 (CUDA) x1, AMD EPYC 9454 48-Core Processor") == (
        "nvidia-h100-80gb-hbm3-cuda-x1-amd-epyc-9454-48-core-processor"
    )
    assert np.isfinite(benchmark.peak_rss_mb())


@pytest.mark.browser
def test_app_start_is_timed_in_a_real_browser_and_judged(tmp_path, monkeypatch):
    """--app: a cold `streamlit run` until the home page's method table shows, against the 5-s target."""
    pytest.importorskip("playwright.sync_api")
    if not __import__("pathlib").Path(benchmark.CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path / "results"))
    row = benchmark.judge(benchmark.app_startup(repeats=1))
    assert row["status"] == "ok", row["status"]
    assert 0 < row["min_s"] < row["total_s"]  # the server answers before the page is ready
    assert row["target"] == "<= 5 s" and row["result"] in ("PASS", "FAIL")
    md = benchmark.to_markdown({**_report_stub(), "rows": [row]})
    assert "## Dashboard start" in md and "dashboard home" in md


def _report_stub() -> dict:
    return {
        "hardware": "test", "created": "now", "commit": "abc", "command": None,
        "software": {"python": "3", "torch": "2", "tensorflow": None, "keras": None, "platform": "linux", "torch_cuda": None},
        "cpu": {"model": "x", "cores": 2, "threads": 2, "workers": {}},
        "settings": {"photo": "p", "repeats": 1, "warmup": 0, "warmup_slow": 0, "isolated": True, "batch": 2, "data": None,
                     "eval_batch": 8},
        "methods": {},
    }  # fmt: skip
