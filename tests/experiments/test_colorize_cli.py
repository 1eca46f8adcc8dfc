"""The colorize CLI under careless use: nothing lost, nothing overwritten, honest counts and exit codes.

The model is the shipped classification checkpoint, loaded once for the module (``backends.load``
is patched to hand out that instance, and records each call so the tests can tell whether a run
got as far as loading a model).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import backends
from experiments import colorize
from tests.conftest import PROJECT, synthetic_photo


@pytest.fixture(scope="module")
def model():
    if not backends.status("classification").available:
        pytest.skip(f"classification unavailable: {backends.status('classification').reason}")
    return backends.load("classification", device="cpu")


@pytest.fixture
def loads(monkeypatch, model):
    calls = []

    def load(name, device="auto", checkpoint=None, **options):
        calls.append(name)
        return model

    monkeypatch.setattr(backends, "load", load)
    return calls


def photo(path, kind=0, size=40, seed=0):
    Image.fromarray(synthetic_photo(np.random.default_rng(seed), size, kind)).save(path)
    return path


def cli(capsys, *args):
    rc = colorize.main(["--method", "classification", "--device", "cpu", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_output_equal_to_input_is_refused_and_the_photo_kept(tmp_path, capsys, loads):
    src = photo(tmp_path / "a.png")
    before = src.read_bytes()
    rc, _, err = cli(capsys, "--input", src, "--output", src)
    assert rc == 2 and err.count("\n") == 1 and "a.png" in err and "input" in err, err
    assert src.read_bytes() == before
    # also when the output folder would give the same name, and even with --overwrite
    rc, _, err = cli(capsys, "--input", src, "--output", tmp_path, "--overwrite")
    assert rc == 2 and "input photo" in err
    assert src.read_bytes() == before and not loads


def test_existing_output_needs_overwrite(tmp_path, capsys, loads):
    src, dst = photo(tmp_path / "a.png"), tmp_path / "out.png"
    dst.write_bytes(b"my thesis figure")
    rc, _, err = cli(capsys, "--input", src, "--output", dst)
    assert rc == 2 and "already exists" in err and "--overwrite" in err
    assert dst.read_bytes() == b"my thesis figure" and not loads
    rc, out, _ = cli(capsys, "--input", src, "--output", dst, "--overwrite")
    assert rc == 0 and "out.png" in out
    assert np.asarray(Image.open(dst)).shape == (40, 40, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "temporary file left behind"


def test_folder_into_itself_is_refused_unless_outputs_get_a_suffix(tmp_path, capsys, loads):
    d = tmp_path / "photos"
    d.mkdir()
    photo(d / "a.png")
    photo(d / "b.jpg", kind=1)
    before = snapshot(d)
    for out in (d, d / "colour"):
        rc, _, err = cli(capsys, "--input", d, "--output", out)
        assert rc == 2 and "input folder" in err and "--suffix" in err, err
        assert snapshot(d) == before and not loads

    rc, out, _ = cli(capsys, "--input", d, "--output", d, "--suffix", "_color")
    assert rc == 0 and "colorized 2 of 2" in out, out
    after = snapshot(d)
    assert {k: after[k] for k in before} == before, "an original changed"
    assert set(after) == set(before) | {"a_color.png", "b_color.png"}
    # a second run neither colorizes its own outputs nor replaces them
    rc, out, err = cli(capsys, "--input", d, "--output", d, "--suffix", "_color")
    assert rc == 0 and "colorized 0 of 2" in out and "2 skipped" in out and err.count("skipped:") == 2, (out, err)
    assert snapshot(d) == after

    # an output folder inside the input folder: its files are never read as inputs
    for _ in range(2):
        rc, out, _ = cli(capsys, "--input", d, "--output", d / "colour", "--suffix", "_c")
        assert rc == 0 and "of 4 images" in out, out
    assert "colorized 0 of 4" in out and "4 skipped" in out
    assert sorted(p.name for p in (d / "colour").iterdir()) == ["a_c.png", "a_color_c.png", "b_c.png", "b_color_c.png"]


def test_name_collisions_keep_every_result(tmp_path, capsys, loads):
    d, out = tmp_path / "in", tmp_path / "out"
    d.mkdir()
    photo(d / "x.jpg", kind=0)
    photo(d / "x.png", kind=1)
    photo(d / "X.bmp", kind=1, seed=3)
    rc, stdout, _ = cli(capsys, "--input", d, "--output", out)
    assert rc == 0 and "colorized 3 of 3" in stdout, stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == ["X.bmp.png", "x.jpg.png", "x.png.png"], names
    a, b = (np.asarray(Image.open(out / n)) for n in ("x.jpg.png", "x.png.png"))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5, "both outputs hold the same photo"


def test_unwritable_output_format_is_refused_before_the_model_loads(tmp_path, capsys, loads):
    src = photo(tmp_path / "a.png")
    rc, _, err = cli(capsys, "--input", src, "--output", tmp_path / "out.xyz")
    assert rc == 2 and err.count("\n") == 1 and "out.xyz" in err and ".png" in err and "Traceback" not in err, err
    rc, _, err = cli(capsys, "--input", tmp_path, "--output", tmp_path / "o", "--format", "xyz")
    assert rc == 2 and ".xyz" in err, err
    assert not loads and not (tmp_path / "out.xyz").exists() and not (tmp_path / "o").exists()
    rc, _, _ = cli(capsys, "--input", src, "--output", tmp_path / "out.jpg")
    assert rc == 0 and Image.open(tmp_path / "out.jpg").format == "JPEG"


def test_folder_with_bad_files_reports_each_outcome_and_exits_2(tmp_path, capsys, loads):
    d, out = tmp_path / "in", tmp_path / "out"
    d.mkdir()
    photo(d / "good1.png")
    photo(d / "good2.png", kind=1)
    (d / "broken.jpg").write_text("not an image")
    (d / "empty.png").write_bytes(b"")
    rc, stdout, err = cli(capsys, "--input", d, "--output", out)
    assert rc == 2
    assert "colorized 2 of 4" in stdout and "2 unreadable" in stdout, stdout
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and any("broken.jpg" in e for e in errors) and any("empty.png" in e and "empty" in e for e in errors)
    assert sorted(p.name for p in out.iterdir()) == ["good1.png", "good2.png"]


def test_single_bad_image_exits_2_with_one_line(tmp_path, capsys, loads):
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    rc, _, err = cli(capsys, "--input", bad, "--output", tmp_path / "o.png")
    assert rc == 2 and err.strip().count("\n") == 0 and "notes.png" in err
    assert not (tmp_path / "o.png").exists()


def run_cli(*args, env=None, timeout=60):
    env = {**os.environ, "PYTHONPATH": str(PROJECT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "experiments.colorize", "--method", "classification", "--device", "cpu", *map(str, args)],
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_devices_fifos_and_bad_environment_are_named_errors(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for src, what in ((fifo, "FIFO"), ("/dev/zero", "device")):
        r = run_cli("--input", src, "--output", tmp_path / "o.png")  # would hang / exhaust memory before
        assert r.returncode == 2 and what in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    src = photo(tmp_path / "a.png")
    r = run_cli("--input", src, "--output", tmp_path / "o.png", env={"COLORIZE_MAX_PIXELS": "abc"})
    assert r.returncode == 2 and "COLORIZE_MAX_PIXELS='abc'" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "o.png").exists()
