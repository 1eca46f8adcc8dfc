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
    "--no-speed",  # the full-resolution, thread, click, evaluate-CLI and training rows: tested on their own below
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


# --- where the time goes: CPU ratios, busy machine, training, evaluate CLI ----------------------------


def test_speed_rows_of_a_method_are_measured_and_judged(checkpoints, photo):
    """colorize/predict_ab CPU ratios at 512 and 1024 px, the busy-machine 2/1-thread ratio and the
    training throughput against the FLOP limit, as the worker records them (a tiny gan)."""
    import torch

    from backends.gan import GANColorizer

    model = GANColorizer.from_checkpoint(checkpoints / "gan.pt", "cpu")
    spec = {"method": "gan", "device": "cpu", "repeats": 1, "speed": True}
    threads = torch.get_num_threads()
    rows = [benchmark.ratio_row(model, spec, photo, s, "cpu") for s in (512, 1024)]
    rows.append(benchmark.busy_row(model, spec, photo, "cpu"))
    rows.append(benchmark.train_row("gan", spec, benchmark.matmul_gflops_per_cpu_s(256, 1),
                                    config={"model": {"ngf": 8, "ndf": 8}, "data": {"crop": 64, "batch_size": 2}}))  # fmt: skip
    assert torch.get_num_threads() == threads  # the 1- and 2-thread measurements put the count back
    rows = [benchmark.judge(r) for r in rows]
    assert all(r["status"] == "ok" for r in rows), [r["status"] for r in rows]
    r512, r1024, busy, train = rows
    assert r512["cpu_s"] > r512["median_s"] > 0 and r512["ratio"] == pytest.approx(r512["cpu_s"] / r512["median_s"])
    assert r512["target"] == "<= 1.6x" and r1024["target"] == "<= 3x" and r1024["result"] in ("PASS", "FAIL")
    assert busy["target"] == "<= 1x" and busy["ratio"] > 0 and busy["min_s"] > 0 and busy["median_s"] > 0
    assert train["per_s"] > 0 and train["min_s"] > 0 and train["p90_s"] > 0 and 0 < train["ratio"]
    assert train["target"] == ">= 0.5 of the FLOP limit" and train["result"] in ("PASS", "FAIL")
    # a ratio at or under its limit passes, above it fails
    t = benchmark.target_for(r512)
    assert t.check({**r512, "ratio": 1.6}) == "PASS" and t.check({**r512, "ratio": 1.61}) == "FAIL"


def test_click_baseline_is_measured_photo_by_photo_in_another_process():
    """The browser click's baseline: a separate process keeps the methods loaded and times their own
    colorize on each sample photo when asked (between the clicks); a failure is an error, not a number."""
    import os

    own = benchmark._OwnColorize(["classification"], {**os.environ, "PYTHONPATH": str(benchmark.PROJECT_ROOT)}, 300)
    try:
        first = own.ask("cat (chelsea)")
        second = own.ask("astronaut")
    finally:
        own.close()
    assert all(w > 0 and c > 0 for w, c in (first, second))
    assert own.proc.returncode == 0
    with pytest.raises(RuntimeError, match="no-such-method"):
        benchmark._OwnColorize(["no-such-method"], dict(os.environ), 300)


@pytest.mark.slow
def test_evaluate_cli_is_timed_against_a_scikit_image_script(tiny_data):
    row = benchmark.judge(benchmark.eval_cli_row(tiny_data / "val", 2, 1, 1))
    assert row["status"] == "ok", row["status"]
    assert row["n"] == 2 and row["total_s"] > 0 and row["cpu_s"] > 0 and row["median_s"] > 0 and row["min_s"] > 0
    assert row["peak_mem_mb"] > 0 and row["p90_s"] > 0  # both processes' peak memory
    assert row["ratio"] == pytest.approx(row["cpu_s"] / row["min_s"]) and row["result"] in ("PASS", "FAIL")
    assert benchmark.eval_cli_row(None, 2, 1, 1)["status"].startswith("n/a")


@pytest.fixture
def photo(tiny_data):
    from backends.imageio import load_image

    return load_image(tiny_data / "val" / "meadow" / "meadow_0.png", mode="rgb")
