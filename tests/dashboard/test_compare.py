"""Compare page: photo in, the chosen methods side by side (each as soon as done), reruns of only the method an
option concerns, cached results marked, metrics, the slider between any two, figure and zip, fusion's extras, bad uploads."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import APP, no_exceptions


def compare_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    return at.switch_page("views/compare.py").run()


def upload(at: AppTest, name: str, data: bytes, key: str = "cmp_upload") -> AppTest:
    at.radio(key="cmp_source").set_value("Upload").run()
    at.file_uploader(key=key).upload(name, data, "image/png").run()
    return at


def test_sample_photo_runs_chosen_methods_and_keeps_the_comparison(results_root, trained_methods):
    at = compare_page()
    no_exceptions(at)
    at.selectbox(key="cmp_sample").set_value("cat (chelsea)").run()
    at.multiselect(key="cmp_methods").set_value(trained_methods).run()
    at.button(key="cmp_run").click().run()
    no_exceptions(at)
    assert not at.error, [e.value for e in at.error]
    captions = [c for im in at.image for c in im.captions]
    # grey input, one tile per method with its time and device, then the ground truth
    assert captions[0].startswith("grey input")
    for m in trained_methods:
        assert any(c.startswith(f"{m} - ") and " s on cpu" in c for c in captions), captions
    assert captions[len(trained_methods) + 1].startswith("ground truth")
    if "fusion" in trained_methods:  # fusion's predicted scene label
        assert any(c.startswith("fusion - ") and "scene: " in c for c in captions), captions
    # metrics on demand: the click shows the results and their times, the button adds the metrics
    table = at.dataframe[0].value
    assert set(table["method"]) == set(trained_methods) and "PSNR (dB) ↑" not in table
    (cdir,) = list((results_root / "comparisons").iterdir())
    assert not any(v["metrics"] for v in json.loads((cdir / "meta.json").read_text())["methods"].values())
    at.button(key="cmp_metrics_go").click().run()
    no_exceptions(at)
    table = at.dataframe[0].value
    assert set(table["method"]) == set(trained_methods)
    assert {"PSNR (dB) ↑", "SSIM (0-1) ↑", "CIEDE2000 (ΔE00) ↓", "colourfulness M3", "AuC (0-1) ↑"} <= set(table.columns)
    assert (table["PSNR (dB) ↑"] > 5).all() and set(table["result"]) == {"computed now"}
    assert at.button(key="cmp_metrics_go").disabled  # nothing left to compute (drawn after the callback computed them)
    # kept under results/comparisons/<generated id>/, the metrics written into it when computed
    (cdir,) = list((results_root / "comparisons").iterdir())
    meta = json.loads((cdir / "meta.json").read_text())
    assert all(meta["methods"][m]["metrics"]["psnr"] > 5 for m in trained_methods)
    assert meta["source"] == "sample:cat (chelsea)" and meta["has_truth"] and meta["workspace"]
    assert {f"{m}.png" for m in trained_methods} | {"input.png", "truth.png"} <= {p.name for p in cdir.iterdir()}
    for m in trained_methods:
        assert Image.open(cdir / f"{m}.png").size == (451, 300)
    # the slider compares any two of input, results and truth, offline
    html = at.get("iframe")[0].proto.srcdoc
    assert 'type="range"' in html and "http://" not in html and "https://" not in html
    at.selectbox(key="cmp_ba_left").set_value(trained_methods[-1]).run()
    at.selectbox(key="cmp_ba_right").set_value("ground truth").run()
    no_exceptions(at)
    html = at.get("iframe")[0].proto.srcdoc
    assert f"left: {trained_methods[-1]}" in html and "right: ground truth" in html
    # the labelled figure (PNG, PDF) and the zip
    labels = {b.label for b in at.get("download_button")}
    assert {"Figure (PNG)", "Figure (PDF)", "Everything (zip)"} <= labels
    # the same photo again: every result is there already, nothing to run, no second History entry
    assert at.button(key="cmp_run").disabled
    assert len(list((results_root / "comparisons").iterdir())) == 1


def test_a_parameter_change_reruns_only_its_method_and_cached_results_say_so(results_root, trained_methods):
    if not {"classification", "gan"} <= set(trained_methods):
        pytest.skip("classification and gan not trained here")
    at = compare_page()
    at.multiselect(key="cmp_methods").set_value(["classification", "gan"]).run()
    at.button(key="cmp_run").click().run()
    gan_before = [c for im in at.image for c in im.captions if c.startswith("gan - ")]
    at.slider(key="cmp_classification_temperature").set_value(0.9).run()
    no_exceptions(at)
    assert at.button(key="cmp_run").label == "Colorize (classification)"  # only the method the option concerns
    at.button(key="cmp_run").click().run()
    no_exceptions(at)
    caps = [c for im in at.image for c in im.captions]
    (gan_after,) = [c for c in caps if c.startswith("gan - ")]
    assert gan_before[0].endswith(" s on cpu") and gan_after.startswith("gan - cached (computed ")  # gan kept, not rerun
    # back to the first temperature: that result is kept (nothing to run) and says it is cached
    at.slider(key="cmp_classification_temperature").set_value(0.38).run()
    assert at.button(key="cmp_run").disabled
    caps = [c for im in at.image for c in im.captions]
    assert any(c.startswith("classification - cached (computed ") for c in caps), caps
    assert "cached" in " ".join(at.dataframe[0].value["result"])


def test_fusion_global_features_from_another_photo(results_root, trained_methods):
    if "fusion" not in trained_methods:
        pytest.skip("fusion not trained here")
    at = compare_page()
    at.multiselect(key="cmp_methods").set_value(["fusion"]).run()
    at.button(key="cmp_run").click().run()
    at.selectbox(key="cmp_fus_other").set_value("coffee").run()
    at.button(key="cmp_fus_go").click().run()
    no_exceptions(at)
    caps = [c for im in at.image for c in im.captions]
    assert "fusion: global features of the other photo" in caps
    assert any(c.startswith("the other photo - scene: ") for c in caps)


def test_zip_holds_everything(results_root, trained_methods):
    from dashboard import common

    grey, truth = common.prepare_input(common.sample_photo("astronaut")[:64, :80])
    results = [common.colorize_one(m, grey) for m in trained_methods]
    for r in results:
        r.metrics = common.image_metrics(r.image, truth)
    z = zipfile.ZipFile(io.BytesIO(common.comparison_zip(grey, truth, results, {"id": "x"})))
    names = set(z.namelist())
    assert {"input_grey.png", "ground_truth.png", "metrics.csv", "meta.json"} <= names
    assert {f"{m}.png" for m in trained_methods} <= names
    csv = z.read("metrics.csv").decode().splitlines()
    assert csv[0].startswith("method,seconds,device,error,") and len(csv) == len(trained_methods) + 1


def test_unavailable_method_says_why_and_others_still_run(results_root, trained_methods):
    (results_root / "checkpoints" / "gan.pt").unlink(missing_ok=True)
    if "gan" not in trained_methods:
        pytest.skip("gan backend not trained here")
    at = compare_page()
    at.multiselect(key="cmp_methods").set_value(["gan", "classification"]).run()
    at.button(key="cmp_run").click().run()
    no_exceptions(at)
    errors = [e.value for e in at.error]
    assert any("gan" in e and "no trained checkpoint" in e for e in errors), errors
    captions = [c for im in at.image for c in im.captions]
    assert any(c.startswith("classification - ") for c in captions)


def test_temperature_slider_changes_the_classification_result(results_root, trained_methods):
    if "classification" not in trained_methods:
        pytest.skip("classification backend not trained here")
    at = compare_page()
    at.multiselect(key="cmp_methods").set_value(["classification"]).run()
    at.session_state["cmp_auto_metrics"] = True  # metrics with every click (the toggle shows once there are results)
    chroma = {}
    for t in (0.05, 1.0):
        at.slider(key="cmp_classification_temperature").set_value(t).run()
        at.button(key="cmp_run").click().run()
        no_exceptions(at)
        chroma[t] = float(at.dataframe[0].value["colourfulness M3"].iloc[0])
    # the annealed mean at a low temperature is the more colourful decoding (Zhang et al. 2016, fig. 3)
    assert chroma[0.05] != chroma[1.0]


def test_grey_upload_has_no_ground_truth(results_root, trained_methods, png_bytes):
    at = upload(compare_page(), "old_photo.png", png_bytes(grey=True))
    no_exceptions(at)
    assert any("no ground truth" in c.value for c in at.caption)
    at.multiselect(key="cmp_methods").set_value(trained_methods[:1]).run()
    at.button(key="cmp_run").click().run()
    at.button(key="cmp_metrics_go").click().run()
    no_exceptions(at)
    table = at.dataframe[0].value
    assert "PSNR (dB) ↑" not in table and "colourfulness M3" in table
    captions = [c for im in at.image for c in im.captions]
    assert not any(c.startswith("ground truth") for c in captions)


def _truncated_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()[:300]


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("notes.png", b"this is not an image at all", "not an image"),
        ("empty.png", b"", "empty"),
        ("cut.png", _truncated_png(), "truncated"),
    ],
)
def test_bad_upload_gives_a_clear_message(results_root, name, data, reason):
    at = upload(compare_page(), name, data)
    no_exceptions(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and name in errors[0] and reason in errors[0], errors
    assert not any(b.key == "cmp_run" for b in at.button)  # nothing to run on


def test_too_large_upload_is_refused(results_root, monkeypatch, png_bytes):
    monkeypatch.setenv("COLORIZE_MAX_PIXELS", "1000")
    at = upload(compare_page(), "big.png", png_bytes(size=(40, 56)))
    no_exceptions(at)
    (err,) = [e.value for e in at.error]
    assert "too large" in err and "big.png" in err


@pytest.mark.slow
def test_neural_style_shows_its_reference(results_root, png_bytes):
    at = upload(compare_page(), "small.png", png_bytes(size=(48, 48)))
    at.multiselect(key="cmp_methods").set_value(["neural_style"]).run()
    at.file_uploader(key="cmp_reference").upload("ref.png", png_bytes(size=(48, 48), seed=9), "image/png").run()
    at.button(key="cmp_run").click().run()
    no_exceptions(at)
    captions = [c for im in at.image for c in im.captions]
    assert any(c.startswith("neural_style reference (uploaded)") for c in captions), captions
    assert any(c.startswith("neural_style - ") for c in captions), [e.value for e in at.error]
