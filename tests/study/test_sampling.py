"""Sampling over many simulated participants: no photo twice, vigilance photos never scored,
arena pairs and sides balanced, never the same pair twice in a row, conditions balanced."""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy import stats as sps

from experiments.study.protocol import StudyDesign, arena_plan, condition_for, turing_plan

PHOTOS = [f"ph{i:03d}" for i in range(70)]
N_PARTICIPANTS = 400


def test_turing_photos_without_replacement_and_vigilance_never_scored():
    d = StudyDesign(name="t", methods=["a", "b", "c"], trials=40, practice=10, vigilance=0.1, seed=3).validate()
    left_fakes = n = 0
    scored_use = Counter()
    for k in range(N_PARTICIPANTS):
        pid = f"participant-{k}"
        trials = turing_plan(d, pid, condition_for(d, k), PHOTOS)
        photos = [t.photo for t in trials]
        assert len(photos) == len(set(photos)) == 54, "a photo came back within one participant"
        by_phase = {ph: {t.photo for t in trials if t.phase == ph} for ph in ("practice", "main", "vigilance")}
        assert not by_phase["vigilance"] & by_phase["main"] and not by_phase["practice"] & by_phase["main"]
        assert [t.phase for t in trials[:10]] == ["practice"] * 10
        scored_use.update(by_phase["main"])
        left_fakes += sum(t.fake_side == "left" for t in trials)
        n += len(trials)
    # the fake's side is a fair coin: two-sided binomial test at the 1 % level, decided before running
    assert sps.binomtest(left_fakes, n, 0.5).pvalue > 0.01
    # every photo is scored about equally often across participants
    counts = np.array([scored_use[p] for p in PHOTOS])
    expected = N_PARTICIPANTS * 40 / len(PHOTOS)
    assert sps.chisquare(counts).pvalue > 0.01 and counts.min() > 0.6 * expected


def test_conditions_balanced_after_every_block():
    d = StudyDesign(name="t", methods=["a", "b", "c"], seed=5)
    seen = Counter()
    for k in range(N_PARTICIPANTS):
        seen[condition_for(d, k)] += 1
        if (k + 1) % 3 == 0:
            assert set(seen.values()) == {(k + 1) // 3}


def test_arena_pairs_and_sides_balanced_and_never_repeated_back_to_back():
    d = StudyDesign(name="ar", kind="arena", methods=["a", "b", "c", "d"], trials=30, practice=0, vigilance=0, seed=9).validate()
    total_sides = Counter()
    for k in range(N_PARTICIPANTS):
        trials = arena_plan(d, f"p{k}", PHOTOS[:12], 30)
        unordered = Counter(frozenset((t.left, t.right)) for t in trials)
        assert len(unordered) == 6 and max(unordered.values()) - min(unordered.values()) <= 1
        ordered = Counter((t.left, t.right) for t in trials)
        for pair in unordered:
            a, b = sorted(pair)
            assert abs(ordered[(a, b)] - ordered[(b, a)]) <= 1, "one side favoured for a pair"
        total_sides.update(ordered)
        for prev, cur in zip(trials, trials[1:]):
            assert cur.photo != prev.photo, "the same photo twice in a row"
            assert {cur.left, cur.right} != {prev.left, prev.right}, "the same method pair twice in a row"
        photos = [t.photo for t in trials]
        assert len(set(photos[:12])) == 12 and len(set(photos[12:24])) == 12  # without replacement per round
    for (a, b), n in total_sides.items():
        assert abs(n - total_sides[(b, a)]) <= N_PARTICIPANTS // 10


def test_arena_with_two_methods_and_one_photo_alternates_sides():
    d = StudyDesign(name="ar", kind="arena", methods=["a", "b"], trials=6, practice=0, vigilance=0, seed=1).validate()
    trials = arena_plan(d, "p", ["only"], 6)
    assert all((p.left, p.right) != (c.left, c.right) for p, c in zip(trials, trials[1:]))
