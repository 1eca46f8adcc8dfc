"""A participant who cheats: guesses the fake from everything the page delivers except the
pixels themselves - payload sizes, image dimensions, PNG chunks, DOM attributes, load order.

Decided before running: 40 simulated participants x 6 scored trials = 240 pairs, one strategy
("the smaller / lexicographically first payload is the fake; left when all is equal"), a
two-sided exact binomial test against 50 % at the 1 % level. The same cheater against the
stored, compressed PNGs (what the pages used to send) is the positive control: it must beat
chance, or this test could not fail.
"""

from __future__ import annotations

import base64
import itertools
import re
import struct
from html.parser import HTMLParser

import pytest
from scipy import stats as sps

from experiments.study import ui
from experiments.study.protocol import plan

N_PARTICIPANTS = 40


@pytest.fixture(autouse=True)
def simulated_ids(monkeypatch):
    """Participant ids sim-0, sim-1, ... instead of random ones, so the 240 pairs (and the test's
    verdict) are the same on every run."""
    counter = itertools.count()
    monkeypatch.setattr("experiments.study.storage.secrets.token_urlsafe", lambda n=16: f"sim-{next(counter)}")


class _Imgs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs: list[dict] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(dict(attrs))


def png_chunks(data: bytes) -> list[tuple[bytes, int]]:
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((data[pos + 4 : pos + 8], length))
        pos += 12 + length
    return out


def delivered_features(html: str) -> list[tuple]:
    """Per image, in DOM order: everything but the pixel values."""
    p = _Imgs()
    p.feed(html)
    feats = []
    for attrs in p.imgs:
        head, b64 = attrs["src"].split(",", 1)
        data = base64.b64decode(b64)
        width, height = struct.unpack(">II", data[16:24])
        chunks = png_chunks(data)
        meta = data[: 8 + 8 + 13 + 4]  # signature + IHDR
        other = {k: re.sub(r"\b(left|right)\b", "SIDE", v) for k, v in attrs.items() if k != "src"}
        feats.append((len(b64), len(data), width, height, head, tuple(chunks), meta, tuple(sorted(other.items()))))
    return feats


def cheat(features: list[tuple]) -> str:
    """The smaller payload (then any other difference) is the fake; left when nothing differs."""
    left, right = features
    if left == right:
        return "left"
    return "left" if left < right else "right"


def play(store, name: str, html_of) -> tuple[int, int, int]:
    s = store.study(name)
    hits = n = identical = 0
    for _ in range(N_PARTICIPANTS):
        p = store.join(name)
        for t in plan(s.design, p.id, p.condition, store.ready_photos(name)):
            if t.phase != "main":
                continue
            feats = delivered_features(html_of(t))
            identical += feats[0] == feats[1]
            hits += cheat(feats) == t.fake_side
            n += 1
    return hits, n, identical


def test_a_cheating_participant_scores_at_chance(store, make_study):
    d = make_study()
    hits, n, identical = play(store, "s1", lambda t: ui.trial_html(store.url, "s1", d, t))
    assert n == 240 and identical == n, "the two images of a pair differ in something other than their pixels"
    p = sps.binomtest(hits, n, 0.5).pvalue
    print(f"\ncheater on what participants receive: {hits}/{n} = {hits / n:.1%}, p = {p:.2f}")
    assert p > 0.01


def test_positive_control_the_cheater_wins_on_compressed_pngs(store, make_study):
    d = make_study()

    def compressed(t):
        return ui.pair_html(store.image_png("s1", t.photo, t.left), store.image_png("s1", t.photo, t.right), d.size)

    hits, n, _ = play(store, "s1", compressed)
    p = sps.binomtest(hits, n, 0.5).pvalue
    print(f"\ncheater on compressed PNGs: {hits}/{n} = {hits / n:.1%}, p = {p:.1g}")
    assert p < 0.01


def test_every_image_of_an_arena_looks_the_same_from_outside(store, make_study):
    """In an arena no method may be recognisable by its file: one byte length, one size."""
    d = make_study(name="a1", kind="arena", trials=12, practice=0, vigilance=0)
    seen = set()
    for _ in range(5):
        p = store.join("a1")
        for t in plan(d, p.id, p.condition, store.ready_photos("a1")):
            for f in delivered_features(ui.trial_html(store.url, "a1", d, t)):
                seen.add(f[:7])
    assert len(seen) == 1
