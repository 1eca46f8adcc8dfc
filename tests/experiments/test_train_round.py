"""experiments/scripts/train_round.sh: a round that raises every method's budget together - a
constant-rate trunk, then a branch whose rate falls to 0 over the budget's last images - resumed
where each run stands (DRY_RUN prints the commands it would run)."""

from __future__ import annotations

import json
import os
import subprocess

from tests.conftest import PROJECT


def dry_run(tmp_path, **env) -> list[str]:
    r = subprocess.run(["bash", "experiments/scripts/train_round.sh"], cwd=PROJECT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "DRY_RUN": "1", "RUNS_DIR": str(tmp_path), "METHODS": "koalarization", **env})  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


def commands(lines: list[str]) -> list[str]:
    return [ln for ln in lines if "-m experiments.train" in ln]


def test_a_fresh_round_starts_the_trunk_from_64px_phase_weights_then_branches_with_the_decay(tmp_path):
    trunk, branch = commands(dry_run(tmp_path))
    assert "train.run=koalarization-t160 train.images=360000" in trunk
    # koalarization's 180,000-image weights of the same recipe, read from git for the run
    init = trunk.split("--init-from ")[1].split()[0]
    assert init.endswith("/koalarization-init.pt") and not init.startswith(str(tmp_path))
    assert "model.decay_start=0 model.decay_steps=0" in trunk and f"train.runs_dir={tmp_path}" in trunk
    # the branch starts where the trunk ends: 6,250 steps of 32 to 200,000 images, 13,334 of 12 to 360,008;
    # the rate reaches 0 over the 3,333 steps of 12 to 400,000
    assert "train.run=koalarization-r400 train.images=400000" in branch
    assert "model.decay_start=19584 model.decay_steps=3333" in branch
    assert f"--init-from {tmp_path}/koalarization-t160/resume.pt" in branch


def test_a_finished_trunk_is_skipped_and_another_budget_moves_the_branch(tmp_path):
    (tmp_path / "koalarization-t160").mkdir()
    (tmp_path / "koalarization-t160" / "resume.json").write_text(json.dumps({"images_seen": 300_008}))
    lines = dry_run(tmp_path, BUDGET="340000", DECAY="40000")
    assert any("koalarization-t160: at 300008 images, done" in ln for ln in lines)
    (branch,) = commands(lines)
    assert "train.run=koalarization-r340 train.images=340000" in branch
    assert "model.decay_start=14584 model.decay_steps=3333" in branch  # 6,250 + 8,334 steps to 300,008


def test_a_run_with_committed_weights_resumes_from_them(tmp_path):
    (tmp_path / "koalarization-t160").mkdir()
    (tmp_path / "koalarization-t160" / "resume.json").write_text(json.dumps({"images_seen": 250_000}))
    (tmp_path / "koalarization-t160" / "resume.pt").write_bytes(b"weights")
    trunk = commands(dry_run(tmp_path))[0]
    assert f"--init-from {tmp_path}/koalarization-t160/resume.pt" in trunk and "train.images=360000" in trunk


def test_after_the_branch_its_snapshot_mean_is_kept_and_scored_once(tmp_path):
    lines = dry_run(tmp_path)
    (mean,) = [ln for ln in lines if "-m experiments.average" in ln]
    assert f"--method koalarization --run {tmp_path}/koalarization-r400 --window 40000 --gate-only --holdout 400" in mean
    assert lines.index(mean) > lines.index(commands(lines)[1])  # after the branch has reached the budget
    (tmp_path / "koalarization-r400").mkdir()
    (tmp_path / "koalarization-r400" / "snapshot-mean.pt").write_bytes(b"weights")
    assert not [ln for ln in dry_run(tmp_path) if "-m experiments.average" in ln]


def at_budget(tmp_path, methods, images=400_004):
    for m in methods:
        (tmp_path / f"{m}-r400").mkdir()
        (tmp_path / f"{m}-r400" / "resume.json").write_text(json.dumps({"images_seen": images}))


def test_the_round_ships_all_five_together_only_when_every_branch_has_reached_the_budget(tmp_path):
    five = ["classification", "regression", "fusion", "koalarization", "gan"]
    at_budget(tmp_path, five[:4])  # the gan's branch still short of it: nothing ships, whatever METHODS trained
    lines = dry_run(tmp_path)
    assert not [ln for ln in lines if "--ship-at-budget" in ln or "experiments.readme" in ln]
    assert any("nothing ships yet: gan-r400 has not reached 400000 images" in ln for ln in lines)
    at_budget(tmp_path, ["gan"])
    lines = dry_run(tmp_path)
    ships = [ln for ln in lines if "--ship-at-budget" in ln]
    assert [ln.split("--method ")[1].split()[0] for ln in ships] == five
    assert all(f"--run {tmp_path}/{m}-r400 " in ln for m, ln in zip(five, ships))
    assert all("--holdout 400" in ln and "--guard ../shared/data/test" in ln for ln in ships)
    # then the tables, grid and cards, once, re-evaluating the five (neural_style untrained: its rows kept)
    assert lines[-1].endswith("-m experiments.readme --refresh --methods " + ",".join(five))
    assert not [ln for ln in dry_run(tmp_path, SHIP="0") if "--ship-at-budget" in ln or "experiments.readme" in ln]
