"""The run keeps its best checkpoint on the fixed validation photos, and shipping takes that one."""

from __future__ import annotations

import csv
import json

import pytest

import experiments.train as T
from experiments.config import load_config


def test_best_checkpoint_is_the_top_validation_row_and_is_what_ships(tiny_config, tmp_path, monkeypatch):
    raw = tiny_config("classification", steps=24, model={"widths": [8, 16, 16, 16], "lr": 3e-2}, checkpoint_every=6)
    raw["data"].update(val_photos=4, cache=False)
    run = T.train(load_config(raw=raw), "cpu", progress=False)
    rows = list(csv.DictReader((run / "val.csv").open()))
    assert len(rows) == 4
    top = max(rows, key=lambda r: float(r["val_auc_rebal"]))
    best = json.loads((run / "best.json").read_text())
    assert best["step"] == int(top["step"]) and best["validation"]["val_auc_rebal"] == pytest.approx(float(top["val_auc_rebal"]), abs=1e-5)
    assert (run / "best.pt").exists() and T.best_score(run) == best["validation"]["val_auc_rebal"]
    # grey's score on exactly the run's validation photos: the line the Training page draws under the curves
    ref = json.loads((run / "val_reference.json").read_text())
    photos = T.validation_photos(T.project_path(raw["data"]["val"]), 4, raw["train"]["seed"])
    assert ref["photos"] == [name for _, name in photos]
    assert ref["grey"]["val_auc_rebal"] == pytest.approx(T.validate_photos(T._Grey, photos)["val_auc_rebal"])
    assert 0.3 < ref["grey"]["val_auc_rebal"] < 1.0 and ref["grey"]["val_colorfulness_ratio"] == 0.0

    monkeypatch.setattr(T, "CHECKPOINT_DIR", tmp_path / "shipped")
    (tmp_path / "shipped").mkdir()
    dst = T.ship(run, "classification")
    shipped = json.loads(dst.with_suffix(".json").read_text())
    assert shipped["step"] == best["step"] and shipped["images_seen"] == best["images_seen"]
    # the gate ships only a strict gain: the same best again (a tie) leaves the shipped files alone
    monkeypatch.setattr(T, "validation_photos", lambda *a, **k: [])
    monkeypatch.setattr(T, "validate_photos", lambda model, photos: {"val_auc_rebal": 0.8})
    before = dst.read_bytes()
    assert T.ship(run, "classification", if_better=True) is None
    assert dst.read_bytes() == before and not list((tmp_path / "shipped").glob(".candidate-*"))

    # a fresh start forgets the old run's best
    T.train(load_config(raw={**raw, "train": {**raw["train"], "steps": 6}}), "cpu", fresh=True, progress=False)
    assert json.loads((run / "best.json").read_text())["step"] == 6
