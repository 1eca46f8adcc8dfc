"""Image-folder dataset and config loading."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from experiments.config import load_config
from experiments.data import ImageFolderLab, scan_folder


def test_scan_labels_and_crops(tiny_data):
    ds = ImageFolderLab(tiny_data / "train", crop=32, train=True)
    assert ds.classes == ["meadow", "sunset"] and len(ds) == 16
    item = ds[0]
    assert item["L"].shape == (1, 32, 32) and item["ab"].shape == (2, 32, 32)
    assert 0 <= float(item["L"].min()) and float(item["L"].max()) <= 100
    assert int(item["label"]) in (0, 1)
    ev = ImageFolderLab(tiny_data / "val", crop=24, train=False)
    a, b = ev[1], ev[1]
    assert np.array_equal(a["ab"].numpy(), b["ab"].numpy())  # evaluation is deterministic


def test_near_grey_photos_are_skipped(tmp_path, photo):
    d = tmp_path / "x"
    d.mkdir()
    Image.fromarray(photo).convert("L").convert("RGB").save(d / "a_grey.png")
    Image.fromarray(photo).save(d / "b_colour.png")
    ds = ImageFolderLab(d, crop=16, train=False)
    item = ds[0]
    assert int(item["index"]) == 1 and 0 in ds.skipped
    assert [s.label for s in ds.samples] == [-1, -1]  # files in root have no label


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no images"):
        scan_folder(tmp_path)


def test_config_overrides_and_unknown_keys(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('method = "classification"\n[train]\nsteps = 5\n[data]\ncrop = 32\n')
    cfg = load_config(p, ["train.steps=7", "model.temperature=0.2"])
    assert cfg.train.steps == 7 and cfg.data.crop == 32 and cfg.model == {"temperature": 0.2}
    with pytest.raises(ValueError, match="unknown option"):
        load_config(p, ["train.stepz=7"])


def test_training_labels_read_as_words():
    """The dashboard names fusion's scene classes as a person reads them, not as folders."""
    from experiments.data import display_label

    assert display_label("dogscats_cats") == "cat" and display_label("catsdogsfiltered_dogs") == "dog"
    assert display_label("oxfordpets_oxfordpets") == "pet" and display_label("stanfordcars_stanfordcars") == "car"
    assert display_label("food101_apple_pie") == "food: apple pie" and display_label("flowers17_3") == "flower (class 3)"
    assert display_label("facemask_with_mask") == "face with a mask" and display_label("camvid_camvid") == "street scene"
    assert display_label("chain_saw") == "chain saw" and display_label("sunset") == "sunset"
