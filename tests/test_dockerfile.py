"""The Dockerfile, checked by a small linter (no Docker engine here; `docker build` runs where one
exists): valid instructions, a pinned base, everything it copies and runs exists, a non-root user,
the ports and a start command that are this project's."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import pytest
import tomllib

from tests.venvs import PROJECT

INSTRUCTIONS = {"FROM", "ARG", "ENV", "WORKDIR", "RUN", "COPY", "USER", "EXPOSE", "HEALTHCHECK", "CMD", "ENTRYPOINT", "LABEL"}


def instructions() -> list[tuple[str, str]]:
    text = (PROJECT / "Dockerfile").read_text()
    logical = re.sub(r"\\\n\s*", " ", text)  # join continuation lines
    out = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_lints_clean():
    ins = instructions()
    words = [w for w, _ in ins]
    assert set(words) <= INSTRUCTIONS, set(words) - INSTRUCTIONS
    assert [w for w in words if w not in ("ARG",)][0] == "FROM"
    base = dict(ins)["FROM"]
    assert ":" in base and not base.endswith(":latest"), "pin the base image"
    assert "python:3.11" in base  # requires-python >= 3.11
    # what it copies exists; what it installs is this project's
    for w, rest in ins:
        if w == "COPY":
            for src in shlex.split(rest)[:-1]:
                assert src == "." or (PROJECT / src).exists(), src
        if w == "RUN":
            for req in re.findall(r"-r\s+([\w./-]+)", rest):
                assert (PROJECT / req).is_file(), req
            assert "apt-get install" not in rest or "rm -rf /var/lib/apt/lists" in rest
            assert "curl " not in rest and "wget " not in rest  # nothing fetched outside package indexes
    assert "ADD" not in words
    # runs as a non-root user, before the start command
    users = [i for i, (w, _) in enumerate(ins) if w == "USER"]
    assert users and dict(ins)["USER"] not in ("root", "0") and users[-1] < words.index("CMD")
    assert {"8501", "8000"} <= set(" ".join(r for w, r in ins if w == "EXPOSE").split())
    # exec-form commands naming this project's console scripts / modules
    scripts = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["scripts"]
    import json

    cmd = json.loads(dict(ins)["CMD"])
    assert cmd[0] in scripts and "--server.address=0.0.0.0" in cmd
    health = dict(ins)["HEALTHCHECK"]
    assert "experiments.healthcheck" in health and (PROJECT / "experiments" / "healthcheck.py").is_file()
    assert "colorize-serve --host 0.0.0.0" in (PROJECT / "Dockerfile").read_text()  # the API variant is documented
    assert "--gpus all" in (PROJECT / "Dockerfile").read_text()  # and the GPU one


def test_dockerignore_keeps_the_image_small_but_ships_the_models():
    ignored = (PROJECT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)
    assert not any(p.startswith("results/checkpoints") or p == "results" for p in ignored)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0,
                    reason="no Docker engine on this machine (the client alone cannot build)")  # fmt: skip
def test_the_image_builds():
    r = subprocess.run(["docker", "build", "-q", "-t", "colorization-workbench:test", str(PROJECT)], capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr[-3000:]
