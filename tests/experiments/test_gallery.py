"""python -m experiments.gallery: the curation rule on hand-made label folders (known answer), the
list and features it writes, --check noticing a changed photo, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tomllib
from PIL import Image

from experiments import gallery as build
from tests.conftest import SHARED

SQUEEZE = SHARED / "weights" / "squeezenet1_1_imagenet_notop.h5"


def make_labels(root: Path, labels=("apples", "boats"), n: int = 5) -> dict[str, list[str]]:
    """Label folders of ``n`` photos each whose colourfulness rises with a saturation that is
    shuffled against the name order: label -> names from least to most colourful."""
    rng = np.random.default_rng(0)
    out = {}
    for k, label in enumerate(labels):
        (root / label).mkdir(parents=True)
        sat = rng.permutation(n)
        names = [f"{i:03d}.png" for i in range(n)]
        for name, s in zip(names, sat):
            g = np.linspace(60, 200, 32)[None, :, None].repeat(32, 0)
            tint = np.array([1.0, 0.5, 0.2] if k == 0 else [0.2, 0.5, 1.0])
            rgb = g * (1 - 0.15 * s) + 255 * 0.15 * s * tint * (g / 200)
            Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(root / label / name)
        out[label] = [names[i] for i in np.argsort(sat)]
    return out


def test_curation_takes_the_photos_in_the_colourfulness_band(tmp_path):
    order = make_labels(tmp_path / "data" / "train")
    scores = {f.name: build.colourfulness(np.asarray(Image.open(f))) for f in (tmp_path / "data" / "train" / "apples").iterdir()}
    assert sorted(scores, key=scores.get) == order["apples"]  # the hand-made order is the metric's
    picks = build.curate([tmp_path / "data" / "train"], tmp_path / "data", per_label=3, band=(0.8, 0.94), progress=False)
    # 5 photos: ranks 0.80 * 4 = 3.2 -> 3, 3.48 -> 3, 3.76 -> 4: the 4th and 5th most colourful, once each
    assert picks == [f"train/{lab}/{order[lab][i]}" for lab in ("apples", "boats") for i in (3, 4)]
    picks = build.curate([tmp_path / "data" / "train"], tmp_path / "data", per_label=2, band=(0.0, 0.5), scan=3, progress=False)
    first3 = {lab: [n for n in order[lab] if n in ("000.png", "001.png", "002.png")] for lab in order}  # only the first 3 by name
    assert picks == [f"train/{lab}/{first3[lab][i]}" for lab in ("apples", "boats") for i in (0, 1)]


@pytest.mark.skipif(not SQUEEZE.is_file(), reason=f"genuine SqueezeNet 1.1 weights not found at {SQUEEZE}")
def test_command_writes_list_and_features_and_check_sees_a_changed_photo(tmp_path, capsys):
    order = make_labels(tmp_path / "data" / "train")
    make_labels(tmp_path / "data" / "train_extra", labels=("src_kites",), n=4)
    out, feats = tmp_path / "gallery.toml", tmp_path / "gallery.npz"
    args = ["--roots", str(tmp_path / "data" / "train"), str(tmp_path / "data" / "train_extra"), "--base", str(tmp_path / "data"),
            "--out", str(out), "--features", str(feats)]  # fmt: skip
    assert build.main(args) == 0
    spec = tomllib.loads(out.read_text())["gallery"]
    root = Path(spec["root"])
    assert (root if root.is_absolute() else (build.PROJECT_ROOT / root)).resolve() == (tmp_path / "data").resolve()
    assert spec["photos"][:2] == [f"train/apples/{order['apples'][3]}", f"train/apples/{order['apples'][4]}"]
    assert {p.split("/")[1] for p in spec["photos"]} == {"apples", "boats", "src_kites"}
    with np.load(feats) as z:
        assert z["features"].shape == (len(spec["photos"]), 512) and np.isfinite(z["features"]).all()
        assert str(z["weights"]).startswith(SQUEEZE.name)
    assert build.main([*args, "--check"]) == 0
    changed = tmp_path / "data" / spec["photos"][0]
    Image.open(changed).resize((40, 40)).save(changed)  # a different photo under the same name
    capsys.readouterr()
    assert build.main([*args, "--check"]) == 1
    assert "1 photos stale" in capsys.readouterr().out
    assert build.main([*args, "--features-only"]) == 0 and build.main([*args, "--check"]) == 0


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert (
        build.main(
            ["--roots", str(tmp_path / "nowhere"), "--out", str(tmp_path / "g.toml"), "--features", str(tmp_path / "g.npz")]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0] and not (tmp_path / "g.toml").exists()
    assert build.main(["--band", "0.9", "0.1", "--out", str(tmp_path / "g.toml")]) == 2
