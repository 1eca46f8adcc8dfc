"""Safe image loading: every mode Pillow reads, and every bad input gives a named one-line error."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from backends.errors import ColorizationError, ImageError
from backends.imageio import as_rgb, is_image_file, load_image, max_pixels, save_image, writable_format


def _bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def rgb(photo):
    return photo


def test_rgb_png_roundtrip(tmp_path, rgb):
    p = tmp_path / "a.png"
    Image.fromarray(rgb).save(p)
    out = load_image(p)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    assert np.array_equal(out, rgb)


def test_grey_stays_grey_and_rgb_mode_replicates(tmp_path, rgb):
    p = tmp_path / "g.png"
    Image.fromarray(rgb).convert("L").save(p)
    assert load_image(p).ndim == 2
    out = load_image(p, mode="rgb")
    assert out.shape == rgb.shape and np.array_equal(out[..., 0], out[..., 2])


def test_rgba_drops_alpha_and_palette_converts(tmp_path, rgb):
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 10, np.uint8)], -1)
    out = load_image(_bytes(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert out.shape == rgb.shape and np.array_equal(out, rgb)
    pal = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=64)
    out = load_image(_bytes(pal, "PNG"))
    assert out.shape == rgb.shape and np.abs(out.astype(int) - rgb).mean() < 12


def test_16bit_grey_is_scaled(tmp_path):
    a = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
    p = tmp_path / "d.png"
    Image.fromarray(a).save(p)
    out = load_image(p)
    assert out.dtype == np.uint8 and out.shape == (30, 40)
    assert out.min() == 0 and out.max() == 255


def test_cmyk_jpeg(rgb):
    out = load_image(_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95))
    assert out.shape == rgb.shape and np.abs(out.astype(int) - rgb).mean() < 10


def test_exif_orientation_is_honoured(rgb):
    im = Image.fromarray(rgb)  # 70 x 90 (h x w)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    out = load_image(_bytes(im, "JPEG", exif=exif.tobytes()))
    assert out.shape[:2] == (rgb.shape[1], rgb.shape[0])


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"this is a text file, not a picture\n", "not an image"),
    ],
)
def test_bad_bytes_named_errors(tmp_path, data, reason):
    p = tmp_path / "bad.jpg"
    p.write_bytes(data)
    with pytest.raises(ImageError) as e:
        load_image(p)
    assert str(p) in str(e.value) and reason in str(e.value)
    assert "\n" not in str(e.value)


def test_truncated_jpeg(tmp_path, rgb):
    data = _bytes(Image.fromarray(rgb), "JPEG", quality=90)
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.jpg: .*(truncated|corrupt)"):
        load_image(p)


def test_pixel_limit_refuses_before_decoding(tmp_path, rgb, monkeypatch):
    p = tmp_path / "big.png"
    Image.fromarray(rgb).save(p)
    with pytest.raises(ImageError, match="too large"):
        load_image(p, limit=1000)
    monkeypatch.setenv("COLORIZE_MAX_PIXELS", "500")
    with pytest.raises(ImageError, match="big.png: image too large"):
        load_image(p)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_as_rgb_validates_arrays():
    assert as_rgb(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert as_rgb(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    with pytest.raises(ImageError, match="shape"):
        as_rgb(np.zeros((4, 5, 7), np.uint8))
    with pytest.raises(ImageError, match="dtype"):
        as_rgb(np.zeros((4, 5), np.int32))


# --- careless inputs: None, devices, FIFOs, bad settings ------------------------------------------


def test_none_and_odd_sources_are_named_errors():
    with pytest.raises(ImageError, match="no image given"):
        load_image(None)
    with pytest.raises(ImageError, match="cannot read an image from a int"):
        load_image(42)
    with pytest.raises(ImageError, match="binary mode"):
        load_image(io.StringIO("text"), name="notes.txt")


def test_devices_and_fifos_are_refused_without_reading(tmp_path):
    with pytest.raises(ImageError, match="/dev/zero: is a device"):
        load_image("/dev/zero")  # reading it would never end
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="pipe.png: is a FIFO"):
        load_image(fifo)  # opening it would block until a writer appears
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)
    assert not is_image_file(fifo)


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "nan", "inf"])
def test_bad_max_pixels_setting_is_a_named_error(monkeypatch, value, tmp_path):
    monkeypatch.setenv("COLORIZE_MAX_PIXELS", value)
    with pytest.raises(ColorizationError, match=f"COLORIZE_MAX_PIXELS={value!r}"):
        max_pixels()
    p = tmp_path / "a.png"
    Image.new("L", (4, 4)).save(p)
    with pytest.raises(ColorizationError, match="COLORIZE_MAX_PIXELS"):
        load_image(p)


@pytest.mark.parametrize("value, expected", [("", 40_000_000), ("1000", 1000), ("40_000_000", 40_000_000), ("4e7", 40_000_000)])
def test_max_pixels_setting_forms(monkeypatch, value, expected):
    monkeypatch.setenv("COLORIZE_MAX_PIXELS", value)
    assert max_pixels() == expected


def test_save_image_is_atomic_and_can_refuse_to_overwrite(tmp_path, rgb):
    dst = tmp_path / "out.png"
    dst.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        save_image(rgb, dst, overwrite=False)
    assert dst.read_bytes() == b"keep me"
    save_image(rgb, dst)
    assert np.array_equal(np.asarray(Image.open(dst)), rgb)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"], "temporary file left behind"
    with pytest.raises(ColorizationError, match=r"out\.xyz: cannot write '\.xyz'"):
        save_image(rgb, tmp_path / "out.xyz")
    assert writable_format(tmp_path / "a.JPG") == "JPEG"
    with pytest.raises(ColorizationError, match="without an extension"):
        writable_format(tmp_path / "noext")
