"""The pre-decoded training cache and the step-exact stream: exact resume, crop schedule, labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from experiments.config import load_config
from experiments.datacache import StreamBatches, StreamCrops, build_cache, phase_at


def _photos(root, n: int, seed: int, size=(48, 40)):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        base = rng.integers(0, 255, 3)
        img = np.clip(base + rng.normal(0, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"p{i:02d}.jpg", quality=95)


@pytest.fixture()
def folders(tmp_path):
    _photos(tmp_path / "a" / "cats", 5, 0)
    _photos(tmp_path / "a" / "dogs", 4, 1, size=(300, 200))  # shrunk to the cache's short side
    _photos(tmp_path / "b" / "flowers", 3, 2)
    return [tmp_path / "a", tmp_path / "b"]


def test_cache_decodes_once_with_one_label_space(folders, tmp_path):
    cache = build_cache(folders, short=64, cache_dir=tmp_path / "cache", progress=False)
    assert len(cache) == 12
    assert cache.classes == ["cats", "dogs", "flowers"]
    assert sorted({cache.label(i) for i in range(len(cache))}) == [0, 1, 2]
    shapes = {cache.image(i).shape for i in range(len(cache))}
    assert (64, 96, 3) in shapes  # 300 x 200 photo: shorter side 64, aspect kept
    assert all(min(s[:2]) <= 64 for s in shapes)
    again = build_cache(folders, short=64, cache_dir=tmp_path / "cache", progress=False)
    assert again.path == cache.path  # same files, same key: reused, not rebuilt
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 1


def test_stream_is_a_pure_function_of_the_position(folders, tmp_path):
    cache = build_cache(folders, short=64, cache_dir=tmp_path / "cache", progress=False)
    a = StreamCrops(cache, crop=32, seed=3)
    b = StreamCrops(cache, crop=32, seed=3)
    for pos in (0, 5, 11, 12, 40, 7):  # out of order, across epochs
        x, y = a[pos], b[pos]
        assert torch.equal(x["L"], y["L"]) and torch.equal(x["ab"], y["ab"]) and x["index"] == y["index"]
    # every photo exactly once per epoch, a different order in the next epoch
    first = [a.photo_at(p) for p in range(12)]
    second = [a.photo_at(p) for p in range(12, 24)]
    assert sorted(first) == list(range(12)) == sorted(second) and first != second
    assert not torch.equal(a[0]["L"], StreamCrops(cache, crop=32, seed=4)[0]["L"])


def test_batches_interleave_ranks_and_stop_at_the_phase_end():
    assert list(StreamBatches(10, 4, stop=26)) == [[10, 11, 12, 13], [14, 15, 16, 17], [18, 19, 20, 21], [22, 23, 24, 25]]
    r0 = list(StreamBatches(0, 2, stop=8, world=2, rank=0))
    r1 = list(StreamBatches(0, 2, stop=8, world=2, rank=1))
    assert r0 == [[0, 1], [4, 5]] and r1 == [[2, 3], [6, 7]]
    assert phase_at(0, [[200, 128, 16]], 64, 32) == (64, 32, 200)
    assert phase_at(200, [[200, 128, 16]], 64, 32) == (128, 16, None)


def _cfg(folders, tmp_path, images: int):
    raw = {
        "method": "classification",
        "data": {"train": [str(f) for f in folders], "val": str(folders[0]), "crop": 16, "batch_size": 4, "workers": 0,
                 "val_count": 4, "val_photos": 0, "cache_short": 32, "schedule": [[24, 32, 2]]},  # fmt: skip
        "train": {"images": images, "log_every": 1, "checkpoint_every": 100, "runs_dir": str(tmp_path / "runs"), "run": "r"},
        "model": {"widths": [4, 4, 4, 4], "convs": 1, "lr": 1e-3},
    }
    return load_config(raw=raw)


def test_resume_draws_the_batches_an_uninterrupted_run_draws(folders, tmp_path, monkeypatch):
    """Train 32 images in one go, and 16 + resume to 32 (crossing the crop schedule's switch at
    24): the same batches (logged photo indices) and bit-identical weights."""
    import experiments.datacache as dc
    from experiments import train as tr

    monkeypatch.setattr(dc, "CACHE_DIR", tmp_path / "cache")
    drawn: dict[str, list] = {"full": [], "resumed": []}
    key = {"now": "full"}
    real_step = tr.build_method

    def build(cfg, device, class_names=None):
        m = real_step(cfg, device, class_names)
        inner = m.train_step

        def step(batch):
            drawn[key["now"]].append((tuple(batch["index"].tolist()), tuple(batch["L"].shape)))
            return inner(batch)

        m.train_step = step
        return m

    monkeypatch.setattr(tr, "build_method", build)
    full = tmp_path / "full"
    cfg = _cfg(folders, full, 32)
    tr.train(cfg, "cpu", fresh=True, progress=False)
    key["now"] = "resumed"
    part = tmp_path / "part"
    tr.train(_cfg(folders, part, 16), "cpu", fresh=True, progress=False)
    tr.train(_cfg(folders, part, 32), "cpu", progress=False)
    assert drawn["full"] == drawn["resumed"]
    assert [s for _, s in drawn["full"]] == [(4, 1, 16, 16)] * 6 + [(2, 1, 32, 32)] * 4
    a = torch.load(full / "runs" / "r" / "checkpoint.pt", weights_only=True)["nets"]["net"]
    b = torch.load(part / "runs" / "r" / "checkpoint.pt", weights_only=True)["nets"]["net"]
    assert all(torch.equal(a[k], b[k]) for k in a)
