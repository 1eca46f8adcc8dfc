"""Model cards describe what the shipped model was trained on, across a continuation too."""

from __future__ import annotations

from experiments.modelcard import crops_of, make_card


def meta(schedule, continued=None):
    m = {"config": {"method": "fusion", "data": {"train": ["data/train"], "crop": 64, "batch_size": 32, "schedule": schedule}, "model": {}}}
    if continued:
        m["continued_from"] = continued
    return m


def test_a_continued_run_shows_its_parents_crops_then_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    (tmp_path / "runs" / "base").mkdir(parents=True)
    (tmp_path / "runs" / "base" / "config.toml").write_text('method = "fusion"\n[data]\ncrop = 64\nbatch_size = 32\nschedule = [[200000, 128, 16]]\n')
    cont = meta([[200000, 160, 12]], {"run": "base", "images_seen": 300000})
    assert crops_of(cont) == ["64 px (batch 32)", "128 px (batch 16) from 200,000 images", "160 px (batch 12) from 300,000 images"]
    assert make_card("fusion", cont)["crops"] == crops_of(cont)
    # the same schedule on both sides of the continuation stays one phase
    same = meta([[200000, 128, 16]], {"run": "base", "images_seen": 300000})
    assert crops_of(same) == ["64 px (batch 32)", "128 px (batch 16) from 200,000 images"]
    # a parent whose config is gone: the run's own schedule, as before
    gone = meta([[200000, 160, 12]], {"run": "deleted", "images_seen": 300000})
    assert crops_of(gone) == ["64 px (batch 32)", "160 px (batch 12) from 200,000 images"]
    assert crops_of(meta([])) == ["64 px (batch 32)"]


def test_the_card_says_when_the_learning_rate_decayed():
    """A learning-rate decay outside the paper is a deviation the card names; the gan's is pix2pix's own."""
    from experiments.modelcard import variant

    decayed = {"model": {"encoder": "squeezenet", "global_branch": "learned", "decay_start": 12500, "decay_steps": 3334}}
    assert "decayed linearly to 0 over steps 12,500-15,834" in variant("fusion", decayed)
    assert "decayed" not in variant("fusion", {"model": {"encoder": "squeezenet", "global_branch": "learned"}})
    assert "decayed" not in variant("gan", {"model": {"decay_start": 6250, "decay_steps": 6250}})


def test_the_card_says_how_the_equal_budget_rule_picked_the_weights():
    choice = {"chosen": "last", "photos": 600, "scores": {"snapshot mean": {"all": 0.8429}, "last": {"all": 0.8436}}}
    card = make_card("fusion", {**meta([]), "budget_choice": choice})
    assert card["variant"].endswith("; last shipped by the equal-budget rule (last 0.8436 against snapshot mean 0.8429 on 600 validation photos)")
    assert "equal-budget" not in make_card("fusion", meta([]))["variant"]


def test_a_branch_of_a_trunk_names_the_whole_chain_it_continued_from(tmp_path, monkeypatch):
    """A round's branch went on from its trunk, which went on from an earlier run's 64-px phase: the
    card names both, as far as results/runs has their records."""
    import json

    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    for run, parent in [("fusion-t160", {"run": "fusion-squeezenet", "images_seen": 200_000}), ("fusion-squeezenet", None)]:
        (tmp_path / "runs" / run).mkdir(parents=True)
        (tmp_path / "runs" / run / "resume.json").write_text(json.dumps({"continued_from": parent} if parent else {}))
    branch = meta([[200000, 160, 12]], {"run": "fusion-t160", "images_seen": 360_008, "file": "results/runs/fusion-t160/resume.pt"})
    assert make_card("fusion", branch)["variant"].endswith(
        "; continued from run fusion-t160 at 360,008 images, which continued from run fusion-squeezenet at 200,000 images")
    (tmp_path / "runs" / "fusion-t160" / "resume.json").unlink()  # the trunk's record gone: what the card itself knows
    assert make_card("fusion", branch)["variant"].endswith("; continued from run fusion-t160 at 360,008 images")
    assert "continued" not in make_card("fusion", meta([]))["variant"]
