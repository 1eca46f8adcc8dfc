"""The method registry: declarations, and methods from outside (COLORIZE_METHODS, a methods file)."""

from __future__ import annotations

import numpy as np
import pytest

import backends
from backends import color
from backends.registry import BUILTIN, MethodInfo, Option

PLUGIN = '''
import numpy as np
from backends import MethodInfo, Option, PluginColorizer

class Tint(PluginColorizer):
    method_info = MethodInfo("tint", "a constant tint (test)", paper="nobody, 2026",
                             options=(Option("a", "float", 20.0, -60.0, 60.0), Option("vivid", "bool", False)))

    def predict_ab(self, L, reference=None):
        k = 2.0 if self.options["vivid"] else 1.0
        return np.stack([np.full_like(L, k * self.options["a"]), np.zeros_like(L)], axis=1)
'''


@pytest.fixture
def plugin_file(tmp_path, monkeypatch):
    p = tmp_path / "tint_method.py"
    p.write_text(PLUGIN)
    monkeypatch.setenv("COLORIZE_METHODS_FILE", str(tmp_path / "absent.toml"))
    return p


def test_every_built_in_method_declares_itself():
    for name in BUILTIN:
        info = backends.describe(name)
        assert info.name == name and info.paper and "\n" not in info.description
        assert not info.description.startswith("cannot be loaded"), info.description
    assert backends.describe("classification").option("temperature").default == 0.38
    assert backends.names("slow") == ["neural_style"] and backends.describe("neural_style").reference == "optional"


def test_declared_options_are_checked_by_load():
    with pytest.raises(ValueError, match="classification: option temperature: 5.0 is above the maximum 1.0"):
        backends.load("classification", device="cpu", temperature=5.0)
    with pytest.raises(ValueError, match="not a float"):
        backends.load("classification", device="cpu", temperature="hot")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad Name", "description": "x"}, "method name"),
        ({"name": "ok", "description": "two\nlines"}, "one line"),
        ({"name": "ok", "description": "x", "reference": "maybe"}, "reference"),
        ({"name": "ok", "description": "x", "options": ({"name": "t", "default": 2.0, "min": 0.0, "max": 1.0},)}, "above the maximum"),
        ({"name": "ok", "description": "x", "options": (Option("t"), Option("t"))}, "unique"),
    ],
)
def test_bad_declarations_are_refused_with_the_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MethodInfo(**kwargs)


def test_option_coercion():
    assert Option("n", "int", 3, 1, 9).coerce("4") == 4
    assert Option("b", "bool", False).coerce("true") is True
    assert Option("c", "choice", "x", choices=("x", "y")).coerce("y") == "y"
    with pytest.raises(ValueError, match="not one of x, y"):
        Option("c", "choice", "x", choices=("x", "y")).coerce("z")
    with pytest.raises(ValueError, match="not a int"):
        Option("n", "int", 3).coerce(2.5)


def test_a_file_in_colorize_methods_becomes_a_method(plugin_file, monkeypatch):
    monkeypatch.setenv("COLORIZE_METHODS", str(plugin_file))
    assert backends.names()[: len(BUILTIN)] == list(BUILTIN) and backends.names()[-1] == "tint"
    assert backends.source("tint") == "COLORIZE_METHODS" and "tint" in backends.METHODS
    st = backends.status("tint")
    assert st.available and "no checkpoint" in st.reason
    grey = np.full((20, 30), 120, np.uint8)
    out = backends.load("tint", device="cpu", a="-15", vivid=True).colorize(grey)  # options coerced from text
    assert out.shape == (20, 30, 3)
    assert color.rgb_to_lab(out)[..., 1].mean() == pytest.approx(-30, abs=2)  # vivid doubles a
    assert backends.describe("tint").paper == "nobody, 2026"


def test_named_targets_a_methods_file_and_broken_registrations(plugin_file, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_file.parent))
    toml = tmp_path / "methods.toml"
    toml.write_text('[methods]\ntint = "tint_method:Tint"\nbroken = "no_such_module:Thing"\ngan = "tint_method:Tint"\n')
    monkeypatch.setenv("COLORIZE_METHODS_FILE", str(toml))
    monkeypatch.delenv("COLORIZE_METHODS", raising=False)
    with pytest.warns(UserWarning, match="taken by built-in"):
        names = backends.registry.discover(refresh=True)
    assert {"tint", "broken"} <= set(names) and backends.source("tint") == str(toml)
    st = backends.status("broken")  # listed, unavailable with the reason; the others unaffected
    assert not st.available and "no_such_module" in st.reason
    assert backends.describe("broken").description.startswith("cannot be loaded")
    assert any("'gan' is taken by built-in" in p for p in backends.problems())
    assert backends.load("tint", device="cpu").colorize(np.zeros((8, 8), np.uint8)).shape == (8, 8, 3)
    # a name that does not match the declaration is refused, saying both
    toml.write_text('[methods]\nother = "tint_method:Tint"\n')
    assert "declares the name 'tint'" in backends.status("other").reason


def test_unknown_names_still_list_the_known_ones():
    with pytest.raises(ValueError, match="known methods: regression, classification"):
        backends.load("nope")


def test_a_checkpoint_file_registers_as_a_second_model_of_its_method(photo, tmp_path, monkeypatch):
    """A run's model (a GPU round's import, say) beside the shipped one, under its own name."""
    import json

    import torch

    from backends.fusion import FusionColorizer, FusionConfig
    from tests.backends.test_fusion import TINY

    torch.manual_seed(0)
    run = tmp_path / "runs" / "fusion-gpu-x"
    run.mkdir(parents=True)
    FusionColorizer(FusionConfig(**TINY), "cpu").save(run / "model.pt", {"images_seen": 1234, "run": "fusion-gpu-x"})
    (run / "model.json").write_text(json.dumps({"method": "fusion", "images_seen": 1234, "hardware": "CPU test"}))
    monkeypatch.setenv("COLORIZE_METHODS_FILE", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("COLORIZE_METHODS", f"{run / 'model.pt'},mine={run / 'model.pt'}")
    assert {"fusion_gpu_x", "mine"} <= set(backends.METHODS)  # unnamed: the run folder's name
    info = backends.describe("fusion_gpu_x")
    assert info.name == "fusion_gpu_x" and "1,234 images seen; CPU test" in info.description and "fusion-gpu-x/model.pt" in info.description
    assert [o.name for o in info.options] == [o.name for o in backends.describe("fusion").options]  # the method's own widgets
    st = backends.status("mine")
    assert st.available and st.checkpoint == str(run / "model.pt")
    got = backends.load("mine", device="cpu").colorize(photo)
    want = FusionColorizer.from_checkpoint(run / "model.pt", "cpu").colorize(photo)
    assert got.shape == photo.shape
    np.testing.assert_array_equal(got, want)  # that checkpoint's colours, not the shipped model's
    # the method's option widgets, told apart from the shipped model's on Compare
    other = tmp_path / "gan-x.pt"
    other.write_bytes(b"not read until loaded")
    other.with_suffix(".json").write_text(json.dumps({"method": "gan"}))
    monkeypatch.setenv("COLORIZE_METHODS", f"{other}")
    labels = [o.label for o in backends.describe("gan_x").options]
    assert labels and all(label.startswith("gan_x: ") for label in labels)
    assert [o.label for o in backends.describe("gan").options] == [label.replace("gan_x", "gan", 1) for label in labels]
    # a file without its provenance, or none at all: listed as unavailable, saying which and why
    (run / "model.json").unlink()
    monkeypatch.setenv("COLORIZE_METHODS", f"bad={run / 'model.pt'},gone={tmp_path / 'nope.pt'}")
    assert not backends.status("bad").available and "provenance file model.json is missing" in backends.status("bad").reason
    assert "nope.pt: no such checkpoint file" in backends.status("gone").reason
    with pytest.raises(backends.ColorizationError, match="nope.pt: no such checkpoint file"):
        backends.load("gone", device="cpu")
