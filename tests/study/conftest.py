"""Study fixtures: a tiny photo folder, a fresh SQLite store and a prepared study."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from experiments.study import prepare as prep
from experiments.study.protocol import StudyDesign
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
