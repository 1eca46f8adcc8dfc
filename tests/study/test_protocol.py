from collections import Counter

import pytest

from experiments.study.errors import InvalidDesign, NotEnoughPhotos
from experiments.study.protocol import REAL, VIGILANCE, StudyDesign, arena_plan, arena_trial, condition_for, turing_plan

PHOTOS = [f"p{i:02d}" for i in range(60)]


def design(**kw) -> StudyDesign:
    base = dict(name="d", methods=["a", "b", "c"], photos=[], seed=11)
    return StudyDesign(**(base | kw)).validate()


def test_defaults_follow_zhang_et_al():
    d = design()
    assert (d.trials, d.practice, d.vigilance, d.display_ms, d.size) == (40, 10, 0.10, 0, 256)
    assert d.n_vigilance == 4 and d.total_trials == 54


@pytest.mark.parametrize(
    "bad",
    [
        dict(name="Bad Name"),
        dict(kind="poll"),
        dict(methods=[]),
        dict(methods=["a", "a"]),
        dict(methods=["real"]),
        dict(kind="arena", methods=["a"]),
        dict(vigilance=1.0),
        dict(size=8),
        dict(trials=0),
        dict(name="pilot\n"),  # a full match: no trailing newline
        dict(name="pilot/../x"),
        dict(trials="abc"),
        dict(trials=2.5),
        dict(trials=True),
        dict(practice=-1),
        dict(size=2**70),
        dict(vigilance="0.1"),
        dict(methods="ab"),
        dict(methods=["a b"]),
        dict(photos=["x", "x"]),
        dict(allow_tie="yes"),
    ],
)
def test_invalid_designs_are_refused_with_a_named_error(bad):
    with pytest.raises(InvalidDesign):
        design(**bad)


def test_a_turing_design_needs_a_photo_per_trial():
    with pytest.raises(NotEnoughPhotos, match="needs at least 54 photos"):
        design(photos=PHOTOS[:53])
    assert design(photos=PHOTOS[:54]).photos_needed == 54


def test_assignment_is_balanced_in_every_block_and_random_across_blocks():
    d = design()
    conds = [condition_for(d, i) for i in range(300)]
    for b in range(100):
        assert sorted(conds[3 * b : 3 * b + 3]) == ["a", "b", "c"]
    assert len({tuple(conds[3 * b : 3 * b + 3]) for b in range(100)}) > 3  # orders vary
    assert conds == [condition_for(d, i) for i in range(300)]  # reproducible from the seed


def test_turing_plan_has_practice_scored_and_vigilance_trials():
    d = design()
    plan = turing_plan(d, "participant-1", "b", PHOTOS)
    assert [t.index for t in plan] == list(range(54))
    phases = Counter(t.phase for t in plan)
    assert phases == {"practice": 10, "main": 40, "vigilance": 4}
    assert all(t.phase == "practice" for t in plan[:10])
    for t in plan:
        assert REAL in (t.left, t.right)
        assert {t.left, t.right} == ({REAL, VIGILANCE} if t.phase == "vigilance" else {REAL, "b"})
    main = [t.photo for t in plan if t.phase == "main"]
    assert len(set(main)) == 40  # no photo twice among scored trials when the set is big enough
    assert not set(main) & {t.photo for t in plan if t.phase == "practice"}
    sides = Counter(t.fake_side for t in plan)
    assert 15 < sides["left"] < 39


def test_plan_is_reproducible_per_participant_and_differs_between_them():
    d = design()
    assert turing_plan(d, "x", "a", PHOTOS) == turing_plan(d, "x", "a", list(reversed(PHOTOS)))
    assert turing_plan(d, "x", "a", PHOTOS) != turing_plan(d, "y", "a", PHOTOS)


def test_too_few_prepared_photos_are_refused():
    with pytest.raises(NotEnoughPhotos):
        turing_plan(design(), "x", "a", PHOTOS[:53])


def test_arena_pairs_are_uniform_distinct_methods():
    d = design(kind="arena", methods=["a", "b", "c", "d"], trials=0)
    trials = [t for k in range(30) for t in arena_plan(d, f"p{k}", PHOTOS, 100)]
    assert all(t.left != t.right for t in trials)
    pairs = Counter(frozenset((t.left, t.right)) for t in trials)
    assert len(pairs) == 6 and all(abs(n / 3000 - 1 / 6) < 0.02 for n in pairs.values())
    assert abs(Counter(t.left for t in trials)["a"] / 3000 - 0.25) < 0.03
    assert arena_trial(d, "p1", 5, PHOTOS) == arena_trial(d, "p1", 5, PHOTOS) == arena_plan(d, "p1", PHOTOS, 9)[5]
