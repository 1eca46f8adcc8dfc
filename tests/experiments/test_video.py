"""Video: clips in and out of every method (frame count, fps, size, lightness, audio), the named
errors of bad clips, the warp error against known motion and flicker, the stabiliser and
``evaluate --video``. The clips are made here, from a photo of ../shared/data (a synthetic photo
without it): a camera panning and zooming over the still - real motion, every pixel moves - tiny
(64 x 48, 12-16 frames) so the file stays fast."""

from __future__ import annotations

import contextlib
import io
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch  # noqa: F401 - PyTorch before TensorFlow (the regression backend): the other order aborts
import torch._dynamo  # noqa: F401
from PIL import Image

import backends
from backends import color
from backends.base import Colorizer
from experiments import colorize, evaluate
from experiments import video as V
from experiments.metrics import temporal as T
from tests.conftest import SHARED, synthetic_photo

W, H, N = 64, 48, 16


def shared_photo(k: int = 0) -> np.ndarray:
    """A photo of ../shared/data/test (else ../shared/data/val, else a synthetic one)."""
    for sub in ("test", "val"):
        root = SHARED / "data" / sub
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            if len(files) > k:
                return np.asarray(Image.open(files[k]).convert("RGB"))
    return synthetic_photo(np.random.default_rng(k), 256, k % 2)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return shared_photo(0)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, photo) -> dict[str, Path]:
    """One clip per container (mp4 with an AAC tone, others without; a GIF; a frame folder)."""
    d = tmp_path_factory.mktemp("clips")
    out = {}
    for ext in (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ""):
        p = d / f"clip{ext}" if ext else d / "frames"
        audio = 0.64 if ext in (".mp4", ".mkv") else None
        out[ext or "folder"] = V.write_clip(
            p, V.pan_zoom_frames(photo, N, (W, H)), fps=25 if ext != ".gif" else 20, audio_seconds=audio
        )
    return out


def lightness(frames: list[np.ndarray]) -> np.ndarray:
    return np.stack([color.rgb_to_lab(f)[..., 0] for f in frames])


def read(path: Path) -> list[np.ndarray]:
    return [f.rgb for f in V.ClipReader(path)]


# --- fake methods (the real shared flow: L kept, ab joined) ------------------------------------------


class _Fake(Colorizer):
    working_size = 32

    @classmethod
    def open(cls, checkpoint=None, device="auto", **options):
        return cls()


class SepiaColorizer(_Fake):
    """The same ab everywhere, every frame: no flicker."""

    name = "fake_sepia"

    def predict_ab(self, L, reference=None):
        return np.stack([np.full_like(L, 12.0), np.full_like(L, 25.0)], 1)


class FlickerColorizer(_Fake):
    """Colours that jump from frame to frame (a fresh random ab offset per call and frame)."""

    name = "fake_flicker"
    rng = np.random.default_rng(0)

    def predict_ab(self, L, reference=None):
        off = self.rng.uniform(-20, 20, (len(L), 2, 1, 1)).astype(np.float32)
        return np.broadcast_to(off, (len(L), 2, *L.shape[1:])).copy()


@pytest.fixture(scope="module")
def gan(tmp_path_factory) -> list[str]:
    """CLI arguments of a tiny untrained gan (the CLI's checks and flow, not its colours, are under test)."""
    from backends.gan import GANColorizer

    path = tmp_path_factory.mktemp("gan") / "gan.pt"
    GANColorizer(GANColorizer.Config(ngf=8, ndf=8), "cpu").save(path, training=False)
    return ["--method", "gan", "--checkpoint", str(path), "--device", "cpu"]


def run(main, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


# --- round trips -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", "folder"])
def test_round_trip_keeps_frame_count_fps_size_and_lightness(kind, clips, tmp_path):
    src = clips[kind]
    dst = tmp_path / (f"out{kind}" if kind != "folder" else "out_frames")
    res = V.colorize_clip(SepiaColorizer(), src, dst, batch_size=5, progress=False)
    assert res.frames == N and res.output == dst
    a, b = V.probe(src), V.probe(dst)
    assert b.frames == a.frames == N
    assert (b.width, b.height) == (a.width, a.height) == (W, H)
    assert float(b.fps) == pytest.approx(float(a.fps), rel=0.01)
    fa, fb = read(src), read(dst)
    # the lightness is the input's (lossy codecs: within about a level on average)
    assert np.abs(lightness(fa) - lightness(fb)).mean() < 1.5
    # and the colour is the method's: a, b near (12, 25) on mid-tone pixels
    lab = color.rgb_to_lab(fb[N // 2])
    mid = (lab[..., 0] > 30) & (lab[..., 0] < 70)
    assert np.median(lab[..., 1][mid]) == pytest.approx(12, abs=4) and np.median(lab[..., 2][mid]) == pytest.approx(25, abs=4)


def test_cli_frame_folder_in_and_video_out_and_back(clips, gan, tmp_path):
    rc, out, err = run(colorize.main, *gan, "--input", str(clips["folder"]), "--output", str(tmp_path / "o.mp4"), "--fps", "12")
    assert rc == 0, err
    assert f"{N} frames" in out and "frames/s" in out
    info = V.probe(tmp_path / "o.mp4")
    assert info.frames == N and float(info.fps) == 12
    rc, _, err = run(colorize.main, *gan, "--input", str(tmp_path / "o.mp4"), "--output", str(tmp_path / "f"))
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "f").iterdir())[:2] == ["frame_000001.png", "frame_000002.png"]
    assert len(list((tmp_path / "f").iterdir())) == N


def test_audio_is_copied_unchanged(clips, tmp_path):
    import av

    for ext in (".mp4", ".mkv"):
        dst = tmp_path / f"o{ext}"
        V.colorize_clip(SepiaColorizer(), clips[ext], dst, progress=False)

        def audio_packets(p):
            with av.open(str(p)) as c:
                s = c.streams.audio[0]
                return s.codec_context.name, [bytes(k) for k in c.demux(s) if k.size]

        (ca, pa), (cb, pb) = audio_packets(clips[ext]), audio_packets(dst)
        assert ca == cb == "aac" and len(pa) > 5
        assert pa == pb  # the same compressed packets: copied, not re-encoded


def test_piece_of_a_clip_start_duration_max_frames(clips, gan, tmp_path):
    src = clips[".mp4"]
    rc, out, err = run(
        colorize.main, *gan, "--input", str(src), "--output", str(tmp_path / "a.mp4"), "--start", "0.2", "--duration", "0.24"
    )
    assert rc == 0, err
    assert V.probe(tmp_path / "a.mp4").frames == 6  # frames 5..10 of a 25-fps clip
    # the piece starts at frame 5: its lightness is that of input frame 5
    a, b = read(src), read(tmp_path / "a.mp4")
    assert np.abs(lightness(a[5:6]) - lightness(b[:1])).mean() < np.abs(lightness(a[0:1]) - lightness(b[:1])).mean()
    rc, _, err = run(colorize.main, *gan, "--input", str(src), "--output", str(tmp_path / "b.mp4"), "--max-frames", "4")
    assert rc == 0 and V.probe(tmp_path / "b.mp4").frames == 4
    rc, _, err = run(colorize.main, *gan, "--input", str(src), "--output", str(tmp_path / "c.mp4"), "--start", "9")
    assert rc == 2 and "past the clip's end" in err and not (tmp_path / "c.mp4").exists()


def test_existing_output_is_not_overwritten_without_overwrite(clips, gan, tmp_path):
    dst = tmp_path / "o.mp4"
    dst.write_bytes(b"precious")
    rc, _, err = run(colorize.main, *gan, "--input", str(clips[".mp4"]), "--output", str(dst))
    assert rc == 2 and "already exists" in err and dst.read_bytes() == b"precious"
    rc, _, err = run(colorize.main, *gan, "--input", str(clips[".mp4"]), "--output", str(clips[".mp4"]))
    assert rc == 2 and str(clips[".mp4"]) in err


# --- every real method (tiny untrained checkpoints: the flow, not the colours, is under test) --------


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, list[str]]:
    """CLI arguments loading each method small: untrained checkpoints; neural_style with 5 iterations."""
    d = tmp_path_factory.mktemp("ckpt")
    args: dict[str, list[str]] = {}
    from backends.classification import ClassificationColorizer
    from backends.gan import GANColorizer

    ClassificationColorizer(ClassificationColorizer.Config(widths=[8, 8, 16, 16]), "cpu").save(
        d / "classification.pt", training=False
    )
    GANColorizer(GANColorizer.Config(ngf=8, ndf=8), "cpu").save(d / "gan.pt", training=False)
    args["classification"] = ["--checkpoint", str(d / "classification.pt")]
    args["gan"] = ["--checkpoint", str(d / "gan.pt")]
    try:
        from backends.fusion import FusionColorizer

        cfg = FusionColorizer.Config(widths=[8, 8, 16, 16], fc=[32, 16, 16], global_size=64, working_size=64)
        FusionColorizer(cfg, "cpu").save(d / "fusion.pt", training=False)
        args["fusion"] = ["--checkpoint", str(d / "fusion.pt")]
    except Exception as exc:  # noqa: BLE001 - reported by the test as a skip
        print(f"fusion: {exc}")
    try:
        from backends.regression import RegressionColorizer

        RegressionColorizer(RegressionColorizer.Config(filters=4, depth=1), "cpu").save(d / "regression.keras", training=False)
        args["regression"] = ["--checkpoint", str(d / "regression.keras")]
    except Exception as exc:  # noqa: BLE001
        print(f"regression: {exc}")
    if backends.status("neural_style").available:
        args["neural_style"] = ["--set", "iterations=5", "--set", "working_size=64"]
    for name in backends.names():  # methods added later: as shipped, when they can run here
        if name not in args and name != "neural_style" and backends.status(name).available:
            args[name] = []
    return args


@pytest.mark.parametrize(
    "method", [pytest.param(m, marks=pytest.mark.slow) if m == "neural_style" else m for m in backends.names()]
)
def test_every_method_round_trips_a_clip(method, clips, checkpoints, tmp_path):
    if method not in checkpoints:
        pytest.skip(f"{method} cannot run here: {backends.status(method).reason}")
    src = tmp_path / "in.mp4"
    V.write_clip(src, (f for f, _ in zip(read(clips[".mp4"]), range(6))), fps=25)
    dst = tmp_path / "out.mkv"
    rc, out, err = run(colorize.main, "--method", method, "--input", str(src), "--output", str(dst), "--device", "cpu",
                       "--stabilize", *checkpoints[method])  # fmt: skip
    assert rc == 0, err
    a, b = V.probe(src), V.probe(dst)
    assert abs(b.frames - a.frames) <= 1 and (b.width, b.height) == (W, H) and float(b.fps) == float(a.fps)
    assert np.abs(lightness(read(src)) - lightness(read(dst))).mean() < 1.5
    assert "warp error" in out


# --- bad clips ------------------------------------------------------------------------------------


def _zero_frame_mp4(path: Path) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        c.start_encoding()  # header and trailer, no frame


def _unknown_codec_avi(src: Path, path: Path) -> None:
    data = src.read_bytes()
    assert data.count(b"FMP4") == 2
    path.write_bytes(data.replace(b"FMP4", b"ZQX9"))


@pytest.mark.parametrize(
    "case, needle",
    [
        ("not_a_video", "not a video"),
        ("empty", "empty"),
        ("truncated", "truncated or corrupt"),
        ("truncated_mp4", "truncated or corrupt"),
        ("zero_frames", "no frames"),
        ("unsupported_codec", "unsupported video codec"),
        ("huge", "too large"),
        ("no_frames_folder", "no numbered frames"),
    ],
)
def test_bad_clip_exits_2_with_one_named_line_and_writes_nothing(case, needle, clips, gan, tmp_path, monkeypatch):
    bad = tmp_path / "bad.mp4"
    if case == "not_a_video":
        bad.write_text("this is a text file, not a clip\n" * 20)
    elif case == "empty":
        bad.write_bytes(b"")
    elif case == "truncated":
        bad = tmp_path / "bad.mkv"
        data = clips[".mkv"].read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif case == "truncated_mp4":
        data = clips[".mp4"].read_bytes()
        bad.write_bytes(data[: int(len(data) * 0.8)])
    elif case == "zero_frames":
        _zero_frame_mp4(bad)
    elif case == "unsupported_codec":
        bad = tmp_path / "bad.avi"
        _unknown_codec_avi(clips[".avi"], bad)
    elif case == "huge":
        bad = clips[".mp4"]
        monkeypatch.setenv("COLORIZE_MAX_PIXELS", "1000")
    elif case == "no_frames_folder":
        bad = tmp_path / "photos"
        bad.mkdir()
        Image.fromarray(synthetic_photo(np.random.default_rng(0), 32)).save(bad / "holiday.png")
    dst = tmp_path / "out.mp4"
    rc, out, err = run(colorize.main, *gan, "--input", str(bad), "--output", str(dst), "--video")
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0] and needle in lines[0], err
    assert not dst.exists() and not list(tmp_path.glob(".out.mp4*"))


# --- warp error -----------------------------------------------------------------------------------


def pan(photo, n=8, step=2, size=(64, 48)):
    """Frames of a pure horizontal pan (step pixels a frame): the flow is known."""
    w, h = size
    return [np.ascontiguousarray(photo[100 : 100 + h, 100 + step * t : 100 + step * t + w]) for t in range(n)]


def test_warp_error_is_near_zero_for_colours_that_move_with_the_content(photo):
    frames = pan(photo)
    greys = [T.to_grey(f) for f in frames]
    e = T.warp_errors(frames, greys)
    assert e.shape == (7,) and np.all(e < 1.0)
    assert T.warp_error(frames, greys, method="farneback") < 1.5


def test_warp_error_measures_flicker_in_ab_units(photo):
    frames = pan(photo)
    greys = [T.to_grey(f) for f in frames]

    def shift(f, da):
        lab = color.rgb_to_lab(f)
        lab[..., 1] += da
        return color.lab_to_rgb_uint8(color.map_into_gamut(lab))

    flicker = [shift(f, 8.0 * (t % 2)) for t, f in enumerate(frames)]
    base, flick = T.warp_error(frames, greys), T.warp_error(flicker, greys)
    assert 5.0 < flick - base < 9.0  # an 8-unit jump in a, less where the gamut clips it
    grey_out = [np.repeat(g[..., None], 3, -1) for g in greys]
    assert T.warp_error(grey_out, greys) == pytest.approx(0.0, abs=1e-3)


def test_occlusions_are_masked_and_scene_cuts_left_out(photo):
    a, b = pan(photo, 2, step=3)
    pair = T.frame_pair(T.to_grey(a), T.to_grey(b))
    assert not pair.cut
    assert np.median(pair.backward[..., 0]) == pytest.approx(
        3, abs=0.5
    )  # the camera moved right: a pixel was 3 px further right before
    # the 3 columns entering on the right have no match in the previous frame
    assert pair.visible[:, :-4].mean() > 0.9 and pair.visible[:, -2:].mean() < 0.5
    other = shared_photo(5)[100:148, 100:164]
    cut = T.frame_pair(T.to_grey(a), T.to_grey(np.ascontiguousarray(other)))
    assert cut.cut
    assert np.isnan(T.warp_errors([a, np.ascontiguousarray(other)], [T.to_grey(a), T.to_grey(np.ascontiguousarray(other))])[0])


def test_warp_error_validates_its_input(photo):
    frames = pan(photo, 3)
    with pytest.raises(ValueError, match="2 input frames"):
        T.warp_errors(frames, [T.to_grey(f) for f in frames[:2]])
    with pytest.raises(ValueError, match="flow method"):
        T.warp_error(frames, [T.to_grey(f) for f in frames], method="lucas")
    with pytest.raises(ValueError, match="uint8"):
        T.warp_errors([f.astype(np.float32) for f in frames], [T.to_grey(f) for f in frames])


# --- stabiliser -----------------------------------------------------------------------------------


def test_stabiliser_lowers_flicker_keeps_lightness_and_resets_at_a_cut(photo, tmp_path):
    frames = list(V.pan_zoom_frames(photo, 12, (W, H), cut_at=8, second=shared_photo(5)))
    greys = [V.grey_frame(f) for f in frames]
    model = FlickerColorizer()
    plain = V.ClipPipeline([V.Track("p", "fake_flicker", model)])
    stab = V.ClipPipeline([V.Track("s", "fake_flicker", model, V.TemporalStabilizer(0.6))])
    FlickerColorizer.rng = np.random.default_rng(1)
    out_p = plain.push(greys)["p"]
    FlickerColorizer.rng = np.random.default_rng(1)
    out_s = stab.push(greys)["s"]
    e_p, e_s = T.warp_errors(out_p, greys), T.warp_errors(out_s, greys)
    assert np.isnan(e_p[7]) and stab.cuts == 1  # the cut at frame 8 is found and not scored
    assert np.nanmean(e_s) < 0.6 * np.nanmean(e_p)
    d_s, d_p = np.abs(lightness(out_s) - lightness(greys)), np.abs(lightness(out_p) - lightness(greys))
    assert d_s.mean() < 0.5 and d_s.max() <= d_p.max() + 1.0  # the input's lightness, as the method's own output
    assert np.array_equal(out_s[8], out_p[8])  # a cut restarts the blending: the method's own frame
    assert np.array_equal(out_s[0], out_p[0])


def test_stabiliser_strength_is_checked():
    with pytest.raises(ValueError, match="strength"):
        V.TemporalStabilizer(1.5)


# --- evaluate --video -----------------------------------------------------------------------------


def test_evaluate_video_rows_per_clip_and_method_with_gray_truth_and_stabilised_rows(photo, tmp_path):
    folder = tmp_path / "clips"
    V.write_clip(folder / "c0.mp4", V.pan_zoom_frames(shared_photo(0), 10, (W, H)))
    V.write_clip(folder / "seq", V.pan_zoom_frames(shared_photo(2), 10, (W, H)))  # a frame folder among them
    out = tmp_path / "m" / "video.csv"
    models = {"fake_sepia": SepiaColorizer(), "fake_flicker": FlickerColorizer()}
    res, frames = V.evaluate_video(folder, models, size=64, stabilize=True, progress=False)
    V.write_video_outputs(res, frames, out)
    per = pd.read_csv(out)
    assert len(per) == 2 * 6 and set(per["image"]) == {"c0.mp4", "seq"}
    order = list(dict.fromkeys(per["method"]))
    assert order == ["gray", "fake_sepia", "fake_sepia+stab", "fake_flicker", "fake_flicker+stab", "truth"]
    by = per.groupby("method")["warp_error"].mean()
    assert by["gray"] == pytest.approx(0.0, abs=1e-3)
    assert by["truth"] < 3 and by["fake_sepia"] < 3 and by["fake_flicker"] > 5  # the floor of a real clip; flicker
    assert by["fake_flicker+stab"] < 0.6 * by["fake_flicker"]
    assert per.groupby("method")["auc_rebal"].mean()["truth"] == pytest.approx(1.0)
    summary = pd.read_csv(tmp_path / "m" / "video.summary.csv")
    assert {"warp_error", "warp_error_lo", "warp_error_hi", "psnr", "auc_rebal"} <= set(summary.columns)
    assert summary.set_index("method").loc["gray", "status"] == "reference"
    frames = pd.read_csv(tmp_path / "m" / "video.frames.csv.gz")
    assert len(frames) == 2 * 10 * 6 and frames["warp_error"].isna().sum() == 2 * 6  # first frame of each clip
    meta = json.loads((tmp_path / "m" / "video.json").read_text())
    assert meta["clips"]["seq"]["frames"] == 10
    assert "warp error" in (tmp_path / "m" / "video.md").read_text()


def test_evaluate_video_bad_source_exits_2(tmp_path):
    (tmp_path / "empty").mkdir()
    rc, _, err = run(evaluate.main, "--video", str(tmp_path / "empty"), "--methods", "gan", "--out", str(tmp_path / "v.csv"))
    assert rc == 2 and "holds no clips" in err and not (tmp_path / "v.csv").exists()


def test_parse_time_and_fit_size():
    assert V.parse_time("1:02.5") == 62.5 and V.parse_time("0:01:00") == 60 and V.parse_time(None) is None
    with pytest.raises(ValueError):
        V.parse_time("soon")
    assert V.fit_size(854, 480, 256) == (256, 144) and V.fit_size(64, 48, 256) == (64, 48)
    assert V.ClipInfo(Path("x"), "video", 4, 4, Fraction(25), 50, "h264").duration == 2.0


# --- benchmark --video -------------------------------------------------------------------------------


@pytest.mark.slow
def test_video_benchmark_writes_speed_and_memory_rows_and_the_machine_load(checkpoints, tmp_path):
    """``python -m experiments.benchmark --video`` on a 2 s 480p clip: a speed row and a whole-clip memory
    row with its verdict, and the load average before the rows - frames/s measured beside a training run
    must say so (the committed tables are read as an idle machine's)."""
    from experiments import benchmark

    ckpt = Path(checkpoints["gan"][1]).parent
    rc, _, err = run(benchmark.main, "--video", "--methods", "gan", "--checkpoints", str(ckpt), "--device", "cpu",
                     "--video-frames", "24", "--video-seconds", "2", "--out", str(tmp_path), "--quiet")  # fmt: skip
    assert rc == 0, err
    (js,) = tmp_path.glob("video-*.json")
    report = json.loads(js.read_text())
    assert not report["skipped"], report["skipped"]
    speed, memory = report["rows"]
    assert (speed["kind"], speed["method"], speed["frames"], memory["kind"], memory["frames"]) == ("speed", "gan", 24, "memory", 50)
    assert speed["fps"] > 0 and memory["result"] in ("PASS", "FAIL")
    assert report["load"]["start"] >= 0 and report["load"]["cpus"] >= 1
    md = js.with_suffix(".md").read_text()
    assert f"Load average (1 min) before the rows: {report['load']['start']:.1f}" in md
    assert ("lower than an idle machine's" in md) == benchmark.machine_was_shared([report["load"]["start"]], report["load"]["cpus"])
    assert md.count("| gan | cpu |") == 2 and f"| {memory['result']} |" in md
    # what the process holds between batches, beside the peak: never above it, and in the table
    assert 0 < memory["held_quarter_mb"] <= memory["peak_end_mb"]
    assert f"| {memory['held_growth_last_3q_in_frames']:.1f} | {memory['target']} | {memory['result']} |" in md


def test_video_benchmark_load_note():
    assert V.load_note(None) == "" and V.load_note({"start": None, "cpus": 2}) == ""
    assert V.load_note({"start": 0.1, "cpus": 2}).endswith("on 2 cores (idle).")
    assert "frames/s are lower than an idle machine's (memory is unaffected)" in V.load_note({"start": 2.3, "cpus": 2})
