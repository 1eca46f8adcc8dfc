"""Training survives signals and crashes: real tiny runs killed at random points, then resumed.

Each run is ``python -m experiments.train`` in its own process group (what systemd, Slurm and
``kill -- -PGID`` signal), with two DataLoader workers, a checkpoint every 4 steps and a log row
every step. An uninterrupted run of the same config is the reference.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from experiments.config import dump_toml, load_config
from experiments.train import main as train_main
from experiments.train import read_log, train, truncate_log
from tests.conftest import PROJECT

STEPS = 16


def tiny_raw(tiny_config, runs: Path, name: str) -> dict:
    raw = tiny_config("classification", steps=STEPS, model={"widths": [8, 8, 8, 8], "lr": 3e-3}, checkpoint_every=4, run=name)
    raw["train"]["runs_dir"] = str(runs)
    raw["data"].update(workers=2, val_photos=0)
    return raw


def write_config(raw: dict, path: Path) -> Path:
    path.write_text(dump_toml(raw))
    return path


def new_run(tiny_config, tmp_path: Path, name: str) -> tuple[Path, Path]:
    """(config file, run folder) of a tiny run called ``name``."""
    cfg = write_config(tiny_raw(tiny_config, tmp_path / "runs", name), tmp_path / f"{name}.toml")
    return cfg, tmp_path / "runs" / name


def start(cfg: Path, *extra: str) -> subprocess.Popen:
    # as many threads as the in-process reference run: another count sums in another order
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.train", "--config", str(cfg), "--device", "cpu", "--no-progress", *extra],
        cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def wait_for_rows(proc: subprocess.Popen, log: Path, rows: int, timeout: float = 120) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if log.exists() and len(read_log(log)) >= rows:
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended before step {rows}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    pytest.fail(f"no step {rows} within {timeout} s")


def group_gone(pgid: int, timeout: float = 10) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def weights(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["nets"]


def assert_complete(run: Path) -> None:
    rows = read_log(run / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1)), "every step logged exactly once"
    assert all(int(r["images_seen"]) == 4 * int(r["step"]) for r in rows)
    text = (run / "log.csv").read_text()
    assert text.endswith("\n") and len(text.splitlines()) == STEPS + 1, "no torn or junk line left"
    val = [int(r["step"]) for r in read_log(run / "val.csv")]
    assert val == sorted(set(val)) and set(range(4, STEPS + 1, 4)) <= set(val), val  # + interrupt checkpoints
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["step"] == STEPS
    assert not [p for p in run.rglob("*.tmp")], "temporary files left behind"


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory):
    """The uninterrupted run (in this process; workers 2 as in the killed runs)."""
    tmp = tmp_path_factory.mktemp("reference")

    def cfg(steps, log_every=1, checkpoint_every=4):
        return {
            "method": "classification",
            "data": {"train": str(tiny_data / "train"), "val": str(tiny_data / "val"), "crop": 32, "batch_size": 4, "workers": 2, "val_count": 4, "val_photos": 0},
            "train": {"steps": steps, "log_every": log_every, "checkpoint_every": checkpoint_every, "seed": 0, "runs_dir": str(tmp), "run": "ref"},
            "model": {"widths": [8, 8, 8, 8], "lr": 3e-3},
        }

    run = train(load_config(raw=cfg(STEPS)), "cpu", progress=False)
    assert_complete(run)
    return run


@pytest.mark.slow
def test_sigterm_to_the_group_saves_one_checkpoint_and_resumes(tiny_config, tmp_path, reference):
    cfg, run = new_run(tiny_config, tmp_path, "term")
    at = random.Random().randint(2, STEPS - 4)
    proc = start(cfg)
    wait_for_rows(proc, run / "log.csv", at)
    os.killpg(proc.pid, signal.SIGTERM)  # main process and both workers
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err and "stopped by SIGTERM" in err, err[-2000:]
    assert group_gone(proc.pid), "a DataLoader worker outlived the run"
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    logged = [int(r["step"]) for r in read_log(run / "log.csv")]
    assert state["step"] == logged[-1] >= at, "the interrupt checkpoint holds the last logged step"

    proc = start(cfg)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert f"resuming term from step {state['step']}" in err
    assert_complete(run)


@pytest.mark.slow
def test_second_signal_while_saving_corrupts_nothing(tiny_config, tmp_path):
    cfg, run = new_run(tiny_config, tmp_path, "twice")
    proc = start(cfg)
    wait_for_rows(proc, run / "log.csv", 3)
    os.killpg(proc.pid, signal.SIGINT)
    for _ in range(5):  # impatient Ctrl-C presses while the interrupt checkpoint is written
        time.sleep(0.02)
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "stopped by SIGINT" in err
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["step"] == int(read_log(run / "log.csv")[-1]["step"])
    assert group_gone(proc.pid)


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_reaches_the_same_state(tiny_config, tmp_path, reference):
    cfg, run = new_run(tiny_config, tmp_path, "kill")
    rng = random.Random()
    # the second kill comes after the first checkpoint (step 4): with none, the last start is a
    # fresh run (nothing to resume, no torn line to report) - which the first kill still exercises
    first, second = rng.randrange(3, 7), rng.randrange(7, STEPS - 1)
    for target in (first, second):
        proc = start(cfg)
        wait_for_rows(proc, run / "log.csv", target)
        time.sleep(rng.random() * 0.3)  # anywhere inside a step, a log write or a checkpoint save
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        assert group_gone(proc.pid)
    with (run / "log.csv").open("a") as f:  # a row cut short by the kill, as a crash mid-write leaves it
        f.write(f"{STEPS + 7},1,12.")
    proc = start(cfg)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert "torn line" in err
    assert_complete(run)
    # the same final state as the uninterrupted run: steps, images, losses step by step, weights
    # (the training stream is a pure function of images_seen: experiments/datacache.py)
    got, want = read_log(run / "log.csv"), read_log(reference / "log.csv")
    assert [(r["step"], r["images_seen"], r["loss"]) for r in got] == [(r["step"], r["images_seen"], r["loss"]) for r in want]
    assert_same_weights(run, reference)


def assert_same_weights(run: Path, reference: Path) -> None:
    got, want = weights(run), weights(reference)
    for net in want:
        for k in want[net]:
            assert torch.equal(got[net][k], want[net][k]), f"{net}.{k} differs from the uninterrupted run"


@pytest.mark.slow
def test_resumed_run_has_the_uninterrupted_weights(tiny_config, tmp_path, reference):
    cfg, run = new_run(tiny_config, tmp_path, "same")
    proc = start(cfg)
    wait_for_rows(proc, run / "log.csv", 10)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=120)
    proc = start(cfg)
    assert proc.wait(timeout=300) == 0
    assert_same_weights(run, reference)


def test_torn_last_line_is_dropped_on_read_and_on_resume(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("step,epoch,loss\r\n1,0,0.5\r\n2,0,0.4\r\n3,0,0.")
    assert [r["step"] for r in read_log(log)] == ["1", "2"]
    log.write_text("step,epoch,loss\r\n1,0,0.5\r\n2,0\r\nxx,0,1\r\n3,0,0.3\r\n4,0,0.2")
    truncate_log(log, 3)
    assert log.read_bytes() == b"step,epoch,loss\r\n1,0,0.5\r\n3,0,0.3\r\n"
    log.write_text("step,ep")  # killed while writing the header
    truncate_log(log, 3)
    assert not log.exists()
    assert read_log(tmp_path / "missing.csv") == []


def test_overrides_may_follow_device(tiny_config, tmp_path):
    raw = tiny_config("classification", steps=2, model={"widths": [8, 8, 8, 8]}, checkpoint_every=2)
    cfg = write_config(raw, tmp_path / "c.toml")
    assert train_main(["--config", str(cfg), "--device", "cpu", "--no-progress", "train.steps=3", "train.checkpoint_every=3"]) == 0
    rows = read_log(Path(raw["train"]["runs_dir"]) / "classification" / "log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
