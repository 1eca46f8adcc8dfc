"""Done when: a method defined in a separate package, installed with ``pip install -e``, appears on
every page, in the benchmark and in studies - with no change to this project.

The package (made here in tmp_path) declares an entry point of the group
``colorization_workbench.methods``; it is installed into a fresh venv (tests/venvs.py) whose Python
then runs the project's own pages (AppTest), benchmark and study preparation from this checkout.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.venvs import PROJECT, child_venv, clean_env, pip

PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "wb-sepia"
version = "0.1.0"

[project.entry-points."colorization_workbench.methods"]
sepia = "wb_sepia.method:SepiaColorizer"

[tool.setuptools]
packages = ["wb_sepia"]
"""

METHOD = '''
"""An old-photo sepia toning: a constant warm (or cool) ab, scaled by strength."""
import numpy as np
from backends import MethodInfo, Option, PluginColorizer


class SepiaColorizer(PluginColorizer):
    method_info = MethodInfo(
        "sepia", "Sepia toning: one warm tone for every pixel (a baseline from outside)",
        paper="(none: a tone-mapping baseline)",
        options=(Option("strength", "float", 0.6, 0.0, 1.0, 0.05, label="Sepia strength"),
                 Option("tone", "choice", "warm", choices=("warm", "cool"))),
    )

    def predict_ab(self, L, reference=None):
        a, b = (8.0, 28.0) if self.options["tone"] == "warm" else (-5.0, -25.0)
        s = float(self.options["strength"])
        return np.stack([np.full_like(L, a * s), np.full_like(L, b * s)], axis=1)
'''

CHECKS = r'''
import json, os, sys, time
from pathlib import Path
import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

T0 = time.time()
marks = {}
import backends
out = {"names": backends.names(), "source": backends.source("sepia"), "status": backends.status("sepia").available}
root = Path.cwd()  # the project checkout, unchanged
views = root / "dashboard" / "views"

# Home: the method table
at = AppTest.from_file(str(root / "dashboard" / "app.py"), default_timeout=120).run()
t0 = time.time()
while not at.dataframe and time.time() - t0 < 120:
    time.sleep(0.5)
    at.run()
table = at.dataframe[0].value
row = table[table["method"] == "sepia"].iloc[0]
out["home"] = {"status": row["status"], "what": row["what"]}

marks["home"] = round(time.time() - T0, 1)
# Compare: chosen by default (it can run), its options as widgets, colorized on click
at = AppTest.from_file(str(views / "compare.py"), default_timeout=120).run()
out["compare_options"] = list(at.multiselect(key="cmp_methods").options)
at.multiselect(key="cmp_methods").set_value(["sepia"]).run()
at.slider(key="cmp_sepia_strength").set_value(1.0).run()
out["compare_tone"] = list(at.selectbox(key="cmp_sepia_tone").options)
at.button(key="cmp_run").click().run()
out["compare_exceptions"] = [e.value for e in at.exception]
out["compare_captions"] = [c for im in at.image for c in im.captions]

marks["compare"] = round(time.time() - T0, 1)
# Metrics: an evaluation can be started with it
at = AppTest.from_file(str(views / "metrics.py"), default_timeout=120).run()
out["metrics_options"] = list(at.multiselect(key="met_new_methods").options)

marks["metrics"] = round(time.time() - T0, 1)
# Study designer (admin): it can be put in a study
at = AppTest.from_file(str(views / "study_designer.py"), default_timeout=120)
at.secrets["study_admin_token"] = "t0ken"
at.session_state["_study_admin_token"] = "t0ken"
at.run()
out["designer_options"] = list(at.multiselect(key="designer_methods").options)

marks["designer"] = round(time.time() - T0, 1)
# Study: its images are generated through backends.load
from experiments.study.prepare import prepare
from experiments.study.protocol import StudyDesign
from experiments.study.storage import StudyStore
photos = []
for i in range(2):
    p = Path(sys.argv[1]) / f"p{i}.png"
    Image.fromarray((np.random.default_rng(i).random((40, 40, 3)) * 255).astype(np.uint8)).save(p)
    photos.append(str(p))
store = StudyStore(f"sqlite:///{sys.argv[1]}/studies.sqlite")
store.create_study(StudyDesign(name="outside", methods=["sepia"], photos=photos, size=32, trials=2, practice=0, vigilance=0.0))
rep = prepare(store, "outside", device="cpu")
out["study"] = {"ready": rep.ready, "generated": rep.generated,
                "has": all(store.has_image("outside", store.photo_id("outside", p), "sepia") for p in photos)}
marks["study"] = round(time.time() - T0, 1)
out["marks"] = marks
print("@@" + json.dumps(out, default=str))
'''


@pytest.mark.slow
def test_a_method_installed_from_outside_appears_everywhere(tmp_path):
    pkg = tmp_path / "wb-sepia"
    (pkg / "wb_sepia").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "wb_sepia" / "__init__.py").write_text("")
    (pkg / "wb_sepia" / "method.py").write_text(METHOD)
    py = child_venv(tmp_path / "venv")
    r = pip(py, "install", "--no-deps", "--no-build-isolation", "-e", str(pkg))
    assert r.returncode == 0, r.stderr[-2000:]

    results, work = tmp_path / "results", tmp_path / "work"
    work.mkdir()
    (tmp_path / "checks.py").write_text(CHECKS)
    env = clean_env(PYTHONPATH=str(PROJECT), COLORIZE_RESULTS_DIR=str(results), COLORIZE_STUDY_DB=f"sqlite:///{work}/app.sqlite",
                    COLORIZE_STUDY_ADMIN_TOKEN="t0ken")  # fmt: skip
    r = subprocess.run([str(py), str(tmp_path / "checks.py"), str(work)], cwd=PROJECT, env=env, capture_output=True, text=True,
                       timeout=900)  # fmt: skip
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    out = json.loads(r.stdout.split("@@", 1)[1])
    print("seconds since start, per page:", out["marks"])
    assert "sepia" in out["names"] and out["source"] == "entry point of wb-sepia" and out["status"]
    assert out["home"]["status"] != "unavailable" and out["home"]["what"].startswith("Sepia toning")
    assert "sepia" in out["compare_options"] and out["compare_tone"] == ["warm", "cool"]
    assert not out["compare_exceptions"], out["compare_exceptions"]
    assert any(c.startswith("sepia - ") for c in out["compare_captions"]), out["compare_captions"]
    assert "sepia" in out["metrics_options"] and "sepia" in out["designer_options"]
    assert out["study"] == {"ready": 2, "generated": 6, "has": True}  # real, vigilance and sepia for each photo

    # the benchmark times it like any built-in method, with the project's own command
    bench = tmp_path / "bench"
    r = subprocess.run([str(py), "-m", "experiments.benchmark", "--methods", "sepia", "--sizes", "64", "--repeats", "1", "--warmup", "0",
                        "--batch", "0", "--eval-photos", "0", "--cpu-threads", "0", "--no-isolate", "--quiet", "--out", str(bench)],
                       cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    (report,) = bench.glob("*.json")
    rows = [x for x in json.loads(report.read_text())["rows"] if x["method"] == "sepia"]
    assert any(x["kind"] == "latency" and x["size"] == 64 and x["status"] == "ok" and x["median_s"] > 0 for x in rows), rows
