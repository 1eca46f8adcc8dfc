"""Checkpoint averaging (experiments.average): the mean of the weights, provenance, refusals."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch

from backends.fusion import FusionColorizer, FusionConfig
from backends.regression import Config as RegressionConfig
from backends.regression import RegressionColorizer
from experiments import average
from tests.backends.test_fusion import TINY
from tests.backends.test_regression import SMALL
from tests.backends.test_regression import batch as regression_batch
from tests.conftest import PROJECT


def fusion_batch(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"L": torch.rand(2, 1, 32, 32, generator=g) * 100, "ab": torch.randn(2, 2, 32, 32, generator=g) * 20, "label": torch.tensor([0, 1])}


def trained_checkpoints(tmp_path, make, step_batch, seeds, ext):
    """One model trained on a different batch per checkpoint, saved after each of ``seeds``."""
    m = make()
    paths = []
    for i, seed in enumerate(seeds):
        for _ in range(3):
            m.train_step(step_batch(seed))
        m.step = 3 * (i + 1)
        paths.append(m.save(tmp_path / f"ck{i}{ext}", {"images_seen": 100 * (i + 1), "step": m.step, "run": "r", "validation": {"val_auc_rebal": 0.8}}))
    return paths


def test_fusion_average_is_the_mean_of_the_weights_and_says_where_it_came_from(tmp_path):
    torch.manual_seed(0)
    paths = trained_checkpoints(tmp_path, lambda: FusionColorizer(FusionConfig(**TINY), "cpu"), fusion_batch, [1, 2, 3], ".pt")
    arrays = [FusionColorizer.from_checkpoint(p, "cpu").weight_arrays() for p in paths]
    out = tmp_path / "avg.pt"
    assert average.main(["--method", "fusion", "--out", str(out), *map(str, paths)]) == 0
    avg = FusionColorizer.from_checkpoint(out, "cpu")
    got = avg.weight_arrays()
    moved = 0
    for k, v in got.items():
        if np.issubdtype(v.dtype, np.floating):
            want = np.mean([a[k] for a in arrays], axis=0)
            np.testing.assert_allclose(v, want, rtol=2e-3, atol=2e-3)  # stored in float16
            moved += not np.allclose(arrays[0][k], arrays[-1][k])
        else:
            np.testing.assert_array_equal(v, arrays[-1][k])  # BatchNorm's batch counter: the last one's
    assert moved > 10  # the checkpoints really differ, so the mean is not any one of them
    meta = avg.load(out, training=False)
    assert meta["images_seen"] == 300  # no more than the latest checkpoint saw: inside the budget
    assert [c["images_seen"] for c in meta["averaged"]["checkpoints"]] == [100, 200, 300]
    from experiments.modelcard import make_card

    assert "weights averaged over 3 checkpoints of the run (100-300 images)" in make_card("fusion", meta)["variant"]
    rgb = avg.colorize(np.full((40, 48), 128, np.uint8))
    assert rgb.shape == (40, 48, 3)


def test_regression_average_through_keras_weights(tmp_path):
    paths = trained_checkpoints(tmp_path, lambda: RegressionColorizer(RegressionConfig(**SMALL), "cpu"), regression_batch, [1, 2], ".keras")
    arrays = [RegressionColorizer.from_checkpoint(p, "cpu").weight_arrays() for p in paths]
    model, meta = average.average("regression", [str(p) for p in paths])
    got = model.weight_arrays()
    assert set(got) == set(arrays[0])
    for k, v in got.items():
        np.testing.assert_allclose(v, (arrays[0][k] + arrays[1][k]) / 2, rtol=1e-5, atol=1e-6)
    assert meta["images_seen"] == 200 and len(meta["averaged"]["checkpoints"]) == 2


def test_refuses_other_networks_other_methods_and_missing_files(tmp_path, capsys):
    a = FusionColorizer(FusionConfig(**TINY), "cpu").save(tmp_path / "a.pt")
    b = FusionColorizer(FusionConfig(**{**TINY, "widths": [8, 8, 16, 32]}), "cpu").save(tmp_path / "b.pt")
    assert average.main(["--method", "fusion", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert str(b) in err and "configuration differs" in err
    assert average.main(["--method", "gan", str(a), str(a)]) == 2
    assert "not 'gan'" in capsys.readouterr().err
    assert average.main(["--method", "fusion", str(a), str(tmp_path / "nope.pt")]) == 2
    assert "nope.pt: checkpoint not found" in capsys.readouterr().err



def test_one_checkpoint_is_scored_by_the_rule_as_it_is(tmp_path, monkeypatch, capsys):
    """A run's single best checkpoint goes through the same gate as a mean of several: its own
    weights and provenance, nothing "averaged" in what would ship, and "candidate" in the output."""
    import experiments.train as T

    paths = trained_checkpoints(tmp_path, lambda: FusionColorizer(FusionConfig(**TINY), "cpu"), fusion_batch, [1, 2], ".pt")
    model, meta = average.average("fusion", [str(paths[1])])
    ref = FusionColorizer.from_checkpoint(paths[1], "cpu").weight_arrays()
    assert all(np.array_equal(model.weight_arrays()[k], ref[k]) for k in ref)
    assert "averaged" not in meta and meta["images_seen"] == 200

    shipped_dir = tmp_path / "shipped"
    shipped_dir.mkdir()
    (shipped_dir / "fusion.pt").write_bytes(paths[0].read_bytes())
    monkeypatch.setattr(T, "CHECKPOINT_DIR", shipped_dir)
    photos = [(np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8), f"g{i}.png") for i in range(3)]
    monkeypatch.setattr(T, "validation_photos", lambda root, n, seed=0: photos[:n])
    assert average.main(["--method", "fusion", str(paths[1]), "--gate-only", "--val-photos", "3"]) == 0
    assert capsys.readouterr().out.startswith("fusion: candidate ")
    with pytest.raises(ValueError, match="no checkpoints"):
        average.average("fusion", [])


def test_committed_checkpoints_are_read_from_git(tmp_path):
    shipped = "results/checkpoints/fusion.pt"
    if subprocess.run(["git", "cat-file", "-e", f"HEAD:{shipped}"], cwd=PROJECT, capture_output=True).returncode != 0:
        pytest.skip("no git history with a shipped fusion checkpoint")
    model, meta = average.average("fusion", [f"HEAD:{shipped}", f"HEAD:{shipped}"])
    ref = FusionColorizer.from_checkpoint(average.resolve_source(f"HEAD:{shipped}", tmp_path), "cpu").weight_arrays()
    got = model.weight_arrays()
    assert all(np.allclose(got[k], ref[k], atol=1e-3) for k in ref)  # the mean of one model twice is that model
    assert meta["averaged"]["checkpoints"][0]["source"] == f"HEAD:{shipped}"
    with pytest.raises(Exception, match="not in git"):
        average.average("fusion", ["no-such-rev:results/checkpoints/fusion.pt", f"HEAD:{shipped}"])


def test_a_run_keeps_its_trajectory_and_the_average_of_it_ships_only_when_better(tiny_config, tmp_path, monkeypatch):
    import experiments.train as T
    from experiments.config import load_config

    raw = tiny_config("classification", steps=24, model={"widths": [8, 16, 16, 16], "lr": 3e-2}, checkpoint_every=6, snapshots_from=48)
    raw["data"].update(cache=False)  # batch 4: 6 steps = 24 images; snapshots from step 12 on
    run = T.train(load_config(raw=raw), "cpu", progress=False)
    snaps = sorted((run / "snapshots").glob("images_*.pt"))
    assert [p.name for p in snaps] == ["images_0000048.pt", "images_0000072.pt", "images_0000096.pt"]
    model, meta = average.average("classification", [str(p) for p in snaps])
    assert meta["images_seen"] == 96 and meta["run"] == run.name

    monkeypatch.setattr(T, "CHECKPOINT_DIR", tmp_path / "shipped")
    (tmp_path / "shipped").mkdir()
    monkeypatch.setattr(T, "validation_photos", lambda *a, **k: [])
    scores = iter([0.81, 0.80])  # candidate (the average), then the shipped model
    monkeypatch.setattr(T, "validate_photos", lambda m, photos: {"val_auc_rebal": next(scores, 0.5)})
    T.ship(run, "classification")  # something shipped to beat
    dst = T.ship_model(model, meta, f"results/runs/{run.name}", if_better=True)
    shipped = json.loads(dst.with_suffix(".json").read_text())
    assert shipped["ship_gate"] == {"photos": 0, "val_auc_rebal": 0.81, "replaced_val_auc_rebal": 0.8}
    assert len(shipped["averaged"]["checkpoints"]) == 3

    # resuming from an earlier checkpoint drops the snapshots of the abandoned later trajectory;
    # a fresh start drops them all
    T.drop_snapshots(run, after=72)
    assert sorted(p.name for p in (run / "snapshots").glob("*.pt")) == ["images_0000048.pt", "images_0000072.pt"]
    T.train(load_config(raw={**raw, "train": {**raw["train"], "steps": 6}}), "cpu", fresh=True, progress=False)
    assert not list((run / "snapshots").glob("*.pt"))


def fake_validation_photos(T, monkeypatch) -> tuple[list, list]:
    """Three gate photos and two others, in place of the validation set's, for the ship gate."""
    rng = np.random.default_rng(0)
    gate = [(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8), f"g{i}.png") for i in range(3)]
    others = [(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8), f"o{i}.png") for i in range(2)]
    monkeypatch.setattr(T, "validation_photos", lambda root, n, seed=0: gate[:n])
    monkeypatch.setattr(T, "holdout_photos", lambda root, n, gate_n, gate_seed=0: others[:n])
    return gate, others


def test_gate_only_scores_the_average_and_the_shipped_model_and_ships_nothing(tmp_path, monkeypatch, capsys):
    """A run's snapshots averaged before its budget is reached: the gate's numbers, nothing shipped."""
    import experiments.train as T

    paths = trained_checkpoints(tmp_path, lambda: FusionColorizer(FusionConfig(**TINY), "cpu"), fusion_batch, [1, 2], ".pt")
    shipped_dir = tmp_path / "shipped"
    shipped_dir.mkdir()
    shipped = shipped_dir / "fusion.pt"
    shipped.write_bytes(paths[0].read_bytes())  # the first checkpoint is "shipped"
    before = shipped.read_bytes()
    monkeypatch.setattr(T, "CHECKPOINT_DIR", shipped_dir)
    gate, others = fake_validation_photos(T, monkeypatch)

    assert average.main(["--method", "fusion", *map(str, paths), "--gate-only", "--val-photos", "3", "--holdout", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    model, meta = average.average("fusion", list(map(str, paths)))
    model = FusionColorizer.from_checkpoint(model.save(tmp_path / "as-shipped.pt", meta, training=False, half=True), "cpu")  # scored as it would ship
    old = FusionColorizer.from_checkpoint(shipped, "cpu")
    new_gate, old_gate = (T.validate_photos(m, gate)["val_auc_rebal"] for m in (model, old))
    new_other, old_other = (T.validate_photos(m, others)["val_auc_rebal"] for m in (model, old))
    assert out == [f"fusion: average {new_gate:.4f}, shipped {old_gate:.4f} ({new_gate - old_gate:+.4f}) on the gate's 3 validation photos",
                   f"fusion: average {new_other:.4f}, shipped {old_other:.4f} ({new_other - old_other:+.4f}) on 2 other validation photos"]  # fmt: skip
    assert shipped.read_bytes() == before and sorted(p.name for p in shipped_dir.iterdir()) == ["fusion.pt"]

    # no gate photos asked for (only the others, or only the guard's): those numbers, no traceback
    assert average.main(["--method", "fusion", *map(str, paths), "--gate-only", "--val-photos", "0", "--holdout", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [out[1]]


def test_ship_at_budget_replaces_even_a_model_that_scores_as_high_and_says_what_it_replaced(tmp_path, monkeypatch, capsys):
    """The equal-budget rule: the method's model at the common budget ships whatever the gate says;
    its card carries the gate's numbers against the model it replaced, and that model's run."""
    import experiments.train as T

    paths = trained_checkpoints(tmp_path, lambda: FusionColorizer(FusionConfig(**TINY), "cpu"), fusion_batch, [1], ".pt")
    shipped_dir = tmp_path / "shipped"
    shipped_dir.mkdir()
    one = FusionColorizer.from_checkpoint(paths[0], "cpu")
    one.save(shipped_dir / "fusion.pt", {}, training=False, half=True)  # the very weights, as they ship: never "better"
    (shipped_dir / "fusion.json").write_text(json.dumps({"run": "fusion-longer", "images_seen": 340008}))
    monkeypatch.setattr(T, "CHECKPOINT_DIR", shipped_dir)
    gate, others = fake_validation_photos(T, monkeypatch)
    args = ["--method", "fusion", str(paths[0]), "--val-photos", "3", "--holdout", "2"]

    assert average.main([*args, "--ship-if-better"]) == 0
    assert "not shipped" in capsys.readouterr().out
    assert json.loads((shipped_dir / "fusion.json").read_text())["run"] == "fusion-longer"

    assert average.main([*args, "--ship-at-budget"]) == 0
    assert "shipped" in capsys.readouterr().out
    card = json.loads((shipped_dir / "fusion.json").read_text())
    assert card["run"] == "r" and card["images_seen"] == 100
    g = card["ship_gate"]
    assert g["replaced"] == {"run": "fusion-longer", "images_seen": 340008} and g["rule"].startswith("equal budget")
    assert g["val_auc_rebal"] == g["replaced_val_auc_rebal"] and g["holdout"]["photos"] == 2
    assert sorted(p.name for p in shipped_dir.iterdir()) == ["fusion.json", "fusion.pt"]  # no candidate left behind


def test_the_device_export_carries_the_snapshot_mean_only_when_it_scores_as_high_as_the_best(tiny_config, tmp_path, monkeypatch):
    """gpu_train.sh's export: one model fits in the file that comes back from the device, so the
    run's snapshot mean goes when it scores at least as high as the best checkpoint, else the best."""
    import experiments.train as T
    from backends.classification import ClassificationColorizer
    from experiments.config import load_config
    from experiments.device_import import export_run, import_archive

    raw = tiny_config("classification", steps=24, model={"widths": [8, 16, 16, 16], "lr": 3e-2}, checkpoint_every=6, snapshots_from=48)
    raw["data"].update(cache=False)
    run = T.train(load_config(raw=raw), "cpu", progress=False)
    snaps = sorted((run / "snapshots").glob("images_*.pt"))
    assert len(snaps) == 3
    best = json.loads((run / "best.json").read_text())
    score = best["validation"]["val_auc_rebal"]

    monkeypatch.setattr(T, "validate_photos", lambda m, photos: {"val_auc_rebal": score + 0.01})
    home = import_archive(export_run(run, tmp_path / "out"), tmp_path / "home")
    meta = json.loads((home / "model.json").read_text())
    assert meta["export_choice"]["exported"] == "snapshot mean" and meta["export_choice"]["snapshots"] == 3
    assert meta["validation"]["val_auc_rebal"] == pytest.approx(score + 0.01)
    assert [c["images_seen"] for c in meta["averaged"]["checkpoints"]] == [48, 72, 96]
    want = average.average("classification", [str(p) for p in snaps])[0].weight_arrays()
    got = ClassificationColorizer.from_checkpoint(home / "model.pt", "cpu").weight_arrays()
    for k, v in want.items():
        np.testing.assert_allclose(got[k], v, rtol=2e-3, atol=2e-3)

    monkeypatch.setattr(T, "validate_photos", lambda m, photos: {"val_auc_rebal": score - 0.01})
    home = import_archive(export_run(run, tmp_path / "out2"), tmp_path / "home2")
    meta = json.loads((home / "model.json").read_text())
    assert meta["export_choice"]["exported"] == "best checkpoint" and "averaged" not in meta
    assert meta["images_seen"] == best["images_seen"]
    want = ClassificationColorizer.from_checkpoint(run / "best.pt", "cpu").weight_arrays()
    got = ClassificationColorizer.from_checkpoint(home / "model.pt", "cpu").weight_arrays()
    moved = sum(not np.allclose(got[k], v, rtol=2e-3, atol=2e-3) for k, v in want.items() if np.issubdtype(v.dtype, np.floating))
    assert moved == 0


def test_a_run_at_its_budget_ships_its_last_weights_or_its_snapshot_mean_whichever_scores_higher(tiny_config, tmp_path, monkeypatch, capsys):
    """The equal-budget rule in one command (``--run``): the run's last weights against the mean of
    its snapshots over the budget's last images, scored on the gate's and the other photos
    together; the winner ships, the comparison in its card; the mean is kept beside the run (git
    does not keep snapshots) and stands in for them once they are gone."""
    import experiments.train as T
    from backends.classification import ClassificationColorizer
    from experiments.config import load_config

    raw = tiny_config("classification", steps=24, model={"widths": [8, 16, 16, 16], "lr": 3e-2}, checkpoint_every=6, snapshots_from=48)
    raw["data"].update(cache=False)
    run = T.train(load_config(raw=raw), "cpu", progress=False)  # snapshots at 48, 72, 96 images
    shipped_dir = tmp_path / "shipped"
    shipped_dir.mkdir()
    monkeypatch.setattr(T, "CHECKPOINT_DIR", shipped_dir)
    fake_validation_photos(T, monkeypatch)
    favour = {"mean": True}  # which candidate the (fake) photos prefer

    def score(model, photos):
        mean = bool(model.checkpoint_meta.get("averaged"))
        return {"val_auc_rebal": 0.83 if mean == favour["mean"] else 0.82}

    monkeypatch.setattr(T, "validate_photos", score)
    args = ["--method", "classification", "--run", str(run), "--window", "30", "--val-photos", "3", "--holdout", "2", "--ship-at-budget"]
    assert average.main(args) == 0
    assert "chosen snapshot mean" in capsys.readouterr().out
    card = json.loads((shipped_dir / "classification.json").read_text())
    choice = card["budget_choice"]
    assert choice["chosen"] == "snapshot mean" and choice["snapshots"] == 2  # 72 and 96: the last 30 images' snapshots
    assert choice["photos"] == 5
    assert choice["scores"]["snapshot mean"] == {"gate": 0.83, "holdout": 0.83, "all": 0.83} and choice["scores"]["last"]["all"] == 0.82
    assert [c["images_seen"] for c in card["averaged"]["checkpoints"]] == [72, 96] and card["images_seen"] == 96
    want = average.average("classification", [str(run / "snapshots" / f"images_{n:07d}.pt") for n in (72, 96)])[0].weight_arrays()
    got = ClassificationColorizer.from_checkpoint(shipped_dir / "classification.pt", "cpu").weight_arrays()
    assert all(np.allclose(got[k], v, rtol=2e-3, atol=2e-3) for k, v in want.items())
    assert (run / "snapshot-mean.pt").exists()

    # a new checkout has the committed mean, not the snapshots: the same two candidates
    for p in (run / "snapshots").glob("*.pt"):
        p.unlink()
    assert set(average.budget_candidates("classification", run, 30)) == {"last", "snapshot mean"}

    favour["mean"] = False
    assert average.main(args) == 0
    card = json.loads((shipped_dir / "classification.json").read_text())
    assert card["budget_choice"]["chosen"] == "last" and "averaged" not in card and card["images_seen"] == 96
    assert card["ship_gate"]["replaced"]["images_seen"] == 96  # the mean it replaced, of the same run

    (run / "resume.pt").unlink()
    assert average.main(args) == 2
    assert f"{run / 'resume.pt'}: not found" in capsys.readouterr().err
