"""Training page: one panel per run, titled axes, log scale, images seen, D(real)/D(fake), validation curves of
every run, labelled sample grids following the chosen run, CSV."""

import json

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
        Image.fromarray(np.full((12, 24, 3), s * 5, np.uint8)).save(d / "samples" / f"step_{s:07d}.png")
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
    d = fake_run(tmp_path, "gan-a", "gan", ["loss", "loss_g", "loss_d", "loss_l1", "d_real", "d_fake"], samples=(10, 20, 30))
    (d / "val.csv").write_text("step,wall_s,val_ab_rmse,images_seen,val_auc_rebal\n10,5.0,20.0,160,0.80\n20,10.0,15.0,320,0.82\n")
    at = training_page()
    no_exceptions(at)
    # one panel per run, the GAN's D(real)/D(fake) in a panel of their own; images seen on x by default
    panels = [traces(at, f"trn_loss_chart_{i}") for i in range(3)]
    assert [lay["title"]["text"] for _, lay in panels] == [
        "classification (classification): training loss", "gan-a (gan): training loss", "gan-a (gan): discriminator outputs"]  # fmt: skip
    assert [t["name"] for t in panels[0][0]] == ["loss", "loss_cls"] and [t["name"] for t in panels[2][0]] == ["d_real", "d_fake"]
    data, layout = panels[0]
    assert data[0]["x"][:2] == [16, 32] and "images seen" in layout["xaxis"]["title"]["text"]
    assert all(lay["yaxis"]["title"]["text"] for _, lay in panels)  # titled axes
    # EMA 0 shows the raw log; hours on x; log scale asked for (probabilities stay linear)
    at.radio(key="trn_scale").set_value("log").run()
    at.slider(key="trn_ema").set_value(0.0).run()
    at.radio(key="trn_x").set_value("wall_h").run()
    no_exceptions(at)
    data, layout = traces(at, "trn_loss_chart_0")
    assert np.allclose(np.array(data[0]["y"], dtype=float)[:3], [2.0, 1.0, 2.0 / 3], atol=1e-3)
    assert np.allclose(data[0]["x"][:2], [0.5 / 3600, 1.0 / 3600])
    assert layout["yaxis"]["type"] == "log" and traces(at, "trn_loss_chart_2")[1]["yaxis"]["type"] == "linear"
    # a log axis labels its ticks in full (Plotly's default shows a bare "5" for 0.5 between decades)
    ticks = dict(zip(layout["yaxis"]["tickvals"], layout["yaxis"]["ticktext"]))
    assert ticks[0.5] == "0.5" and ticks[0.1] == "0.1" and ticks[2.0] == "2"
    assert all(float(t) == v for v, t in ticks.items())
    # validation: val_auc_rebal against images seen, the run without it named
    vdata, vlayout = traces(at, "trn_val_chart")
    assert [t["name"] for t in vdata] == ["gan-a (gan)"] and "AuC" in vlayout["yaxis"]["title"]["text"]
    assert any("classification" in c.value and "val_auc_rebal" in c.value for c in at.caption)
    # sample grid: labelled, and the step follows the chosen run (its own last checkpoint)
    at.selectbox(key="trn_sample_run").set_value("gan-a").run()
    assert at.select_slider(key="trn_sample_step_gan-a").value == 30
    at.select_slider(key="trn_sample_step_gan-a").set_value(10).run()
    at.selectbox(key="trn_sample_run").set_value("classification").run()
    assert at.select_slider(key="trn_sample_step_classification").value == 20
    no_exceptions(at)
    assert "Rows: grey input, prediction, ground truth" in at.image[0].captions[0]
    assert at.get("download_button")


def test_labelled_sample_grid_adds_row_and_column_labels(tmp_path):
    from experiments import runlogs

    p = tmp_path / "g.png"
    Image.fromarray(np.full((3 * 16, 4 * 16, 3), 128, np.uint8)).save(p)
    out = runlogs.labelled_sample_grid(p, "run at step 10")
    assert out.shape[0] > 48 and out.shape[1] > 64 and (out[:, :20] < 128).any()  # text drawn in the margins


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
    assert "live" in at.multiselect(key="trn_runs").value  # and shown first
    every = sorted(p.parent.name for p in (tmp_path / "runs").glob("*/log.csv"))
    at.multiselect(key="trn_runs").set_value(every).run()
    no_exceptions(at)
    titles = [c.proto.spec for c in at.get("plotly_chart") if "trn_loss_chart" in c.proto.id]
    titles = [json.loads(t)["layout"]["title"]["text"] for t in titles]
    assert "live (gan): training loss" in titles
    assert any(t.startswith("classification") for t in titles) or not (tmp_path / "runs" / "classification").exists()


def test_shipped_runs_first_styled_and_read_against_grey(tmp_path, monkeypatch):
    """The page opens on the runs the shipped models came from (an experiment of the same method a
    click away), draws the shipped run solid and the other dashed, and grey's score as a line."""
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    val = "step,wall_s,val_ab_rmse,images_seen,val_auc_rebal\n10,5.0,20.0,160,0.82\n20,10.0,15.0,320,0.84\n"
    for name in ("gan-main", "gan-experiment", "old-gan"):
        d = fake_run(tmp_path, name, "gan", ["loss", "loss_g", "loss_d"])
        (d / "val.csv").write_text(val)
        (d / "val_reference.json").write_text(json.dumps({"grey": {"val_auc_rebal": 0.8015}}))
    import os
    import time

    for name in ("gan-main", "old-gan"):  # finished runs: not followed live
        old = time.time() - 3600
        os.utime(tmp_path / "runs" / name / "log.csv", (old, old))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "gan.json").write_text(json.dumps({"shipped_from": "results/runs/gan-main"}))
    at = training_page()
    no_exceptions(at)
    assert at.multiselect(key="trn_runs").value == ["gan-experiment", "gan-main"]  # old-gan is not shown first
    data, layout = traces(at, "trn_val_chart")
    styles = {t["name"]: t["line"].get("dash", "solid") for t in data}
    assert styles == {"gan-main (gan) - shipped as gan": "solid", "gan-experiment (gan)": "dash"}
    (line,) = layout["shapes"]
    assert line["y0"] == line["y1"] == 0.8015
    assert any("grey (ab = 0) on the same photos: 0.801" in a["text"] for a in layout["annotations"])


def test_a_shipped_model_continued_from_another_run_shows_its_whole_curve(tmp_path, monkeypatch):
    """A model shipped from a run that went on from another (--init-from) opens with both runs, drawn
    solid in the method's colour and named for the part each trained, so its curve starts at 0; what
    the first run trained past the point the shipped one left it is another model's: dotted, named so."""
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    first = fake_run(tmp_path, "koal", "koalarization", ["loss"])
    (first / "val.csv").write_text("step,wall_s,images_seen,val_auc_rebal\n10,5.0,160,0.81\n20,10.0,320,0.83\n30,15.0,480,0.79\n")
    ext = fake_run(tmp_path, "koal-ext", "koalarization", ["loss"])
    (ext / "val.csv").write_text("step,wall_s,images_seen,val_auc_rebal\n30,15.0,480,0.835\n")
    fake_run(tmp_path, "koal-other", "koalarization", ["loss"])
    (tmp_path / "runs" / "koal-other" / "val.csv").write_text("step,wall_s,images_seen,val_auc_rebal\n10,5.0,160,0.80\n")
    import os
    import time

    old = time.time() - 3600
    for name in ("koal", "koal-ext", "koal-other"):
        os.utime(tmp_path / "runs" / name / "log.csv", (old, old))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "koalarization.json").write_text(json.dumps(
        {"shipped_from": "results/runs/koal-ext", "continued_from": {"run": "koal", "images_seen": 320, "file": "x.pt"}}))
    at = training_page()
    no_exceptions(at)
    assert at.multiselect(key="trn_runs").value == ["koal", "koal-ext"]
    at.multiselect(key="trn_runs").select("koal-other").run()
    data, _ = traces(at, "trn_val_chart")
    styles = {t["name"]: (t["line"].get("dash", "solid"), t["line"]["color"]) for t in data}
    assert styles["koal (koalarization) - shipped as koalarization (its first 320 images)"][0] == "solid"
    assert styles["koal-ext (koalarization) - shipped as koalarization"][0] == "solid"
    assert styles["koal-other (koalarization)"][0] == "dash"
    assert len({c for _, c in styles.values()}) == 1  # one method, one colour
    xs = {t["name"]: list(t["x"]) for t in data}
    assert xs["koal (koalarization) - shipped as koalarization (its first 320 images)"] == [160, 320]
    past = "koal (koalarization) after 320 images (not the shipped model)"
    assert styles[past][0] == "dot" and xs[past] == [320, 480]  # joined at the point the shipped model left it


def test_a_slow_run_still_training_is_followed_and_named(tmp_path, monkeypatch):
    """On a 2-core machine a run writes a log row every couple of minutes: while its last row is
    younger than three of its own intervals, the page opens on it, names it "training now" and
    follows it; a run that stopped, or that logged fast and went quiet, is neither."""
    import os
    import time

    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    ages = {"slow-live": 200, "slow-stopped": 1000, "fast-quiet": 200}
    for name, age in ages.items():
        d = fake_run(tmp_path, name, "gan", ["loss", "loss_g", "loss_d"])
        if name.startswith("slow"):  # a row every 150 s
            rows = d.joinpath("log.csv").read_text().splitlines()
            rows[1:] = [",".join([c.split(",")[0], "0", str(150.0 * i), *c.split(",")[3:]]) for i, c in enumerate(rows[1:], 1)]
            d.joinpath("log.csv").write_text("\n".join(rows) + "\n")
        t = time.time() - age
        os.utime(d / "log.csv", (t, t))
    at = training_page()
    no_exceptions(at)
    ms = at.multiselect(key="trn_runs")
    assert ms.value == ["slow-live"]
    assert "slow-live (gan) - training now" in ms.options
    assert not [o for o in ms.options if "training now" in o and "slow-live" not in o]
    assert at.toggle(key="trn_follow").value is True
