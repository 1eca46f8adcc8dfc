"""The lent-GPU round trip, run here on the CPU: experiments.devicepack packs the photos and the
SqueezeNet file into what one device call may carry, gpu_train.sh trains from the pack with only the
Python packages the device machine has (TensorFlow, Streamlit, PyAV ... made unimportable), exports
one archive per run, experiments.device_import brings them back; device_slim.sh takes results/ out
of the checkout for the call and puts every file back."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backends.errors import ColorizationError
from experiments import devicepack
from experiments.device_import import MEMBERS, import_archive
from tests.conftest import synthetic_photo
from tests.venvs import PROJECT

WEIGHTS = PROJECT.parent / "shared" / "weights" / "squeezenet1_1_imagenet_notop.h5"
# what the device machine's Python lacks among this project's requirements (KINDS.md's package list)
NOT_ON_DEVICE = ("tensorflow", "keras", "streamlit", "av", "plotly", "altair", "sqlalchemy", "psycopg", "isal", "lpips", "pytorch_fid")
SITECUSTOMIZE = f"""
import sys
from importlib.machinery import PathFinder
class _NotOnDevice(PathFinder):  # finds nothing of these, as if they were not installed
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in {NOT_ON_DEVICE!r}:
            return None
        return PathFinder.find_spec(name, path, target)
sys.meta_path = [_NotOnDevice if f is PathFinder else f for f in sys.meta_path]
"""


def photos(root: Path, labels: dict[str, int], size: int = 96, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for k, (label, n) in enumerate(labels.items()):
        (root / label).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(synthetic_photo(rng, size, k % 2)).save(root / label / f"{label}_{i}.jpg", quality=95)
    return root


@pytest.fixture
def data(tmp_path) -> dict:
    return {
        "train": [photos(tmp_path / "src" / "train", {"meadow": 6, "sunset": 6}), photos(tmp_path / "src" / "extra", {"dusk": 5}, seed=1)],
        "val": photos(tmp_path / "src" / "val", {"meadow": 3, "sunset": 3}, seed=2),
    }


def test_the_pack_holds_every_training_photo_and_the_gate_photos_and_unpacks_to_image_folders(data, tmp_path):
    m = devicepack.build_pack(data["train"], data["val"], tmp_path / "pack", short=64, max_mib=4, val_photos=4, weights=(), progress=False)
    assert m["photos_packed"] == 17 and m["left_out_for_size"] == 0 and m["val_photos"] == 4 and m["classes"] == 3
    assert m["quality"] == devicepack.QUALITIES[0] and m["photos_per_root"] == {"train": 12, "extra": 5}
    assert sorted(p.name for p in (tmp_path / "pack").iterdir()) == ["manifest.json", "photos.bin", "photos.json"]
    devicepack.unpack(tmp_path / "pack", tmp_path / "out")
    train = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.webp"))
    assert len(train) == 21 and "extra/dusk/dusk_0.webp" in train and "train/sunset/sunset_5.webp" in train
    assert sum(1 for t in train if t.startswith("val/")) == 4
    im = Image.open(tmp_path / "out" / "train" / "meadow" / "meadow_0.webp")
    assert min(im.size) == 64  # shorter side reduced to the pack's
    # the colours survive: the unpacked photo is close to the original, shrunk the same way
    from experiments.datacache import _shrink

    ref = _shrink(np.asarray(Image.open(data["train"][0] / "meadow" / "meadow_0.jpg").convert("RGB")), 64).astype(float)
    assert np.abs(np.asarray(im.convert("RGB"), float) - ref).mean() < 6


def test_a_pack_over_its_size_lowers_quality_then_leaves_out_a_share_of_every_label(data, tmp_path):
    full = devicepack.build_pack(data["train"], data["val"], tmp_path / "a", short=96, max_mib=4, val_photos=2, weights=(), progress=False)
    tight = full["bytes"] * 0.4 / devicepack.MIB
    m = devicepack.build_pack(data["train"], data["val"], tmp_path / "b", short=96, max_mib=tight, val_photos=2, weights=(), progress=False)
    sent = sum(p.stat().st_size for p in (tmp_path / "b").rglob("*") if p.is_file())  # what the call would carry
    assert m["bytes"] == sent <= tight * devicepack.MIB and m["quality"] < full["quality"]
    assert 0 < m["photos_packed"] < 17 and m["photos_packed"] + m["left_out_for_size"] == 17
    index = json.loads((tmp_path / "b" / "photos.json").read_text())
    assert {rel.split("/")[1] for rel, _, _ in index if not rel.startswith("val/")} == {"meadow", "sunset", "dusk"}


def test_a_pack_index_that_points_outside_its_folder_is_refused(data, tmp_path):
    devicepack.build_pack(data["train"], data["val"], tmp_path / "pack", short=64, max_mib=4, val_photos=2, weights=(), progress=False)
    index = json.loads((tmp_path / "pack" / "photos.json").read_text())
    index[0][0] = "../../escaped.webp"
    (tmp_path / "pack" / "photos.json").write_text(json.dumps(index))
    with pytest.raises(ColorizationError, match="points outside"):
        devicepack.unpack(tmp_path / "pack", tmp_path / "out")
    assert not (tmp_path / "escaped.webp").exists()


def test_the_cli_names_a_missing_data_folder(tmp_path):
    r = subprocess.run([os.sys.executable, "-m", "experiments.devicepack", "--train", str(tmp_path / "nope"), "--out", str(tmp_path / "p")],
                       cwd=PROJECT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "nope: no such data folder" in r.stderr and not (tmp_path / "p").exists()


@pytest.mark.slow
@pytest.mark.skipif(not WEIGHTS.exists(), reason="needs ../shared/weights (genuine SqueezeNet 1.1)")
def test_gpu_train_runs_from_a_pack_with_the_device_packages_and_the_runs_come_back(data, tmp_path):
    pack = PROJECT / ".devicepack-test"  # inside the checkout, as on the device (COLORIZE_WEIGHTS_DIR=$PWD/PACK/weights)
    try:
        devicepack.build_pack(data["train"], data["val"], pack, short=64, max_mib=8, val_photos=4, progress=False)
        site = tmp_path / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        out, runs = tmp_path / "OUT", tmp_path / "runs"
        env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{PROJECT}", "DEVICE": "cpu", "GPU_TRAIN_SMALL": "1", "PACK": pack.name,
               "WORK": str(tmp_path / "work"), "EXPORT": str(out), "RUNS_DIR": str(runs), "METHODS": "classification gan regression", "RUN_TAG": "gpu-t",
               "TIME_LIMIT": "600", "COLORIZE_WEIGHTS_DIR": "", "OMP_NUM_THREADS": "1"}  # fmt: skip
        r = subprocess.run(["bash", "experiments/scripts/gpu_train.sh", "96"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900)
    finally:
        import shutil

        shutil.rmtree(pack, ignore_errors=True)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    log = (out / "gpu_train.log").read_text()
    assert "regression: skipped (TensorFlow is not importable here" in log  # the device has no TensorFlow
    assert sorted(p.name for p in out.glob("*.tar.gz")) == ["classification-gpu-t.tar.gz", "gan-gpu-t.tar.gz"]
    for name in ("classification-gpu-t", "gan-gpu-t"):
        with tarfile.open(out / f"{name}.tar.gz") as tar:
            members = {m.name.split("/", 1)[1] for m in tar.getmembers()}
        assert {"best.pt", "best.json", "log.csv", "config.toml", "device_pack.json"} <= members <= set(MEMBERS)
        assert (out / f"{name}.tar.gz").stat().st_size < 16 << 20
    home = tmp_path / "home_runs"
    run_dir = import_archive(out / "gan-gpu-t.tar.gz", home)
    meta = json.loads((run_dir / "best.json").read_text())
    # 96 images: one batch of 64 at 64 px, then two of 24 at 160 px (the budget's last third), so 112
    assert meta["method"] == "gan" and meta["images_seen"] == 112 and meta["device_pack"]["photos_packed"] == 17
    assert meta["config"]["data"]["cache_short"] == 64 and meta["hardware"].startswith("CPU")
    from experiments.modelcard import make_card

    card = make_card("gan", meta)
    assert "trained on the device pack (17 of 17 photos, WebP q85 at 64 px)" in card["variant"]
    assert card["data"] == [f"{os.path.relpath(r, PROJECT)} (device pack)" for r in data["train"]]  # the originals, not the scratch copies
    # the weights that came back load, in half precision as shipped, and colorize
    import backends

    model = backends.load("gan", device="cpu", checkpoint=run_dir / "model.pt")
    assert model.colorize(synthetic_photo(np.random.default_rng(3), 64, 0)).shape == (64, 64, 3)


def test_an_archive_with_a_foreign_member_is_refused_and_nothing_is_written(tmp_path):
    import io

    bad = tmp_path / "x.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        for name in ("gan-gpu/best.json", "gan-gpu/../../evil.py"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(ColorizationError, match="unexpected member"):
        import_archive(bad, tmp_path / "runs")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "evil.py").exists()


def fake_archive(path: Path, run: str, saved_at: str, extra: dict[str, bytes] | None = None) -> Path:
    import io

    files = {"best.pt": b"weights " + saved_at.encode(), "best.json": json.dumps({"method": "gan", "saved_at": saved_at}).encode(),
             "log.csv": b"step\n1\n", **(extra or {})}  # fmt: skip
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{run}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_an_import_never_merges_into_a_folder_that_holds_another_run(tmp_path):
    runs = tmp_path / "runs"
    first = import_archive(fake_archive(tmp_path / "a.tar.gz", "gan-gpu-x", "2026-12-01", {"val.csv": b"step\n"}), runs)
    assert (first / "model.pt").read_bytes() == b"weights 2026-12-01" and (first / "val.csv").exists()
    (first / "best.json").unlink()  # not committed: a fresh clone has only model.* and the logs
    assert import_archive(tmp_path / "a.tar.gz", runs) == first  # the same archive again: nothing changes
    (first / "model.json").rename(first / "best.json")  # an import cut before its last file ...
    (first / "model.pt").unlink()
    import_archive(tmp_path / "a.tar.gz", runs)  # ... is completed by importing the same archive again
    assert (first / "model.pt").read_bytes() == b"weights 2026-12-01" and (first / "model.json").exists()
    (first / "best.json").unlink()
    other = fake_archive(tmp_path / "b.tar.gz", "gan-gpu-x", "2026-12-02")
    with pytest.raises(ColorizationError, match="already holds a run .*saved at 2026-12-01.*RUN_TAG"):
        import_archive(other, runs)
    assert (first / "model.pt").read_bytes() == b"weights 2026-12-01"
    import_archive(other, runs, force=True)
    assert (first / "model.pt").read_bytes() == b"weights 2026-12-02"
    assert not (first / "val.csv").exists()  # nothing of the replaced run stays beside the new one


def test_gpu_train_exits_non_zero_when_a_run_fails(tmp_path):
    env = {**os.environ, "DEVICE": "cpu", "METHODS": "nosuch", "EXPORT": str(tmp_path / "OUT"), "RUNS_DIR": str(tmp_path / "runs"),
           "RUN_TAG": "t"}  # fmt: skip
    r = subprocess.run(["bash", "experiments/scripts/gpu_train.sh", "96"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "failed: nosuch" in r.stdout and "nosuch: nothing to export" in r.stdout
    assert "nosuch" in (tmp_path / "runs" / "nosuch-t.out").read_text()  # the run's own error, kept


def test_device_slim_takes_results_out_for_the_call_and_puts_every_file_back(tmp_path):
    repo = tmp_path / "repo"
    (repo / "experiments" / "scripts").mkdir(parents=True)
    script = repo / "experiments" / "scripts" / "device_slim.sh"
    script.write_text((PROJECT / "experiments" / "scripts" / "device_slim.sh").read_text())
    (repo / "results" / "runs" / "r").mkdir(parents=True)
    (repo / "results" / "runs" / "r" / "log.csv").write_bytes(os.urandom(300_000))
    (repo / "code.py").write_text("print(1)\n")
    (repo / ".gitignore").write_text("/.devicepack/\nresults/cache/\n")
    (repo / "results" / "cache").mkdir()
    (repo / "results" / "cache" / "big.u8").write_bytes(b"x" * 1000)  # ignored: stays
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    env = {**os.environ, "DEVICE_SLIM_IGNORE_TRAINING": "1"}
    r = subprocess.run(["bash", str(script), "enter"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not (repo / "results" / "runs").exists() and (repo / "results" / "cache" / "big.u8").exists()
    assert "of 64 MiB" in r.stdout and "0.0 MiB" in r.stdout
    assert subprocess.run([*git, "ls-files"], capture_output=True, text=True).stdout.split() == [".gitignore", "code.py", "experiments/scripts/device_slim.sh"]
    again = subprocess.run(["bash", str(script), "enter"], env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "already entered" in again.stderr
    r = subprocess.run(["bash", str(script), "leave"], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "back on main" in r.stdout
    assert (repo / "results" / "runs" / "r" / "log.csv").stat().st_size == 300_000
    assert subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout == ""
    # uncommitted work is never put at risk
    (repo / "code.py").write_text("print(2)\n")
    r = subprocess.run(["bash", str(script), "enter"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "uncommitted changes" in r.stderr and (repo / "results" / "runs" / "r" / "log.csv").exists()
    subprocess.run([*git, "checkout", "-q", "code.py"], check=True)
    # and leaving never discards what was done while entered
    assert subprocess.run(["bash", str(script), "enter"], env=env, capture_output=True, text=True).returncode == 0
    (repo / "code.py").write_text("print(3)\n")
    r = subprocess.run(["bash", str(script), "leave"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "git stash" in r.stderr and (repo / "code.py").read_text() == "print(3)\n"
    subprocess.run([*git, "commit", "-q", "-am", "fix made while entered"], check=True)
    r = subprocess.run(["bash", str(script), "leave"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "HEAD moved" in r.stderr and "cherry-pick" in r.stderr
    assert not (repo / "results" / "runs").exists()  # still entered: nothing lost, nothing restored half-way
