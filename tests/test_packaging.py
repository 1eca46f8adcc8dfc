"""A real package: `pip wheel .` builds, and `pip install` of it in a fresh venv gives working
console scripts that use the installed code (not this checkout). Offline: no dependency is
downloaded (the fresh venv borrows this environment's packages, tests/venvs.py)."""

from __future__ import annotations

import subprocess
import zipfile

import numpy as np
import pytest
import tomllib
from PIL import Image

from tests.venvs import PROJECT, child_venv, clean_env, copy_source, pip

SCRIPTS = ["colorize", "colorize-train", "colorize-evaluate", "colorize-benchmark", "colorize-study", "colorize-report",
           "colorize-dashboard", "colorize-serve"]  # fmt: skip


def test_pyproject_declares_a_real_package():
    meta = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    project = meta["project"]
    assert project["requires-python"] == ">=3.11"  # tomllib is imported unconditionally
    deps = " ".join(project["dependencies"])
    for dep in ("torch", "numpy", "streamlit", "scikit-image", "sqlalchemy"):
        assert dep in deps
    assert "pytest" not in deps and "ruff" not in deps  # test tools are an extra, not runtime
    extras = project["optional-dependencies"]
    assert {"tf", "gpu", "postgres", "video", "metrics", "dev"} <= set(extras)
    assert any("and-cuda" in d for d in extras["gpu"]) and any("pytest" in d for d in extras["dev"])
    assert set(SCRIPTS) <= set(project["scripts"])
    for target in project["scripts"].values():  # every script points at a real main()
        module, func = target.split(":")
        assert (PROJECT / (module.replace(".", "/") + ".py")).is_file(), target
        assert f"def {func}(" in (PROJECT / (module.replace(".", "/") + ".py")).read_text(), target
    runtime = (PROJECT / "requirements.txt").read_text()
    assert "pytest" not in runtime and "pytest" in (PROJECT / "requirements-dev.txt").read_text()
    assert "requirements-dev.txt" in (PROJECT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_wheel_builds_and_its_console_scripts_work_in_a_fresh_venv(tmp_path):
    py = child_venv(tmp_path / "venv")
    src = copy_source(tmp_path / "src")
    r = pip(py, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src))
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("colorization_workbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for must in ("backends/__init__.py", "backends/assets/ab_gamut.npz", "backends/zhang_published.py", "experiments/configs/gan.toml",
                 "experiments/serve.py", "dashboard/app.py", "dashboard/views/compare.py", "experiments/study/cli.py"):  # fmt: skip
        assert must in names, must
    assert any(n.endswith("share/colorization-workbench/streamlit/config.toml") for n in names)
    assert not any(n.startswith(("tests/", "results/")) for n in names)
    entry_points = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert all(f"{s} = " in entry_points for s in SCRIPTS)

    r = pip(py, "install", "--no-deps", "--no-build-isolation", str(wheel))
    assert r.returncode == 0, r.stderr[-2000:]
    bin_ = tmp_path / "venv" / "bin"
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = clean_env()
    where = subprocess.run([str(py), "-c", "import backends, experiments; print(backends.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert str(tmp_path / "venv") in where  # the installed copy, not the checkout
    for script in SCRIPTS:
        r = subprocess.run([str(bin_ / script), "--help"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and "usage" in (r.stdout + r.stderr).lower(), (script, r.stderr[-1500:])
    # a real colorization through the installed command (the shipped model is in the checkout's results/)
    Image.fromarray((np.random.default_rng(0).random((40, 52)) * 255).astype(np.uint8)).save(work / "in.png")
    r = subprocess.run([str(bin_ / "colorize"), "--method", "gan", "--checkpoint", str(PROJECT / "results/checkpoints/gan.pt"),
                        "--input", "in.png", "--output", "out.png", "--device", "cpu"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    assert Image.open(work / "out.png").size == (52, 40)
    # bad input: one line, status 2
    r = subprocess.run([str(bin_ / "colorize"), "--method", "nope", "--input", "in.png", "--output", "o.png"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2 and "unknown method" in r.stderr


def test_colorize_dashboard_applies_the_projects_streamlit_settings():
    from dashboard import launch

    flags = launch.config_flags(launch.config_file())
    assert "--server.address=localhost" in flags and "--browser.gatherUsageStats=false" in flags
    assert "--server.maxUploadSize=25" in flags
