"""Optional training log sinks beside the CSV: TensorBoard (and W&B when installed); off by default."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from experiments import logsinks

tensorboard = pytest.importorskip("tensorboard")


def read_events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_off_by_default_and_unknown_sinks_are_named(monkeypatch, tmp_path):
    monkeypatch.delenv(logsinks.ENV, raising=False)
    assert logsinks.open_sinks(tmp_path).names == []
    assert logsinks.requested("csv, none") == []
    with pytest.raises(ValueError, match="unknown sink.*mlflow; known: tensorboard, wandb"):
        logsinks.requested("tensorboard,mlflow")


def test_tensorboard_events_hold_the_scalars_and_sample_grids(tmp_path):
    sinks = logsinks.open_sinks(tmp_path / "run", {"method": "gan", "train": {"steps": 3}}, "tensorboard")
    for step in (1, 2, 3):
        sinks.scalars(step, {"loss_g": 1.0 / step, "loss_d": 0.5, "note": "text is skipped"}, "train")
    sinks.scalars(3, {"auc_rebal": 0.81}, "val")
    sinks.image(3, "samples", np.zeros((12, 20, 3), np.uint8))
    sinks.close()
    acc = read_events(tmp_path / "run" / "tensorboard")
    assert [round(e.value, 4) for e in acc.Scalars("train/loss_g")] == [1.0, 0.5, 0.3333]
    assert [e.step for e in acc.Scalars("train/loss_g")] == [1, 2, 3]
    assert acc.Scalars("val/auc_rebal")[0].value == pytest.approx(0.81)
    assert acc.Images("samples")[0].width == 20


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_wandb_without_the_package_says_what_to_install(tmp_path):
    with pytest.raises(ValueError, match="pip install wandb"):
        logsinks.open_sinks(tmp_path, {}, "wandb")


def test_a_failing_sink_is_dropped_and_training_logs_go_on(tmp_path, capsys):
    class Broken:
        name = "broken"

        def scalars(self, *a):
            raise OSError("disk full")

    sinks = logsinks.Sinks([Broken()])
    sinks.scalars(1, {"loss": 1.0})
    sinks.scalars(2, {"loss": 1.0})
    assert sinks.names == [] and capsys.readouterr().err.count("log sink broken failed") == 1


def test_a_training_run_logs_to_tensorboard_beside_its_csv(tiny_data, tmp_path, monkeypatch):
    from experiments.config import load_config
    from experiments.train import train

    monkeypatch.setenv(logsinks.ENV, "tensorboard")
    raw = {"method": "gan",
           "data": {"train": str(tiny_data / "train"), "val": str(tiny_data / "val"), "crop": 32, "batch_size": 4, "workers": 0,
                    "val_count": 4, "val_photos": 4, "cache": False},
           "train": {"steps": 2, "log_every": 1, "checkpoint_every": 2, "seed": 0, "runs_dir": str(tmp_path / "runs")},
           "model": {"ngf": 8, "ndf": 8, "n_down": 5}}  # fmt: skip
    run = train(load_config(raw=raw), "cpu", progress=False)
    assert (run / "log.csv").read_text().count("\n") == 3  # the CSV is still the record
    acc = read_events(run / "tensorboard")
    tags = acc.Tags()["scalars"]
    assert "train/loss_g" in tags and "train/loss_d" in tags and [e.step for e in acc.Scalars("train/loss_g")] == [1, 2]
    assert any(t.startswith("val/") for t in tags) and acc.Tags()["images"] == ["samples"]
