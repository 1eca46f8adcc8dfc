"""Training page: loss curves of runs, EMA, log scale, x axis, GAN losses, sample grids, CSV."""

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import APP, no_exceptions


def fake_run(root, name, method, losses, steps=20, samples=(10, 20)):
    d = root / "runs" / name
    (d / "samples").mkdir(parents=True)
    (d / "config.toml").write_text(f'method = "{method}"\n')
    cols = ["step", "epoch", "wall_s", "images_seen", *losses]
    rows = [",".join(cols)]
    for s in range(1, steps + 1):
        rows.append(",".join(map(str, [s, s // 10, s * 0.5, s * 16, *[round(2.0 / s + k, 4) for k, _ in enumerate(losses)]])))
    (d / "log.csv").write_text("\n".join(rows) + "\n")
    (d / "val.csv").write_text("step,wall_s,val_ab_rmse\n10,5.0,20.0\n20,10.0,15.0\n")
    for s in samples:
        Image.fromarray(np.full((12, 24, 3), s * 10, np.uint8)).save(d / "samples" / f"step_{s:07d}.png")
    return d


def training_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    return at.switch_page("views/training.py").run()


def values(v) -> list:
    """Plotly's JSON array: a list, or ``{"dtype", "bdata"}`` (base64 binary)."""
    import base64

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def traces(at, key):
    """(traces with plain x/y lists, layout) of the plotly chart whose element id holds ``key``."""
    import json

    (chart,) = [c for c in at.get("plotly_chart") if key in c.proto.id]
    fig = json.loads(chart.proto.spec)
    for t in fig["data"]:
        t["x"], t["y"] = values(t.get("x", [])), values(t.get("y", []))
    return fig["data"], fig["layout"]


def test_no_runs_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    at = training_page()
    no_exceptions(at)
    assert "No training runs yet" in at.info[0].value


def test_curves_controls_gan_and_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    fake_run(tmp_path, "classification", "classification", ["loss", "loss_cls"])
    fake_run(tmp_path, "gan-a", "gan", ["loss", "loss_g", "loss_d", "loss_l1"])
    at = training_page()
    no_exceptions(at)
    data, layout = traces(at, "trn_loss_chart")
    assert {t["name"] for t in data} == {"classification · loss", "gan-a · loss"}
    raw = np.array(data[0]["y"], dtype=float)
    # EMA 0 shows the raw log; wall time on the x axis; log scale
    at.slider(key="trn_ema").set_value(0.0).run()
    at.radio(key="trn_x").set_value("wall_s").run()
    at.checkbox(key="trn_log").check().run()
    no_exceptions(at)
    data, layout = traces(at, "trn_loss_chart")
    assert np.allclose(np.array(data[0]["y"], dtype=float)[:3], [2.0, 1.0, 2.0 / 3], atol=1e-3)
    assert not np.allclose(raw[:3], [2.0, 1.0, 2.0 / 3], atol=1e-3)  # the default smoothing was on
    assert data[0]["x"][:2] == [0.5, 1.0]
    assert layout["yaxis"]["type"] == "log"
    # the GAN's generator and discriminator losses
    gdata, _ = traces(at, "trn_gan_chart")
    assert {"gan-a · loss_g", "gan-a · loss_d"} <= {t["name"] for t in gdata}
    # sample grid per checkpoint with a step slider
    at.selectbox(key="trn_sample_run").set_value("gan-a").run()
    assert at.select_slider(key="trn_sample_step").value == 20
    at.select_slider(key="trn_sample_step").set_value(10).run()
    no_exceptions(at)
    assert at.image[0].captions == ["gan-a at step 10"]
    # CSV export holds both runs
    assert at.get("download_button")


def test_real_run_and_half_written_log(trained_results, tmp_path, monkeypatch):
    """The runs the session trained with experiments.train, plus a run whose last line is being written."""
    import shutil

    shutil.copytree(trained_results / "runs", tmp_path / "runs")
    d = fake_run(tmp_path, "live", "gan", ["loss", "loss_g", "loss_d"])
    with (d / "log.csv").open("a") as f:
        f.write("21,2,10.5,33")  # no newline, missing columns: the trainer is writing it
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    at = training_page()
    no_exceptions(at)
    assert at.toggle(key="trn_follow").value  # a run written seconds ago is followed live
    names = {t["name"] for t in traces(at, "trn_loss_chart")[0]}
    assert "live · loss" in names
    assert any(n.startswith("classification · ") for n in names) or not (tmp_path / "runs" / "classification").exists()
