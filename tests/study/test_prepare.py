import io

import numpy as np
import pytest
from PIL import Image

import backends
from backends import color
from experiments.study import prepare as prep
from experiments.study.protocol import REAL, VIGILANCE, StudyDesign


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_prepare_stores_every_image_once_with_opaque_ids(store, make_study, study_photos):
    make_study()
    photos = store.ready_photos("s1")
    assert len(photos) == len(study_photos)
    sources = store.photo_sources("s1")
    for pid in photos:
        assert len(pid) == 16 and all(part not in pid for part in ("scene", ".png"))
        assert sources[pid] in study_photos
        real, fake, vig = (decode(store.image_png("s1", pid, r)) for r in (REAL, "hue40", VIGILANCE))
        assert real.shape == fake.shape == vig.shape == (32, 32, 3)
        L = [color.rgb_to_lab(x)[..., 0] for x in (real, fake, vig)]
        assert np.abs(L[0] - L[1]).mean() < 3  # same lightness (the vigilance image may lose some to gamut clipping)
        ab_real, ab_vig = color.rgb_to_lab(real)[..., 1:], color.rgb_to_lab(vig)[..., 1:]
        assert np.linalg.norm(ab_real - ab_vig, axis=-1).mean() > 30  # obviously wrong
    png = store.image_png("s1", photos[0], "hue40")
    assert Image.open(io.BytesIO(png)).info == {}  # no text chunks, no names


def test_prepare_again_only_fills_gaps_and_skips_bad_files(store, study_photos, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    d = StudyDesign(name="g", methods=["hue40"], photos=[*study_photos[:3], str(bad)], size=32, trials=1, practice=0)
    store.create_study(d)
    rep = prep.prepare(store, "g", {"hue40": prep.hue_rotation_colorizer()})
    assert (rep.ready, rep.generated, len(rep.skipped)) == (3, 9, 1) and "broken.jpg" in rep.skipped[0]
    rep = prep.prepare(store, "g", {"hue40": prep.hue_rotation_colorizer()})
    assert (rep.ready, rep.generated) == (3, 0)


def test_unavailable_backend_says_how_to_fix(store, study_photos):
    name = backends.names()[0]
    if backends.status(name).available:
        pytest.skip(f"{name} has a checkpoint here")
    store.create_study(StudyDesign(name="u", methods=[name], photos=study_photos[:1], size=32, trials=1, practice=0))
    with pytest.raises(backends.BackendUnavailable, match="fix"):
        prep.prepare(store, "u", device="cpu")


def test_sample_photos_is_seeded(study_photos):
    folder = str(__import__("pathlib").Path(study_photos[0]).parent)
    assert prep.sample_photos(folder, 3, seed=1) == prep.sample_photos(folder, 3, seed=1)
    assert len(prep.sample_photos(folder, 100)) == len(study_photos)
    with pytest.raises(FileNotFoundError):
        prep.sample_photos(folder + "/nope", 3)


@pytest.mark.parametrize("name", backends.names())
def test_prepare_with_a_real_backend(store, study_photos, name):
    if not backends.status(name).available or backends.method_class(name).uses_reference:
        pytest.skip(f"{name}: no shipped checkpoint (or needs a reference photo)")
    store.create_study(StudyDesign(name="r", methods=[name], photos=study_photos[:2], size=64, trials=1, practice=0))
    rep = prep.prepare(store, "r", device="cpu")
    assert rep.ready == 2 and rep.generated == 6
    fake = decode(store.image_png("r", store.ready_photos("r")[0], name))
    assert fake.shape == (64, 64, 3)


def test_prepare_with_a_fresh_real_backend(store, study_photos):
    """The real Colorizer flow (untrained weights: no checkpoint needed) feeds the study."""
    try:
        cls = backends.method_class("classification")
        model = cls(cls.Config(), "cpu")
    except Exception as exc:  # noqa: BLE001 - backend still being written or missing a package
        pytest.skip(f"classification backend not usable here: {exc}")
    store.create_study(StudyDesign(name="f", methods=["classification"], photos=study_photos[:1], size=48, trials=1, practice=0))
    rep = prep.prepare(store, "f", {"classification": model.colorize})
    real, fake = (decode(store.image_png("f", store.ready_photos("f")[0], r)) for r in (REAL, "classification"))
    assert rep.generated == 3 and fake.shape == real.shape == (48, 48, 3)
    assert np.abs(color.rgb_to_lab(real)[..., 0] - color.rgb_to_lab(fake)[..., 0]).mean() < 3


def test_wire_pngs_of_a_study_have_one_length_and_no_metadata(store, make_study):
    """What reaches participants: every image of the study, real or not, has the same bytes
    length and dimensions, although the stored (compressed) PNGs differ in size."""
    make_study()
    stored, wire = set(), set()
    for pid in store.ready_photos("s1"):
        for role in (REAL, "hue40", "hue120", VIGILANCE):
            png = store.image_png("s1", pid, role)
            w = prep.wire_png(png)
            stored.add(len(png))
            wire.add(len(w))
            im = Image.open(io.BytesIO(w))
            assert im.size == (32, 32) and im.mode == "RGB" and im.info == {}
            assert np.array_equal(decode(w), decode(png))  # same pixels
    assert len(stored) > 1 and len(wire) == 1


def test_preparation_time_estimate_uses_the_benchmark():
    fast = prep.estimate_seconds(["classification"], 50, 256)
    slow = prep.estimate_seconds(["neural_style"], 50, 256)
    # the committed benchmark may come from a loaded machine: judge the ratio, not absolute seconds
    assert 0 < fast < slow / 5 and slow > 200  # neural_style: ~10 s a photo, a feed-forward method < 1 s
    assert prep.format_duration(45) == "45 s" and prep.format_duration(600) == "10 min" and prep.format_duration(9000) == "2.5 h"
