"""Zhang et al.'s released ECCV16 / SIGGRAPH17 networks: the released state-dict layout loads
through the weights resolver and colorizes; offline they say how to get the real files; downloads
are hash-checked."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import backends
from backends import color, weights
from backends.errors import CheckpointError, WeightsUnavailable
from backends.zhang_published import pts_in_hull


def _conv(sd, key, cin, cout, k, transpose=False, bias=True):
    sd[f"{key}.weight"] = torch.randn((cin, cout, k, k) if transpose else (cout, cin, k, k)) * 0.01
    if bias:
        sd[f"{key}.bias"] = torch.zeros(cout)


def _bn(sd, key, c):
    sd.update({f"{key}.weight": torch.ones(c), f"{key}.bias": torch.zeros(c), f"{key}.running_mean": torch.zeros(c),
               f"{key}.running_var": torch.ones(c), f"{key}.num_batches_tracked": torch.tensor(0)})  # fmt: skip


def _blocks(sd, spec, lead_relu=False):
    """spec: block -> channels [cin, c, c, ...]; convs at 0, 2, 4 (1, 3 with a leading ReLU), BN after."""
    for block, ch in spec.items():
        off = 1 if lead_relu else 0
        for i in range(len(ch) - 1):
            _conv(sd, f"{block}.{off + 2 * i}", ch[i], ch[i + 1], 3)
        _bn(sd, f"{block}.{off + 2 * (len(ch) - 1)}", ch[-1])


def released_eccv16(favour_bin: int | None = None) -> dict:
    """The key names and shapes of colorization_release_v2-9b330a0b.pth (richzhang/colorization,
    colorizers/eccv16.py); weights random, model_out = pts_in_hull / 110 as released."""
    sd: dict = {}
    _blocks(sd, {"model1": [1, 64, 64], "model2": [64, 128, 128], "model3": [128, 256, 256, 256],
                 "model4": [256, 512, 512, 512], "model5": [512] * 4, "model6": [512] * 4, "model7": [512] * 4})  # fmt: skip
    _conv(sd, "model8.0", 512, 256, 4, transpose=True)
    _conv(sd, "model8.2", 256, 256, 3)
    _conv(sd, "model8.4", 256, 256, 3)
    _conv(sd, "model8.6", 256, 313, 1)
    if favour_bin is not None:  # every pixel: one bin far more likely than the others
        sd["model8.6.weight"].zero_()
        sd["model8.6.bias"][favour_bin] = 30.0
    sd["model_out.weight"] = torch.from_numpy(pts_in_hull().T / color.AB_SCALE)[:, :, None, None].float()
    return sd


def released_siggraph17(ab: tuple[float, float] | None = None) -> dict:
    """The key names and shapes of siggraph17-df00044c.pth (colorizers/siggraph17.py)."""
    sd: dict = {}
    _blocks(sd, {"model1": [4, 64, 64], "model2": [64, 128, 128], "model3": [128, 256, 256, 256],
                 "model4": [256, 512, 512, 512], "model5": [512] * 4, "model6": [512] * 4, "model7": [512] * 4})  # fmt: skip
    _conv(sd, "model8up.0", 512, 256, 4, transpose=True)
    _conv(sd, "model3short8.0", 256, 256, 3)
    _blocks(sd, {"model8": [256, 256, 256], "model9": [128, 128]}, lead_relu=True)
    _conv(sd, "model9up.0", 256, 128, 4, transpose=True)
    _conv(sd, "model2short9.0", 128, 128, 3)
    _conv(sd, "model10up.0", 128, 128, 4, transpose=True)
    _conv(sd, "model1short10.0", 64, 128, 3)
    _conv(sd, "model10.1", 128, 128, 3)
    _conv(sd, "model_class.0", 256, 529, 1)
    _conv(sd, "model_out.0", 128, 2, 1)
    if ab is not None:  # tanh(bias) * 110 = ab everywhere
        sd["model_out.0.weight"].zero_()
        sd["model_out.0.bias"] = torch.atanh(torch.tensor(ab) / color.AB_SCALE).float()
    return sd


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No released file anywhere the resolver looks."""
    for var in ("COLORIZE_ZHANG_ECCV16", "COLORIZE_ZHANG_SIGGRAPH17", "COLORIZE_DOWNLOAD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(weights, "weights_dirs", lambda: [tmp_path / "weights"])
    return tmp_path


def photo(h=40, w=56):
    rng = np.random.default_rng(0)
    return (rng.random((h, w)) * 200 + 30).astype(np.uint8)


def test_the_bin_set_is_zhangs_313_points_on_the_grid_of_10():
    pts = pts_in_hull()
    assert pts.shape == (313, 2) and len({tuple(p) for p in pts}) == 313
    assert np.all(pts % 10 == 0) and pts.min() == -110 and pts.max() == 100
    assert tuple(pts[0]) == (-90, 50) and tuple(pts[-1]) == (100, 0)


def test_offline_both_are_listed_unavailable_with_the_fix(offline):
    for name, env in (("zhang_eccv16", "COLORIZE_ZHANG_ECCV16"), ("zhang_siggraph17", "COLORIZE_ZHANG_SIGGRAPH17")):
        st = backends.status(name)
        assert not st.available
        assert env in st.reason and "COLORIZE_DOWNLOAD=1" in st.reason and "torch hub cache" in st.reason
        with pytest.raises(WeightsUnavailable, match=env):
            backends.load(name, device="cpu")


def test_eccv16_released_layout_loads_through_the_env_var_and_decodes_with_their_bins(offline, monkeypatch):
    target = int(np.flatnonzero((pts_in_hull() == [40, -30]).all(1))[0])
    path = offline / "colorization_release_v2-9b330a0b.pth"
    torch.save(released_eccv16(favour_bin=target), path)
    monkeypatch.setenv("COLORIZE_ZHANG_ECCV16", str(path))
    st = backends.status("zhang_eccv16")
    assert st.available and "env" in st.reason
    grey = photo()
    for t in (1.0, 0.38):  # 1.0: the released code's softmax mean; 0.38: the paper's annealed mean
        model = backends.load("zhang_eccv16", device="cpu", temperature=t)
        out = model.colorize(grey)
        assert out.shape == (40, 56, 3)
        lab = color.rgb_to_lab(out)
        np.testing.assert_allclose(lab[..., 0], color.rgb_to_lab(np.repeat(grey[..., None], 3, -1))[..., 0], atol=1.0)
        mid = lab[10:30, 10:46]  # gamut clipping may pull very dark/bright pixels towards grey
        assert np.median(mid[..., 1]) == pytest.approx(40, abs=4) and np.median(mid[..., 2]) == pytest.approx(-30, abs=4)
    with pytest.raises(ValueError, match="temperature"):
        backends.load("zhang_eccv16", device="cpu", temperature=5.0)


def test_siggraph17_released_layout_loads_from_an_explicit_path_and_colorizes(offline):
    path = offline / "siggraph17-df00044c.pth"
    torch.save(released_siggraph17(ab=(-20.0, 35.0)), path)
    model = backends.load("zhang_siggraph17", device="cpu", checkpoint=path)
    out = model.colorize(photo(33, 47))  # any size: the shared flow works at 256 and re-attaches L
    assert out.shape == (33, 47, 3)
    lab = color.rgb_to_lab(out)[8:25, 8:40]
    assert np.median(lab[..., 1]) == pytest.approx(-20, abs=4) and np.median(lab[..., 2]) == pytest.approx(35, abs=4)


def test_the_hub_cache_is_found_and_a_foreign_file_is_refused(offline):
    hub = weights.hub_dir()
    hub.mkdir(parents=True)
    torch.save({"model1.0.weight": torch.zeros(3)}, hub / "siggraph17-df00044c.pth")
    assert backends.status("zhang_siggraph17").available  # found (its contents are checked on load)
    with pytest.raises(CheckpointError, match="siggraph17-df00044c.pth: not Zhang et al.'s released siggraph17 weights"):
        backends.load("zhang_siggraph17", device="cpu")


def test_downloads_are_hash_checked(offline, monkeypatch):
    src = offline / "published.pth"
    torch.save(released_siggraph17(), src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    spec = weights.SPECS["zhang_siggraph17"]
    bad = weights.WeightSpec(**{**spec.__dict__, "url": src.as_uri(), "sha256": "00000000"})
    monkeypatch.setitem(weights.SPECS, "zhang_siggraph17", bad)
    with pytest.raises(WeightsUnavailable, match="download .* failed"):
        weights.resolve("zhang_siggraph17", download=True)
    assert not (weights.hub_dir() / "siggraph17-df00044c.pth").exists()  # nothing half-checked kept
    monkeypatch.setenv("COLORIZE_DOWNLOAD", "1")
    monkeypatch.setitem(weights.SPECS, "zhang_siggraph17", weights.WeightSpec(**{**bad.__dict__, "sha256": digest[:8]}))
    found = weights.resolve("zhang_siggraph17")
    assert found.source == "download" and weights.sha256_of(found.path) == digest
    assert backends.load("zhang_siggraph17", device="cpu").colorize(photo()).shape == (40, 56, 3)


def test_published_hash_prefixes_come_from_the_file_names():
    assert weights.SPECS["zhang_eccv16"].hash_prefix == "9b330a0b"
    assert weights.SPECS["zhang_siggraph17"].hash_prefix == "df00044c"
    assert weights.SPECS["vgg19"].hash_prefix == "dcbb9e9d"
