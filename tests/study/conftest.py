"""Study fixtures: a tiny photo folder, a fresh SQLite store and a prepared study."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from experiments.study import prepare as prep
from experiments.study import storage
from experiments.study.protocol import StudyDesign, roles_needed
from experiments.study.storage import StudyStore
from tests.conftest import synthetic_photo

FAKE_METHODS = {"hue40": prep.hue_rotation_colorizer(40), "hue120": prep.hue_rotation_colorizer(120, 1.0)}


@pytest.fixture(scope="session")
def study_photos(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("study_photos")
    rng = np.random.default_rng(3)
    paths = []
    for i in range(12):
        p = root / f"scene_{i}.png"
        Image.fromarray(synthetic_photo(rng, 40 + 4 * i, i % 2)).save(p)
        paths.append(str(p))
    return paths


@pytest.fixture
def store(tmp_path) -> StudyStore:
    return StudyStore(f"sqlite:///{tmp_path / 'studies.sqlite'}")


@pytest.fixture
def make_study(store, study_photos):
    """Create, prepare (with deterministic stand-in colorizers) and open a study."""

    def make(name="s1", kind="turing", methods=("hue40", "hue120"), **design) -> StudyDesign:
        design = dict(trials=6, practice=2, vigilance=0.34) | design  # 10 photos a participant; 12 exist
        d = StudyDesign(name=name, kind=kind, methods=list(methods), photos=study_photos, size=32, seed=7, **design)
        store.create_study(d)
        prep.prepare(store, name, {m: FAKE_METHODS[m] for m in methods})
        store.set_status(name, "open")
        return d

    return make


TINY_PNG = prep.png_bytes(np.zeros((4, 4, 3), "uint8"))


def bare_study(store: StudyStore, name="c", methods=("a", "b"), n_photos=50, **kw) -> StudyDesign:
    """An open study whose ``n_photos`` photos have every image (4x4 placeholders)."""
    kw = dict(trials=36, practice=0, vigilance=0.1, seed=1) | kw
    d = StudyDesign(name=name, methods=list(methods), photos=[], **kw)
    store.create_study(d)
    with store.engine.begin() as c:  # one transaction: 200 separate fsyncs would take seconds
        c.execute(storage.photos.insert(), [dict(id=f"{name}{i:03d}", study=name, source=f"ph{i}.png") for i in range(n_photos)])
        rows = [
            dict(id=f"{name}{i:03d}{r}", study=name, photo=f"{name}{i:03d}", role=r, png=TINY_PNG)
            for i in range(n_photos)
            for r in roles_needed(d)
        ]
        c.execute(storage.images.insert(), rows)
    store.set_status(name, "open")
    return d
