"""The run keeps its best checkpoint on the fixed validation photos, and shipping takes that one."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import experiments.train as T
from experiments.config import load_config


def test_best_checkpoint_is_the_top_validation_row_and_is_what_ships(tiny_config, tmp_path, monkeypatch, capsys):
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
    # the rule for candidates picked by hand: a gain of at least min_margin on the gate, and a win on
    # other validation photos too (holdout) - else the shipped files stay as they were
    monkeypatch.setattr(T, "holdout_photos", lambda *a, **k: [])

    def scores(*values):
        it = iter(values)
        monkeypatch.setattr(T, "validate_photos", lambda model, photos: {"val_auc_rebal": next(it)})

    scores(0.8005, 0.8)  # candidate, shipped
    assert T.ship(run, "classification", if_better=True, min_margin=0.001) is None and dst.read_bytes() == before
    scores(0.802, 0.8, 0.81, 0.815)  # gate: candidate, shipped; then the other photos: candidate, shipped
    assert T.ship(run, "classification", if_better=True, min_margin=0.001, holdout=400) is None and dst.read_bytes() == before
    capsys.readouterr()
    scores(0.802, 0.8, 0.82, 0.815)
    assert T.ship(run, "classification", if_better=True, min_margin=0.001, holdout=400) == dst
    # whoever ships is told the README's tables are now another model's (experiments.readme --check fails until remade)
    assert "classification: the README's tables and grid still show the model this replaced" in capsys.readouterr().err
    gate = json.loads(dst.with_suffix(".json").read_text())["ship_gate"]
    assert gate["val_auc_rebal"] == 0.802 and gate["holdout"] == {"photos": 0, "val_auc_rebal": 0.82, "replaced_val_auc_rebal": 0.815}
    assert not list((tmp_path / "shipped").glob(".candidate-*"))
    # the out-of-distribution guard: a candidate that wins on the validation photos but loses photo
    # by photo on the guard's (its interval wholly below 0) is not shipped; a mixed result is
    monkeypatch.setattr(T, "guard_photos", lambda root: [(None, f"p{i}") for i in range(40)])
    each = {}
    monkeypatch.setattr(T, "auc_rebal_each", lambda model, photos: each.pop(0) if 0 in each else each.pop(1))
    rng = np.random.default_rng(0)
    base = rng.uniform(0.8, 0.85, 40)
    before = dst.read_bytes()
    scores(0.803, 0.802, 0.821, 0.82)
    each.update({0: base - 0.005 + rng.normal(0, 0.002, 40), 1: base})
    assert T.ship(run, "classification", if_better=True, min_margin=0.001, holdout=400, guard="../shared/data/test") is None
    assert dst.read_bytes() == before and "significantly worse" in capsys.readouterr().err
    scores(0.803, 0.802, 0.821, 0.82)
    each.update({0: base + rng.normal(0, 0.01, 40), 1: base})
    assert T.ship(run, "classification", if_better=True, min_margin=0.001, holdout=400, guard="../shared/data/test") == dst
    guard = json.loads(dst.with_suffix(".json").read_text())["ship_gate"]["guard"]
    assert guard["photos"] == 40 and guard["auc_rebal_diff"][1] < 0 < guard["auc_rebal_diff"][2]
    monkeypatch.setattr(T, "validate_photos", lambda model, photos: {"val_auc_rebal": 0.8})

    # a fresh start forgets the old run's best
    T.train(load_config(raw={**raw, "train": {**raw["train"], "steps": 6}}), "cpu", fresh=True, progress=False)
    assert json.loads((run / "best.json").read_text())["step"] == 6


def test_holdout_photos_are_outside_the_gate_and_the_tables(tiny_config):
    from experiments.evaluate import scan_photos

    root = T.project_path(tiny_config("classification")["data"]["val"])
    n = len(scan_photos(root))
    others = T.holdout_photos(root, n=100, gate=2, table=2)
    gate = {name for _, name in T.validation_photos(root, 2, 0)}
    table = {p.path.name for p in scan_photos(root, 2)}
    names = [name for _, name in others]
    assert len(names) == len(set(names)) == n - len(gate | table) > 0
    assert not set(names) & (gate | table)
    assert T.holdout_photos(root, n=100, gate=2, table=2)[0][1] == names[0]  # fixed: the same photos every time


def test_guard_interval_brackets_the_mean_difference():
    from experiments.metrics import bootstrap_ci

    def paired_interval(d):  # the guard's interval (experiments.train.guard_verdict)
        return bootstrap_ci(d, n_resamples=2000)[:3]

    d = np.random.default_rng(1).normal(-0.005, 0.01, 91)
    mean, lo, hi = paired_interval(d)
    assert mean == pytest.approx(d.mean()) and lo < mean < hi
    assert hi - lo == pytest.approx(2 * 1.96 * d.std() / np.sqrt(91), rel=0.2)  # the normal approximation's width
    assert paired_interval(np.full(10, -0.01))[2] < 0  # a loss on every photo is significant
