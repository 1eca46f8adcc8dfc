"""Video in and out of every method: reading, writing, streaming, a temporal stabiliser.

    python -m experiments.colorize --method gan --input clip.mp4 --output out.mp4
    python -m experiments.colorize --method gan --input clip.mov --output frames/ --start 12 --duration 5 --stabilize
    python -m experiments.colorize --method fusion --input frames/ --output out.webm --fps 24

Containers (PyAV, which ships its own FFmpeg; no system FFmpeg needed): ``.mp4 .m4v .mov .mkv``
(H.264), ``.webm`` (VP9), ``.avi`` (MPEG-4 part 2), ``.gif`` (an adaptive 256-colour palette per
frame) and a folder of numbered frames (``frame_000001.png``, ...; in: any image names ending in
a number, ordered by that number, at ``--fps``, default 25). Output keeps the input's frame count,
frame rate (constant: a variable-rate input gets its average rate), size and lightness (the
methods keep the input's L; the codecs are set near-lossless for it: x264 CRF 16, VP9 CRF 18,
MPEG-4 q 2). Odd sizes: H.264 is written in 4:4:4 (4:2:0 needs even sides). Audio is copied
packet by packet, unchanged, when the output container takes its codec; otherwise re-encoded to
the container's codec (said on stderr); GIF and frame folders have none.

Streaming: frames are decoded, colorized in batches of ``batch_size`` and encoded as they come,
so memory holds a batch of frames (plus the encoder's look-ahead), whatever the clip's length
(the benchmark's ``--video`` measures it on a one-minute 480p clip).

Temporal stabiliser (``--stabilize``): method-independent flow-guided blending. The optical flow
between consecutive grey INPUT frames (DIS, on frames scaled to at most 320 px) warps the previous
OUTPUT's ab onto the current frame; where the forward-backward check says the pixel is visible,
the current ab moves towards it: ``ab = ab_t + s * (warp(ab'_{t-1}) - ab_t)`` with strength ``s``
(default 0.6), i.e. an exponential moving average along the motion; occluded pixels keep the
method's own colour, and the blending restarts at scene cuts (see
``experiments.metrics.temporal.frame_pair``). Lightness is the input's, untouched.

Bad input raises :class:`VideoError` (an ``ImageError``: one line naming the file and the reason):
not a video, truncated or corrupt, no frames, a codec this FFmpeg cannot decode, a resolution above
``COLORIZE_MAX_PIXELS``.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from backends.errors import ColorizationError, ImageError
from backends.imageio import IMAGE_EXTENSIONS, is_image_file, load_image, max_pixels
from backends.threads import release_freed_memory

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif")
#: container format, video codec, pixel format, codec options
ENCODERS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    ".mp4": ("mp4", "libx264", "yuv420p", {"crf": "16", "preset": "veryfast"}),
    ".m4v": ("mp4", "libx264", "yuv420p", {"crf": "16", "preset": "veryfast"}),
    ".mov": ("mov", "libx264", "yuv420p", {"crf": "16", "preset": "veryfast"}),
    ".mkv": ("matroska", "libx264", "yuv420p", {"crf": "16", "preset": "veryfast"}),
    ".webm": ("webm", "libvpx-vp9", "yuv420p", {"crf": "18", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}),
    ".avi": ("avi", "mpeg4", "yuv420p", {"qscale": "2"}),
    ".gif": ("gif", "gif", "pal8", {}),
}
#: audio codec to re-encode to when a container cannot take the input's codec
AUDIO_FALLBACK = {"mp4": "aac", "mov": "aac", "matroska": "aac", "webm": "libopus", "avi": "mp3"}
DEFAULT_FPS = Fraction(25)
DEFAULT_BATCH = 8
FRAME_NAME = "frame_{:06d}.png"
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


class VideoError(ImageError):
    """A clip that cannot be used (not a video, truncated, no frames, unsupported codec, too large)."""


def _av():
    try:
        import av
    except ImportError:
        raise ColorizationError("video needs the Python package 'av' (PyAV, with its own FFmpeg); fix: pip install av") from None
    # No FFmpeg logging through Python at all (None, not a level): with a level set, PyAV's log
    # callback takes the GIL from FFmpeg's own threads, and a decoder freed while the GIL is held
    # (a packet's last reference dropped on the clip's thread) waits for a frame thread that waits
    # for the GIL - the Video page's Stop test hung that way, seen with py-spy (PyAV issues 751,
    # 909, 2276). Failures still come back as exceptions, named by this module.
    av.logging.set_level(None)
    return av


# --- what a path is ---------------------------------------------------------------------------


def is_video_file(path: Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def frame_files(folder: Path) -> list[Path]:
    """The numbered frames of a folder (not recursive), in number order; [] when it holds other images
    too (names not ending in a number) or none at all."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if is_image_file(p)] if folder.is_dir() else []
    keyed = []
    for p in files:
        m = _NUMBERED.match(p.stem)
        if not m:
            return []
        keyed.append((m.group(1), int(m.group(2)), p))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [p for *_, p in keyed]


def is_frame_folder(path: Path) -> bool:
    return bool(frame_files(path))


def is_clip(path: Path) -> bool:
    """A video file or a folder of numbered frames."""
    path = Path(path)
    return (path.is_file() and is_video_file(path)) or (path.is_dir() and is_frame_folder(path))


def parse_time(text: str | float | None) -> float | None:
    """Seconds from ``12.5``, ``1:02.5`` or ``0:01:02``; None stays None."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    parts = str(text).strip().split(":")
    try:
        if len(parts) > 3 or not all(p.strip() for p in parts):
            raise ValueError
        secs = 0.0
        for p in parts:
            secs = secs * 60 + float(p)
    except ValueError:
        raise ValueError(f"{text!r} is not a time (seconds, M:SS or H:MM:SS)") from None
    if secs < 0:
        raise ValueError(f"{text!r}: a time must not be negative")
    return secs


# --- reading ------------------------------------------------------------------------------------


@dataclass
class ClipInfo:
    path: Path
    kind: str  # "video" or "frames"
    width: int
    height: int
    fps: Fraction
    frames: int  # frames in the clip (counted, not the header's guess)
    codec: str
    audio: str | None = None  # audio codec, None when the clip has no audio

    @property
    def duration(self) -> float:
        return self.frames / float(self.fps)

    def describe(self) -> str:
        audio = f", audio {self.audio}" if self.audio else ", no audio"
        return f"{self.width}x{self.height}, {float(self.fps):.3g} fps, {self.frames} frames ({self.duration:.1f} s), {self.codec}{audio}"


def _check_size(name: str, w: int, h: int) -> None:
    limit = max_pixels()
    if w * h > limit:
        raise VideoError(name, f"video too large: {w}x{h} = {w * h:,} pixels a frame, limit {limit:,} (COLORIZE_MAX_PIXELS)")
    if w < 1 or h < 1:
        raise VideoError(name, "video has frames without pixels")


def _open_input(path: Path):
    av = _av()
    name = str(path)
    if not path.exists():
        raise VideoError(name, "file not found")
    if path.is_dir():
        raise VideoError(name, "is a folder without numbered frames (frame_0001.png, ...)")
    if path.stat().st_size == 0:
        raise VideoError(name, "file is empty (0 bytes)")
    try:
        container = av.open(name, metadata_errors="ignore")
    except av.error.InvalidDataError:
        reason = (
            "file is truncated or corrupt" if is_video_file(path) and _looks_like_video(path) else "not a video FFmpeg can read"
        )
        raise VideoError(name, reason) from None
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(name, f"cannot open video ({exc})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(name, "holds no frames (no video stream)")
    vs = container.streams.video[0]
    if vs.codec_context is None:
        tag = getattr(vs, "codec_tag", "") or "unknown"
        container.close()
        raise VideoError(
            name, f"unsupported video codec ({tag!r}): this FFmpeg build cannot decode it; convert the clip to H.264 (.mp4)"
        )
    return container, vs


def _looks_like_video(path: Path) -> bool:
    """True when the file starts like a known container (so a failed open means damage, not a wrong type)."""
    with path.open("rb") as f:
        head = f.read(64)
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")
        or head[:4] == b"\x1a\x45\xdf\xa3"  # Matroska / WebM
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
        or head[:6] in (b"GIF87a", b"GIF89a")
    )


def probe(path: str | Path, fps: float | Fraction | None = None) -> ClipInfo:
    """Check a clip and count its frames (demuxing only, no decoding): :class:`VideoError` for a
    bad one. A frame folder's frame rate is ``fps`` (default 25)."""
    path = Path(path)
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise VideoError(str(path), "folder holds no numbered frames (images named like frame_0001.png)")
        first = load_image(files[0], mode="rgb")
        h, w = first.shape[:2]
        _check_size(str(files[0]), w, h)
        return ClipInfo(
            path,
            "frames",
            w,
            h,
            Fraction(fps or DEFAULT_FPS).limit_denominator(1001),
            len(files),
            files[0].suffix.lstrip(".").lower(),
        )
    container, vs = _open_input(path)
    name = str(path)
    try:
        _check_size(name, vs.codec_context.width, vs.codec_context.height)
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        audio = container.streams.audio[0] if container.streams.audio else None
        streams = [vs] + ([audio] if audio is not None else [])
        count, end = 0, 0.0
        try:
            for pkt in container.demux(*streams):
                if pkt.size == 0 or pkt.pts is None and pkt.dts is None:
                    continue
                ts = pkt.pts if pkt.pts is not None else pkt.dts
                t = float((ts + (pkt.duration or 0)) * pkt.time_base)
                end = max(end, t)
                if pkt.stream.index == vs.index:
                    count += 1
        except _av().error.FFmpegError as exc:
            raise VideoError(name, f"file is truncated or corrupt ({str(exc)[:120]})") from None
        if count == 0:
            raise VideoError(name, "video holds no frames")
        if rate is None or rate <= 0:
            rate = DEFAULT_FPS
        expected = container.duration / 1e6 if container.duration else None
        start = float(container.start_time / 1e6) if container.start_time else 0.0
        if expected and end - start < expected - max(2.0 / float(rate), 0.05 * expected):
            raise VideoError(
                name, f"file is truncated or corrupt: its streams end at {end - start:.2f} s, the header says {expected:.2f} s"
            )
        return ClipInfo(path, "video", vs.codec_context.width, vs.codec_context.height, Fraction(rate).limit_denominator(100000),
                        count, vs.codec_context.name, audio.codec_context.name if audio is not None and audio.codec_context else None)  # fmt: skip
    finally:
        container.close()


def fit_size(w: int, h: int, max_side: int | None) -> tuple[int, int]:
    """``(w, h)`` scaled so that the longer side is at most ``max_side`` (aspect kept, even sides)."""
    if not max_side or max(w, h) <= max_side:
        return w, h
    s = max_side / max(w, h)
    return max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2)


@dataclass
class Frame:
    index: int  # 0-based, in the selected piece
    time: float  # seconds from the start of the selected piece
    rgb: np.ndarray  # H x W x 3 uint8


class ClipReader:
    """Frames of a clip as they are decoded (``for frame in reader``), a piece of it with
    ``start``/``duration``/``max_frames``, optionally scaled down to ``max_side``; the audio packets
    of that piece are collected in :attr:`audio_packets` for a writer to take."""

    def __init__(self, path: str | Path, start: float = 0.0, duration: float | None = None, max_frames: int | None = None,
                 max_side: int | None = None, fps: float | Fraction | None = None, info: ClipInfo | None = None):  # fmt: skip
        self.path = Path(path)
        self.info = info or probe(self.path, fps)
        self.start = float(start or 0.0)
        self.duration = duration
        self.max_frames = max_frames
        self.size = fit_size(self.info.width, self.info.height, max_side)
        self.audio_packets: list = []
        self.audio_stream = None  # the input audio stream (a template for writers)
        self.audio_offset = 0.0  # seconds: the input time of the piece's first frame
        self._container = None
        if self.start >= self.info.duration:
            raise VideoError(str(self.path), f"--start {self.start:g} s is past the clip's end ({self.info.duration:.2f} s)")

    @property
    def expected_frames(self) -> int:
        """Frames this piece will have (from the counted frames and the frame rate)."""
        fps = float(self.info.fps)
        n = self.info.frames - int(round(self.start * fps))
        if self.duration is not None:
            n = min(n, int(np.ceil(self.duration * fps - 1e-6)))
        if self.max_frames is not None:
            n = min(n, self.max_frames)
        return max(n, 0)

    def _scaled(self, rgb: np.ndarray) -> np.ndarray:
        if (rgb.shape[1], rgb.shape[0]) == self.size:
            return rgb
        return np.asarray(Image.fromarray(rgb).resize(self.size, Image.BICUBIC))

    def _take(self, index: int, t: float) -> bool:
        if self.max_frames is not None and index >= self.max_frames:
            return False
        return self.duration is None or t < self.duration - 0.25 / float(self.info.fps)

    def __iter__(self) -> Iterator[Frame]:
        if self.info.kind == "frames":
            yield from self._iter_folder()
        else:
            yield from self._iter_video()

    def _iter_folder(self) -> Iterator[Frame]:
        files = frame_files(self.path)
        fps = float(self.info.fps)
        first = int(round(self.start * fps))
        for k, p in enumerate(files[first:]):
            t = k / fps
            if not self._take(k, t):
                return
            rgb = load_image(p, mode="rgb")
            if (rgb.shape[1], rgb.shape[0]) != (self.info.width, self.info.height):
                raise VideoError(
                    str(p), f"frame is {rgb.shape[1]}x{rgb.shape[0]}, the clip's first frame {self.info.width}x{self.info.height}"
                )
            yield Frame(k, t, self._scaled(rgb))

    def _iter_video(self) -> Iterator[Frame]:
        av = _av()
        container, vs = _open_input(self.path)
        self._container = container
        vs.thread_type = "AUTO"
        audio = container.streams.audio[0] if container.streams.audio else None
        self.audio_stream = audio
        fps = float(self.info.fps)
        origin = float(container.start_time / 1e6) if container.start_time else 0.0
        start = origin + self.start
        try:
            if self.start > 0:
                container.seek(int(start * 1e6), backward=True, any_frame=False)  # AV_TIME_BASE units
            index, first_t = 0, None
            decoded = 0
            streams = [vs] + ([audio] if audio is not None else [])
            pending_audio = []
            for pkt in container.demux(*streams):
                if audio is not None and pkt.stream.index == audio.index:
                    if pkt.size and pkt.pts is not None:
                        pending_audio.append(pkt)
                    continue
                try:
                    frames = pkt.decode()
                except av.error.FFmpegError as exc:
                    raise VideoError(
                        str(self.path), f"file is truncated or corrupt: cannot decode frame {decoded + 1} ({str(exc)[:100]})"
                    ) from None
                for fr in frames:
                    decoded += 1
                    t_abs = float(fr.time) if fr.time is not None else origin + (decoded - 1) / fps
                    if t_abs < start - 0.5 / fps:
                        continue
                    if first_t is None:
                        first_t = t_abs
                        self.audio_offset = t_abs - origin
                    t = t_abs - first_t
                    if not self._take(index, t):
                        self._collect_audio(pending_audio, first_t, t)
                        return
                    rgb = fr.to_ndarray(format="rgb24")
                    _check_size(str(self.path), rgb.shape[1], rgb.shape[0])
                    if (rgb.shape[1], rgb.shape[0]) != (self.info.width, self.info.height):
                        rgb = np.asarray(Image.fromarray(rgb).resize((self.info.width, self.info.height), Image.BICUBIC))
                    self._collect_audio(pending_audio, first_t, t + 1.0 / fps)
                    yield Frame(index, t, self._scaled(rgb))
                    index += 1
            if index == 0:
                raise VideoError(
                    str(self.path), "video holds no frames" + (f" after --start {self.start:g} s" if self.start else "")
                )
            if first_t is not None:
                self._collect_audio(pending_audio, first_t, index / fps)
        except BaseException:
            self.close()
            raise
        # on success the container stays open until close(): the writer still copies its audio
        # packets and took its audio stream as a template

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _collect_audio(self, pending: list, first_t: float, until: float) -> None:
        """Move the audio packets from the piece's start up to ``until`` (piece time) to :attr:`audio_packets`."""
        keep = []
        for pkt in pending:
            t = float(pkt.pts * pkt.time_base) - first_t
            if t < -1e-6 and self.start > 0:
                continue  # before the piece (from the clip's start, the codec's priming packets stay)
            if t < until:
                self.audio_packets.append(pkt)
            else:
                keep.append(pkt)
        pending[:] = keep

    def take_audio(self) -> list:
        out, self.audio_packets = self.audio_packets, []
        return out


# --- writing ----------------------------------------------------------------------------------


def _gif_frame(av, rgb: np.ndarray):
    """An RGB frame as a pal8 VideoFrame with its own adaptive palette (Pillow's median cut)."""
    im = Image.fromarray(rgb).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal = np.asarray(im.getpalette()[: 256 * 3] + [0] * max(0, 768 - len(im.getpalette())), np.uint8).reshape(256, 3)
    argb = np.concatenate([np.full((256, 1), 255, np.uint8), pal], axis=1)
    return av.VideoFrame.from_ndarray((np.asarray(im, np.uint8), argb), format="pal8")


class ClipWriter:
    """Encode frames into a video file (by its extension) or a folder of numbered PNG frames.

    Written atomically: a hidden temporary file (folder) beside the output, renamed at
    :meth:`close`; :meth:`abort` (or an exception inside ``with``) removes it and leaves any
    existing output as it was. ``audio``: the input's audio stream, whose packets
    :meth:`add_audio` copies (or re-encodes when the container cannot take its codec)."""

    def __init__(self, path: str | Path, fps: Fraction, width: int, height: int, audio=None, overwrite: bool = False,
                 web: bool = False):  # fmt: skip
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(100000)
        self.width, self.height = int(width), int(height)
        self.count = 0
        self.notes: list[str] = []
        self.folder = not self.path.suffix or self.path.is_dir()
        if self.path.exists() and not overwrite and not (self.folder and self.path.is_dir() and not any(self.path.iterdir())):
            raise ColorizationError(f"{self.path}: already exists; choose another --output or add --overwrite to replace it")
        if not self.folder and self.path.suffix.lower() not in ENCODERS:
            raise ColorizationError(
                f"{self.path}: unknown video format {self.path.suffix!r}; use one of {', '.join(ENCODERS)} or a folder"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.part-{secrets.token_hex(3)}{self.path.suffix}")
        self._audio_in = audio
        self._audio_out = None
        self._audio_dec = None
        if self.folder:
            self.tmp.mkdir()
            if audio is not None:
                self.notes.append("audio not kept: a frame folder has no audio")
            return
        av = _av()
        fmt, codec, pix, opts = ENCODERS[self.path.suffix.lower()]
        if codec == "libx264" and (self.width % 2 or self.height % 2):
            pix = "yuv444p"  # 4:2:0 needs even sides; the size is kept
            self.notes.append(f"odd size {self.width}x{self.height}: H.264 written in 4:4:4 (some players need even sides)")
        # faststart: the index first, so a browser plays the file while it loads
        self.container = av.open(
            str(self.tmp), "w", format=fmt, container_options={"movflags": "+faststart"} if web and fmt == "mp4" else {}
        )
        self.stream = self.container.add_stream(codec, rate=self.fps)
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, pix
        self.stream.codec_context.time_base = 1 / self.fps
        self.stream.codec_context.options = dict(opts)
        self.is_gif = codec == "gif"
        if audio is not None:
            self._add_audio_stream(audio, fmt)

    def _add_audio_stream(self, audio, fmt: str) -> None:
        if self.is_gif:
            self.notes.append("audio not kept: GIF has no audio")
            return
        name = audio.codec_context.name if audio.codec_context else None
        if name and name in self.container.supported_codecs:
            try:
                self._audio_out = self.container.add_stream_from_template(audio)
                return
            except (ValueError, _av().error.FFmpegError):
                pass
        target = AUDIO_FALLBACK.get(fmt)
        try:
            rate = 48000 if target == "libopus" else (audio.codec_context.sample_rate or 44100)
            self._audio_out = self.container.add_stream(target, rate=rate)
            self._audio_out.layout = audio.codec_context.layout.name if audio.codec_context.layout else "stereo"
            self._audio_dec = _av().CodecContext.create(name, "r")
            self._audio_dec.extradata = audio.codec_context.extradata
            self._audio_dec.sample_rate = audio.codec_context.sample_rate
            self._audio_dec.layout = audio.codec_context.layout
            self._audio_dec.format = audio.codec_context.format
            self.notes.append(f"audio re-encoded {name} -> {target}: {self.path.suffix} cannot hold {name}")
        except Exception as exc:  # noqa: BLE001 - the video is still worth writing
            self._audio_out = self._audio_dec = None
            self.notes.append(f"audio not kept: {self.path.suffix} cannot hold {name} and re-encoding failed ({exc})")

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {rgb.shape[1]}x{rgb.shape[0]}, the clip {self.width}x{self.height}")
        if self.folder:
            Image.fromarray(rgb).save(self.tmp / FRAME_NAME.format(self.count + 1))
            self.count += 1
            return
        av = _av()
        frame = _gif_frame(av, rgb) if self.is_gif else av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.count
        frame.time_base = 1 / self.fps
        self.container.mux(self.stream.encode(frame))
        self.count += 1

    def add_audio(self, packets: list, offset: float) -> None:
        """Mux the input's audio ``packets``, shifted back by ``offset`` seconds (the piece's start)."""
        if self._audio_out is None or not packets:
            return
        av = _av()
        for pkt in packets:
            shift = int(round(offset / pkt.time_base))
            if self._audio_dec is not None:
                try:
                    for fr in self._audio_dec.decode(pkt):
                        fr.pts = None
                        self.container.mux(self._audio_out.encode(fr))
                except av.error.FFmpegError:
                    pass
                continue
            copy = av.Packet(bytes(pkt))
            copy.pts = pkt.pts - shift
            copy.dts = (pkt.dts - shift) if pkt.dts is not None else copy.pts
            copy.duration = pkt.duration
            copy.time_base = pkt.time_base
            copy.is_keyframe = pkt.is_keyframe
            if copy.dts < 0 and offset > 0:
                continue  # before the piece
            copy.stream = self._audio_out
            self.container.mux(copy)

    def close(self) -> Path:
        """Flush the encoders and put the output in place; the output path."""
        if self.count == 0:
            self.abort()
            raise ColorizationError(f"{self.path}: no frames to write")
        if not self.folder:
            self.container.mux(self.stream.encode())
            if self._audio_dec is not None:
                self.container.mux(self._audio_out.encode())
            self.container.close()
        if self.path.is_dir():
            shutil.rmtree(self.path)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if not self.folder and getattr(self, "container", None) is not None:
            try:
                self.container.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


# --- temporal stabiliser ------------------------------------------------------------------------


@dataclass
class TemporalStabilizer:
    """Flow-guided blending of each frame's ab with the previous output (see the module doc).

    Call it frame by frame, in order: ``stabilizer(output_rgb, pair)`` where ``pair`` is the
    :class:`~experiments.metrics.temporal.FramePair` of the grey input frames ``t - 1, t`` (None for
    the first frame). Keeps nothing but the previous output's ab."""

    strength: float = 0.6
    prev_ab: np.ndarray | None = None
    resets: int = 0

    def __post_init__(self):
        if not 0.0 <= self.strength < 1.0:
            raise ValueError(f"stabiliser strength must be in [0, 1), got {self.strength}")

    def reset(self) -> None:
        self.prev_ab = None

    def __call__(self, rgb: np.ndarray, pair) -> np.ndarray:
        from backends import color
        from backends.base import join_lab

        from .metrics.temporal import warp

        lab = color.rgb_to_lab(rgb)
        ab = lab[..., 1:].astype(np.float32)
        if pair is None or pair.cut or self.prev_ab is None or self.prev_ab.shape != ab.shape:
            if pair is not None and pair.cut:
                self.resets += 1
            self.prev_ab = ab
            return rgb
        prev = warp(self.prev_ab, pair.backward)
        w = (self.strength * pair.visible.astype(np.float32))[..., None]
        ab = ab + w * (prev - ab)
        self.prev_ab = ab
        return join_lab(lab[..., 0], np.moveaxis(ab, -1, 0))


STAB_FLOW_SIDE = 320


def input_pair(prev_grey: np.ndarray, cur_grey: np.ndarray, max_side: int | None = None, method: str = "dis"):
    """:func:`~experiments.metrics.temporal.frame_pair` of two grey frames, the flow computed at most
    ``max_side`` px on the longer side and scaled back up (the stabiliser's speed-up)."""
    from .metrics.temporal import FramePair, frame_pair

    h, w = cur_grey.shape[:2]
    sw, sh = fit_size(w, h, max_side)
    if (sw, sh) == (w, h):
        return frame_pair(prev_grey, cur_grey, method)
    import cv2

    small = frame_pair(cv2.resize(prev_grey, (sw, sh), interpolation=cv2.INTER_AREA),
                       cv2.resize(cur_grey, (sw, sh), interpolation=cv2.INTER_AREA), method)  # fmt: skip
    flow = cv2.resize(small.backward, (w, h), interpolation=cv2.INTER_LINEAR)
    flow[..., 0] *= w / sw
    flow[..., 1] *= h / sh
    visible = cv2.resize(small.visible.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    return FramePair(flow, visible, small.cut, small.grey_error)


# --- the pipeline: several methods over one clip, in one pass ---------------------------------------


def grey_frame(rgb: np.ndarray) -> np.ndarray:
    """What the methods see of a frame: its L with a = b = 0 (the evaluation's ``gray_of``)."""
    from experiments.evaluate import gray_of

    return gray_of(rgb)


@dataclass
class Track:
    """One output stream: a method's frames, with or without the stabiliser (label ``<method>+stab``)."""

    label: str
    method: str
    model: object | None = None  # None for the reference tracks "gray" and "truth"
    stabilizer: TemporalStabilizer | None = None
    reference: np.ndarray | None = None
    prev_ab: np.ndarray | None = None
    warp: list[float] = field(default_factory=list)  # per frame; NaN for the first and after cuts


class ClipPipeline:
    """Colorize one clip with several tracks in one pass: each batch of input frames is colorized
    once per method (shared by its stabilised track), the input flow computed once per frame pair
    (shared by the stabilisers and the warp-error meters)."""

    def __init__(self, tracks: list[Track], flow: bool = True, flow_side: int | None = None, flow_method: str = "dis"):
        self.tracks = tracks
        self.flow = flow
        self.flow_side = flow_side
        self.flow_method = flow_method
        self.prev_grey: np.ndarray | None = None
        self.cuts = 0

    def push(self, inputs: list[np.ndarray], truths: list[np.ndarray] | None = None) -> dict[str, list[np.ndarray]]:
        """Colorize a batch of input frames (RGB uint8; grey or colour - the methods use their L);
        the outputs of every track. ``truths`` feed the ``truth`` track."""
        import cv2

        from .metrics.temporal import ab_of, pair_warp_error

        pairs = []
        greys = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in inputs]
        for g in greys:
            pair = None
            if self.flow and self.prev_grey is not None:
                pair = input_pair(self.prev_grey, g, self.flow_side, self.flow_method)
                self.cuts += int(pair.cut)
            pairs.append(pair)
            self.prev_grey = g
        raw: dict[str, list[np.ndarray]] = {}
        out: dict[str, list[np.ndarray]] = {}
        for tr in self.tracks:
            if tr.method == "gray":
                frames = [grey_frame(f) for f in inputs]
            elif tr.method == "truth":
                if truths is None:
                    raise ValueError("the truth track needs the colour frames")
                frames = list(truths)
            else:
                if tr.method not in raw:
                    if tr.reference is not None:
                        raw[tr.method] = tr.model.colorize_batch(inputs, reference=tr.reference)
                    else:
                        raw[tr.method] = tr.model.colorize_batch(inputs)
                frames = raw[tr.method]
            if tr.stabilizer is not None:
                frames = [tr.stabilizer(f, p) for f, p in zip(frames, pairs)]
            if self.flow:
                for f, p in zip(frames, pairs):
                    ab = ab_of(f)
                    tr.warp.append(
                        pair_warp_error(tr.prev_ab, ab, p) if p is not None and tr.prev_ab is not None else float("nan")
                    )
                    tr.prev_ab = ab
            out[tr.label] = frames
        return out


def video_reference(model, first: np.ndarray, given: np.ndarray | None) -> np.ndarray | None:
    """A reference-based method's reference for a whole clip: the given one, else its own pick for
    the clip's first frame (one reference for every frame, so the colours do not jump)."""
    if not getattr(model, "uses_reference", False):
        return None
    if given is not None:
        return given
    pick = getattr(model, "pick_reference", None)
    if pick is None:
        return None
    from backends import color
    from backends.base import resize_plane

    L = color.rgb_to_lab(first)[..., 0]
    ref = pick(resize_plane(L, model.working_shape(*L.shape)))
    return np.asarray(ref["rgb"] if isinstance(ref, dict) else ref, dtype=np.uint8)


def batches(reader: ClipReader, size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for fr in reader:
        batch.append(fr)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- colorize one clip (the CLI and the API) -----------------------------------------------------


@dataclass
class ClipResult:
    output: Path
    frames: int
    seconds: float
    info: ClipInfo
    warp_error: float | None = None  # mean, when the stabiliser ran (the flow is computed then)
    scene_cuts: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def colorize_clip(model, src: str | Path, dst: str | Path, *, start: float = 0.0, duration: float | None = None,
                  max_frames: int | None = None, batch_size: int = DEFAULT_BATCH, stabilize: bool = False,
                  strength: float = 0.6, reference: np.ndarray | None = None, fps: float | None = None,
                  overwrite: bool = False, progress: bool | Callable[[int, int], None] = True) -> ClipResult:  # fmt: skip
    """Colorize every frame of clip ``src`` with ``model`` into ``dst`` (a video file or a folder),
    streaming; see the module doc. ``progress``: a tqdm bar (True), none (False) or a callback
    ``(frames done, frames expected)``."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1, got {max_frames}")
    if duration is not None and duration <= 0:
        raise ValueError(f"--duration must be > 0, got {duration}")
    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve() or (src.is_dir() and dst.resolve().is_relative_to(src.resolve())):
        raise ColorizationError(f"{dst}: is (inside) the input clip {src}; refusing to overwrite it - choose another --output")
    reader = ClipReader(src, start, duration, max_frames, fps=fps)
    info = reader.info
    total = reader.expected_frames
    bar = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(
            total=total, desc=f"colorize {getattr(model, 'name', 'clip')}", unit="frame", file=sys.stderr, dynamic_ncols=True
        )
    tick = progress if callable(progress) else None
    track = Track(getattr(model, "name", "method"), getattr(model, "name", "method"), model,
                  TemporalStabilizer(strength) if stabilize else None)  # fmt: skip
    pipe = ClipPipeline([track], flow=stabilize, flow_side=STAB_FLOW_SIDE)
    t0 = time.perf_counter()
    writer = None
    done = 0
    try:
        for batch in batches(reader, batch_size):
            if writer is None:
                writer = ClipWriter(dst, info.fps, info.width, info.height, reader.audio_stream, overwrite=overwrite)
                track.reference = video_reference(model, batch[0].rgb, reference)
            outs = pipe.push([f.rgb for f in batch])[track.label]
            for rgb in outs:
                writer.write(rgb)
            writer.add_audio(reader.take_audio(), reader.audio_offset)
            done += len(batch)
            release_freed_memory()  # memory flat over a long clip (see backends.threads)
            if bar is not None:
                bar.update(len(batch))
            if tick is not None:
                tick(done, total)
        if writer is None:
            raise VideoError(str(src), "video holds no frames in the chosen piece")
        writer.add_audio(reader.take_audio(), reader.audio_offset)
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        reader.close()
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    errs = np.asarray(track.warp, dtype=float)
    mean_warp = float(np.nanmean(errs)) if stabilize and np.isfinite(errs).any() else None
    return ClipResult(dst, done, seconds, info, mean_warp, pipe.cuts, list(writer.notes))


# --- command line (experiments.colorize dispatches here for clips) -------------------------------


def add_cli_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("video (a clip in: .mp4 .m4v .mov .mkv .webm .avi .gif, or a folder of numbered frames)")
    g.add_argument(
        "--video", action="store_true", help="treat a folder of numbered frames as one clip (implied by a video --output)"
    )
    g.add_argument("--start", help="start of the piece to colorize (seconds, M:SS or H:MM:SS; default the beginning)")
    g.add_argument("--duration", help="length of the piece (seconds, M:SS or H:MM:SS; default to the end)")
    g.add_argument("--max-frames", type=int, help="colorize at most this many frames")
    g.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help=f"frames per forward pass (default {DEFAULT_BATCH})")
    g.add_argument(
        "--stabilize", action="store_true", help="temporal stabiliser: flow-guided blending of ab with the previous frame"
    )
    g.add_argument("--strength", type=float, default=0.6, help="stabiliser strength in [0, 1) (default 0.6)")
    g.add_argument("--fps", type=float, help="frame rate of a frame-folder input (default 25)")


def wants_clip(args) -> bool:
    """Whether ``experiments.colorize`` should treat this run as a clip."""
    inp, out = Path(args.input), Path(args.output)
    if inp.is_file() and is_video_file(inp) and inp.suffix.lower() != ".gif":
        return True
    if inp.is_file() and inp.suffix.lower() == ".gif":  # a GIF is a clip when animated (else a photo)
        try:
            with Image.open(inp) as im:
                return getattr(im, "n_frames", 1) > 1 or is_video_file(out) and out.suffix.lower() != ".gif"
        except Exception:  # noqa: BLE001 - let the reader name the problem
            return True
    video_flags = args.video or args.stabilize or args.start or args.duration or args.max_frames or args.fps
    return inp.is_dir() and (bool(video_flags) or (is_video_file(out) and out.suffix.lower() in VIDEO_EXTENSIONS))


def colorize_main(args) -> int:
    """``python -m experiments.colorize`` for a clip: checks the input clip and the output (never
    over the input, never over an existing file without ``--overwrite``: the photo CLI's rules)
    before the model loads, then :func:`run_cli`."""
    import backends
    from experiments.config import parse_value

    from . import colorize as photo_cli

    try:
        options = {}
        for item in args.options:
            if "=" not in item:
                raise ValueError(f"--set {item!r} is not KEY=VALUE")
            k, v = item.split("=", 1)
            options[k.strip()] = parse_value(v.strip())
        src, dst = Path(args.input), Path(args.output)
        check_clip_input(src)
        probe(src, args.fps)
        if dst.suffix and dst.suffix.lower() not in ENCODERS:
            raise ColorizationError(f"{dst}: unknown video format {dst.suffix!r}; use one of {', '.join(ENCODERS)} or a folder")
        overwrite = getattr(args, "overwrite", False)
        if dst.suffix and hasattr(photo_cli, "check_single"):  # the photo CLI's output-safety rules
            photo_cli.check_single(photo_cli.Job(src, dst), overwrite)
        if dst.resolve() == src.resolve() or (src.is_dir() and dst.resolve().is_relative_to(src.resolve())):
            raise ColorizationError(
                f"{dst}: is (inside) the input clip {src}; refusing to overwrite it - choose another --output"
            )
        if dst.exists() and not overwrite and not (dst.is_dir() and not any(dst.iterdir())):
            raise ColorizationError(f"{dst}: already exists; choose another --output or add --overwrite to replace it")
        reference = load_image(args.reference, mode="rgb") if args.reference else None
        model = backends.load(args.method, device=args.device, checkpoint=args.checkpoint, **options)
    except (ColorizationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_cli(args, model, reference)


def run_cli(args, model, reference: np.ndarray | None) -> int:
    """The clip half of ``python -m experiments.colorize``; exit status 0, 1 (write failed) or 2 (bad input)."""
    try:
        start = parse_time(args.start) or 0.0
        duration = parse_time(args.duration)
        if args.fps is not None and args.fps <= 0:
            raise ValueError(f"--fps must be > 0, got {args.fps}")
        res = colorize_clip(model, args.input, args.output, start=start, duration=duration, max_frames=args.max_frames,
                            batch_size=args.batch_size, stabilize=args.stabilize, strength=args.strength, reference=reference,
                            fps=args.fps, overwrite=getattr(args, "overwrite", False), progress=True)  # fmt: skip
    except (ColorizationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {args.output}: cannot write output ({exc})", file=sys.stderr)
        return 1
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    extra = f"; warp error {res.warp_error:.3f}, {res.scene_cuts} scene cut(s)" if res.warp_error is not None else ""
    print(f"{args.input} -> {res.output}: {res.frames} frames, {res.info.width}x{res.info.height}, {float(res.info.fps):.3g} fps, "
          f"{res.seconds:.1f} s ({res.fps:.1f} frames/s){extra}")  # fmt: skip
    return 0


def check_clip_input(path: Path) -> None:
    """Raise :class:`VideoError` for a path that is neither a video file nor a frame folder."""
    if path.is_dir() and not is_frame_folder(path):
        raise VideoError(str(path), "folder holds no numbered frames (images named like frame_0001.png)")
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS - {".gif"}:
        raise VideoError(str(path), "is a photo, not a clip")


# --- test and benchmark clips (made from a still photo, no network) --------------------------------


def pan_zoom_frames(photo: np.ndarray, n: int, size: tuple[int, int], zoom: float = 1.25, cut_at: int | None = None,
                    second: np.ndarray | None = None) -> Iterator[np.ndarray]:  # fmt: skip
    """``n`` frames ``size = (w, h)`` of a camera panning across ``photo`` while zooming in by
    ``zoom`` (real motion: every pixel moves, by a different amount at each depth of the zoom), and
    from frame ``cut_at`` on the same over ``second`` (a scene cut). Generated one at a time."""
    w, h = size
    for t in range(n):
        src = second if cut_at is not None and t >= cut_at and second is not None else photo
        ph, pw = src.shape[:2]
        u = t / max(n - 1, 1)
        scale = 1.0 + (zoom - 1.0) * u
        cw = min(pw, ph * w / h) / 1.15 / scale  # crop window in photo pixels, aspect of the output
        ch = cw * h / w
        x0 = (pw - cw) * (0.15 + 0.7 * u)
        y0 = (ph - ch) * (0.4 + 0.2 * np.sin(np.pi * u))
        box = (x0, y0, x0 + cw, y0 + ch)
        yield np.asarray(Image.fromarray(src).resize((w, h), Image.BICUBIC, box=box))


def write_clip(path: str | Path, frames, fps: float | Fraction = 25, audio_seconds: float | None = None,
               sample_rate: int = 16000, overwrite: bool = True) -> Path:  # fmt: skip
    """Write ``frames`` (an iterable of RGB uint8 arrays) as a clip; with ``audio_seconds``, a
    440-Hz tone of that length (AAC; Opus in WebM) as a mono audio stream, to check that audio survives."""
    it = iter(frames)
    first = next(it)
    h, w = first.shape[:2]
    writer = ClipWriter(path, Fraction(fps).limit_denominator(1001), w, h, overwrite=overwrite)
    with writer:
        writer.write(first)
        for f in it:
            writer.write(f)
    if audio_seconds and not writer.folder and not writer.is_gif:
        _add_tone(Path(path), audio_seconds, sample_rate)
    return Path(path)


def _add_tone(path: Path, seconds: float, sample_rate: int) -> None:
    """Remux ``path`` with a 440-Hz tone as its audio stream (streams must exist before the first
    packet, so the tone goes in a second pass; video packets are copied, not re-encoded)."""
    av = _av()
    tmp = path.with_name(f".{path.name}.tone{path.suffix}")
    with av.open(str(path)) as src, av.open(str(tmp), "w", format=src.format.name.split(",")[0]) as out:
        vin = src.streams.video[0]
        vout = out.add_stream_from_template(vin)
        codec = "libopus" if path.suffix.lower() == ".webm" else "aac"
        rate = 48000 if codec == "libopus" else sample_rate
        aout = out.add_stream(codec, rate=rate)
        aout.layout = "mono"
        t = np.arange(int(seconds * rate)) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        for pkt in src.demux(vin):
            if pkt.size == 0:  # the demuxer's end-of-stream marker
                continue
            pkt.stream = vout
            out.mux(pkt)
        out.mux(aout.encode(frame))
        out.mux(aout.encode())
    os.replace(tmp, path)


# --- evaluation of clips (python -m experiments.evaluate --video) ------------------------------------


def find_clips(source: str | Path) -> list[Path]:
    """The clips of ``source``: a video file, a frame folder, or a folder holding video files and
    frame folders (searched recursively, sorted)."""
    source = Path(source)
    if not source.exists():
        raise VideoError(str(source), "not found")
    if source.is_file():
        if not is_video_file(source):
            raise VideoError(str(source), f"not a video file ({', '.join(VIDEO_EXTENSIONS)})")
        return [source]
    if is_frame_folder(source):
        return [source]
    clips = sorted(p for p in source.rglob("*") if p.is_file() and is_video_file(p) and not p.name.startswith("."))
    clips += sorted(p for p in source.rglob("*") if p.is_dir() and is_frame_folder(p))
    if not clips:
        raise VideoError(str(source), "folder holds no clips (video files or folders of numbered frames)")
    return sorted(clips)


def evaluate_video(source: str | Path, methods: list[str] | dict[str, object], *, size: int = 256, stabilize: bool = False,
                   strength: float = 0.6, start: float = 0.0, duration: float | None = None, max_frames: int | None = None,
                   batch_size: int = DEFAULT_BATCH, flow_method: str = "dis", device: str = "auto", progress: bool = True):  # fmt: skip
    """Score ``methods`` on every clip of ``source`` (see :func:`find_clips`): the colour frames are
    the truth, the methods see their grey rendering (the image evaluation's protocol), frames scaled
    so that the longer side is at most ``size`` (aspect kept). Per frame: the image evaluation's
    pixel metrics against the truth and the warp error; per clip and method: their means. Rows
    ``gray`` and ``truth`` always; with ``stabilize``, a ``<method>+stab`` row after each method.

    Returns ``(EvalResult, per-frame DataFrame)``; the EvalResult's ``per_image`` has one row per
    clip and method (``image`` = the clip) and its summary the bootstrap intervals over clips."""
    import pandas as pd
    import torch

    import backends
    from experiments import evaluate as ev
    from experiments import metrics as M

    if size < 32:
        raise ValueError(f"--size must be at least 32 pixels, got {size}")
    root = Path(source)
    clips = find_clips(root)
    infos = {c: probe(c) for c in clips}  # every clip checked before any method runs
    device = backends.resolve_device(device)
    if isinstance(methods, dict):
        models = dict(methods)
    else:
        models = {m: None for m in methods if m not in ev.REFERENCE_ROWS}
    skipped: dict[str, str] = {}
    for name in list(models):
        if models[name] is None:
            try:
                models[name] = backends.load(name, device=device)
            except (ColorizationError, ValueError, ImportError) as exc:
                skipped[name] = str(exc)
                del models[name]
                print(f"skipped {name}: {exc}", file=sys.stderr)
    labels = ["gray"]
    for name in models:
        labels += [name] + ([f"{name}+stab"] if stabilize else [])
    labels.append("truth")
    frame_rows: list[dict] = []
    clip_frames: dict[str, int] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        total = sum(ClipReader(c, start, duration, max_frames, info=infos[c]).expected_frames for c in clips)
        bar = tqdm(total=total, desc=f"evaluate video ({len(models)} methods)", unit="frame", file=sys.stderr, dynamic_ncols=True)
    t0 = time.perf_counter()
    for clip in clips:
        rel = clip.relative_to(root).as_posix() if clip != root else clip.name
        reader = ClipReader(clip, start, duration, max_frames, max_side=size, info=infos[clip])
        tracks = [Track("gray", "gray")]
        for name, model in models.items():
            tracks.append(Track(name, name, model))
            if stabilize:
                tracks.append(Track(f"{name}+stab", name, model, TemporalStabilizer(strength)))
        tracks.append(Track("truth", "truth"))
        pipe = ClipPipeline(tracks, flow=True, flow_method=flow_method)
        n = 0
        for batch in batches(reader, batch_size):
            truths = [f.rgb for f in batch]
            inputs = [grey_frame(t) for t in truths]
            if n == 0:
                for tr in tracks:
                    if tr.model is not None:
                        tr.reference = video_reference(tr.model, inputs[0], None)
            outs = pipe.push(inputs, truths)
            y = torch.from_numpy(np.stack(truths)).permute(0, 3, 1, 2).double()
            for tr in tracks:
                x = torch.from_numpy(np.stack(outs[tr.label])).permute(0, 3, 1, 2).double()
                cols = {k: v.numpy() for k, v in M.pixel_metrics(x, y, 255.0).items()}
                for j in range(len(batch)):
                    frame_rows.append(
                        {"method": tr.label, "image": rel, "frame": n + j, **{k: float(v[j]) for k, v in cols.items()}}
                    )
            n += len(batch)
            release_freed_memory()
            if bar is not None:
                bar.update(len(batch))
        reader.close()
        for tr in tracks:  # the warp errors of this clip's frames (NaN for the first frame and after cuts)
            rows = [r for r in frame_rows if r["image"] == rel and r["method"] == tr.label]
            for r, e in zip(rows, tr.warp):
                r["warp_error"] = e
        clip_frames[rel] = n
    if bar is not None:
        bar.close()
    frames = pd.DataFrame(frame_rows)
    columns = [c for c in frames.columns if c not in ("method", "image", "frame", "warp_error")] + ["warp_error"]
    columns = ["warp_error"] + columns[:-1]
    per_clip = frames.groupby(["method", "image"], sort=False)[columns].mean().reset_index()
    per_clip.insert(2, "label", "")
    per_clip["method"] = pd.Categorical(per_clip["method"], categories=labels, ordered=True)
    per_clip = per_clip.sort_values(["method", "image"], kind="stable").reset_index(drop=True)
    per_clip["method"] = per_clip["method"].astype(str)
    M.METRIC_INFO.setdefault("warp_error", ("warp error (ab)", -1))
    summary = ev.summarise(per_clip, columns, labels, None, skipped)
    meta = {
        "video": str(root.resolve()),
        "data": "",  # not a photo folder: the dashboard's photo gallery has nothing to show
        "clips": {k: {"frames": v, **_info_dict(infos[c])} for (k, v), c in zip(clip_frames.items(), clips)},
        "photos": len(clips),
        "size": size,
        "resize": "longer side scaled to at most size (aspect kept), bicubic",
        "start": start,
        "duration": duration,
        "max_frames": max_frames,
        "stabilize": {"strength": strength} if stabilize else None,
        "flow": flow_method,
        "device": device,
        "columns": columns,
        "unavailable": {},
        "skipped": skipped,
        "seconds": round(time.perf_counter() - t0, 2),
        "bootstrap": {"resamples": M.bootstrap.N_RESAMPLES, "confidence": M.bootstrap.CONFIDENCE, "seed": M.bootstrap.SEED},
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return ev.EvalResult(per_clip, summary, columns, {}, skipped, meta), frames


def _info_dict(info: ClipInfo) -> dict:
    return {"width": info.width, "height": info.height, "fps": float(info.fps), "codec": info.codec, "audio": info.audio}


def video_markdown(res, title: str) -> str:
    """The image evaluation's Markdown table, with the clips' protocol as its description."""
    from experiments import evaluate as ev

    lines = ev.to_markdown(res, title).split("\n")
    m = res.meta
    frames = sum(c["frames"] for c in m["clips"].values())
    desc = (f"{len(m['clips'])} clip(s), {frames} frames of `{m['video']}`, longer side at most {m['size']} px; per clip the mean "
            f"over its frames, then mean and 95% bootstrap interval over clips (1000 resamples, seed 0). `warp_error`: Lai et al.'s "
            f"flow-warping error in ab units ({m['flow']} flow on the grey input, forward-backward occlusion mask; lower = less "
            f"flicker; `gray` scores 0 by construction, `truth` is the floor of a real clip). "
            f"Reference rows: `gray` (ab = 0) and `truth` (the colour original)."
            + (f" `+stab`: the temporal stabiliser (strength {m['stabilize']['strength']})." if m.get("stabilize") else ""))  # fmt: skip
    if len(lines) > 2:
        lines[2] = desc
    return "\n".join(lines)


def write_video_outputs(res, frames, out: str | Path) -> dict[str, Path]:
    """``experiments.evaluate``'s files (CSV per clip and method, summary, Markdown, LaTeX, JSON)
    plus ``<name>.frames.csv.gz`` (one row per frame and method: the flicker over time)."""
    from experiments import evaluate as ev

    paths = ev.write_outputs(res, out)
    paths["md"].write_text(video_markdown(res, f"Video colorization metrics: {paths['csv'].stem}"))
    paths["frames"] = paths["csv"].with_name(f"{paths['csv'].stem}.frames.csv.gz")
    frames.to_csv(paths["frames"], index=False, float_format="%.6g")
    return paths


def evaluate_cli(args) -> int:
    """``python -m experiments.evaluate --video ...``: exit status 0, or 2 for bad input."""
    from experiments import evaluate as ev

    try:
        methods = ev.parse_methods(args.methods)
        res, frames = evaluate_video(args.video, methods, size=args.size, stabilize=args.stabilize, strength=args.strength,
                                     start=parse_time(args.start) or 0.0, duration=parse_time(args.duration),
                                     max_frames=args.max_frames, batch_size=args.batch_size, flow_method=args.flow,
                                     device=args.device, progress=not args.quiet)  # fmt: skip
    except (ColorizationError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = write_video_outputs(res, frames, args.out)
    print(paths["md"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def add_evaluate_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("video (--video instead of --data)")
    g.add_argument(
        "--video", type=Path, help="a clip, a folder of numbered frames, or a folder of clips: one row per clip and method"
    )
    g.add_argument(
        "--stabilize", action="store_true", help="also score each method with the temporal stabiliser (<method>+stab rows)"
    )
    g.add_argument("--strength", type=float, default=0.6, help="stabiliser strength in [0, 1) (default 0.6)")
    g.add_argument("--start", help="start of the piece of each clip (seconds, M:SS or H:MM:SS)")
    g.add_argument("--duration", help="length of the piece of each clip (seconds, M:SS or H:MM:SS)")
    g.add_argument("--max-frames", type=int, help="at most this many frames per clip")
    g.add_argument("--flow", default="dis", choices=("dis", "farneback"), help="optical flow of the warp error (default dis)")


# --- a background job for the dashboard's Video page ---------------------------------------------

#: What the Video page accepts (stated on the page; environment overrides).
PAGE_MAX_MB = int(os.environ.get("COLORIZE_VIDEO_MAX_MB", "50"))
PAGE_MAX_SECONDS = float(os.environ.get("COLORIZE_VIDEO_MAX_SECONDS", "10"))
PAGE_MAX_SIDE = int(os.environ.get("COLORIZE_VIDEO_MAX_SIDE", "480"))
UPLOAD_TYPES = ["mp4", "m4v", "mov", "mkv", "webm", "avi", "gif"]
TILE_SIDE = 320
LABEL_H = 18


def even_size(w: int, h: int, max_side: int | None) -> tuple[int, int]:
    """:func:`fit_size`, then each side rounded down to even (H.264 in 4:2:0, what browsers play)."""
    w, h = fit_size(w, h, max_side)
    return max(2, w - w % 2), max(2, h - h % 2)


def grid_frame(tiles: list[tuple[str, np.ndarray]], columns: int) -> np.ndarray:
    """Frames of one instant side by side (``columns`` a row), each under its label; even size."""
    from PIL import ImageDraw

    h, w = tiles[0][1].shape[:2]
    rows = -(-len(tiles) // columns)
    gw, gh = columns * w, rows * (h + LABEL_H)
    canvas = Image.new("RGB", (gw + gw % 2, gh + gh % 2), (17, 17, 17))
    draw = ImageDraw.Draw(canvas)
    for k, (label, rgb) in enumerate(tiles):
        x, y = (k % columns) * w, (k // columns) * (h + LABEL_H)
        draw.text((x + 4, y + 3), label, fill=(235, 235, 235))
        canvas.paste(Image.fromarray(rgb), (x, y + LABEL_H))
    return np.asarray(canvas)


@dataclass
class VideoJob:
    """Colorize one clip with several methods (and the stabiliser) in a worker thread: one H.264
    MP4 per track (audio copied), a stitched grid video (input, each track, truth) for the browser,
    the per-frame warp errors and, for a colour clip, the per-frame image metrics. The page polls
    :attr:`done`/:attr:`total` and calls :meth:`stop`; nothing here uses Streamlit."""

    clip: Path
    models: dict[str, object]
    out_dir: Path
    stabilize: str = "off"  # "off", "on" or "both"
    strength: float = 0.6
    max_seconds: float | None = PAGE_MAX_SECONDS
    max_side: int | None = PAGE_MAX_SIDE
    batch_size: int = 4
    label: str = "the clip"  # what the page calls the clip
    status: str = "waiting"  # waiting, running, done, stopped, failed
    message: str = ""
    done: int = 0
    total: int = 0
    started: float = 0.0
    finished: float = 0.0
    colour: bool = False
    outputs: dict[str, Path] = field(default_factory=dict)
    grid: Path | None = None
    frames: object | None = None  # pandas DataFrame: track, frame, warp_error (+ metrics for a colour clip)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        import threading

        self._stop = threading.Event()
        self._thread = None

    # -- control ---------------------------------------------------------------------------------
    def start(self) -> VideoJob:
        import threading

        self._thread = threading.Thread(target=self._run, name="video-job", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status in ("done", "stopped", "failed")

    @property
    def active(self) -> bool:
        return self.status in ("waiting", "running")

    @property
    def fps(self) -> float:
        dt = (self.finished or time.time()) - self.started
        return self.done / dt if self.started and dt > 0 else 0.0

    @property
    def eta(self) -> float | None:
        return (self.total - self.done) / self.fps if self.fps > 0 and self.total else None

    def labels(self) -> list[str]:
        out = []
        for name in self.models:
            if self.stabilize in ("off", "both"):
                out.append(name)
            if self.stabilize in ("on", "both"):
                out.append(f"{name}+stab")
        return out

    # -- work --------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            from experiments.jobs import heavy_jobs, wait_message

            def on_wait(position, running):
                self.message = wait_message(position, running)
                if self._stop.is_set():
                    raise InterruptedError

            with heavy_jobs().slot(on_wait):
                self.status, self.message, self.started = "running", "", time.time()
                self._work()
            self.status = "stopped" if self._stop.is_set() else "done"
        except InterruptedError:
            self.status = "stopped"
        except ColorizationError as exc:
            self.status, self.message = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - shown on the page, not lost in a thread
            self.status, self.message = "failed", f"{type(exc).__name__}: {str(exc)[:300]}"
        finally:
            self.finished = time.time()

    def _work(self) -> None:
        import pandas as pd
        import torch

        from backends import color
        from experiments import metrics as M

        info = probe(self.clip)
        size = even_size(info.width, info.height, self.max_side)
        reader = ClipReader(self.clip, 0.0, self.max_seconds, None, info=info)
        reader.size = size
        self.total = reader.expected_frames
        tracks = []
        for name, model in self.models.items():
            if self.stabilize in ("off", "both"):
                tracks.append(Track(name, name, model))
            if self.stabilize in ("on", "both"):
                tracks.append(Track(f"{name}+stab", name, model, TemporalStabilizer(self.strength)))
        pipe = ClipPipeline(tracks, flow=True, flow_side=STAB_FLOW_SIDE)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        writers: dict[str, ClipWriter] = {}
        grid_writer = None
        rows: list[dict] = []
        tile = fit_size(*size, TILE_SIDE)
        try:
            for batch in batches(reader, self.batch_size):
                if self._stop.is_set():
                    break
                frames = [f.rgb for f in batch]
                if self.done == 0:
                    self.colour = any(float(color.chroma(color.rgb_to_lab(f)).mean()) > 2.0 for f in frames[:3])
                    for tr in tracks:
                        tr.reference = video_reference(tr.model, grey_frame(frames[0]), None)
                    for tr in tracks:
                        writers[tr.label] = ClipWriter(self.out_dir / f"{safe_name(tr.label)}.mp4", info.fps, *size,
                                                       reader.audio_stream, overwrite=True, web=True)  # fmt: skip
                inputs = [grey_frame(f) for f in frames]
                outs = pipe.push(inputs)
                for tr in tracks:
                    for rgb in outs[tr.label]:
                        writers[tr.label].write(rgb)
                    writers[tr.label].add_audio(reader.audio_packets, reader.audio_offset)  # each writer muxes copies
                for j in range(len(batch)):
                    small = [("input (grey)", _tile(inputs[j], tile))] + [
                        (tr.label, _tile(outs[tr.label][j], tile)) for tr in tracks
                    ]
                    if self.colour:
                        small.append(("original", _tile(frames[j], tile)))
                    g = grid_frame(small, min(3, len(small)))
                    if grid_writer is None:
                        grid_writer = ClipWriter(self.out_dir / "grid.mp4", info.fps, g.shape[1], g.shape[0], reader.audio_stream,
                                                 overwrite=True, web=True)  # fmt: skip
                    grid_writer.write(g)
                grid_writer.add_audio(reader.audio_packets, reader.audio_offset)
                reader.audio_packets = []
                y = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).double() if self.colour else None
                for tr in tracks:
                    x = torch.from_numpy(np.stack(outs[tr.label])).permute(0, 3, 1, 2).double()
                    if self.colour:
                        cols = {k: v.numpy() for k, v in M.pixel_metrics(x, y, 255.0).items() if k in M.PIXEL_COLUMNS}
                    else:
                        cols = {"colorfulness": M.colorfulness(x, 255.0).numpy()}
                    for j in range(len(batch)):
                        rows.append({"track": tr.label, "frame": self.done + j, "time_s": batch[j].time,
                                     "warp_error": tr.warp[self.done + j], **{k: float(v[j]) for k, v in cols.items()}})  # fmt: skip
                self.done += len(batch)
                release_freed_memory()
            if self._stop.is_set():  # stopped: no half clips left behind
                raise InterruptedError
            for tr in tracks:
                self.outputs[tr.label] = writers[tr.label].close()
                self.notes += [n for n in writers[tr.label].notes if n not in self.notes]
            if grid_writer is not None:
                self.grid = grid_writer.close()
        except BaseException:
            for w in [*writers.values(), grid_writer]:
                if w is not None:
                    w.abort()
            raise
        finally:
            reader.close()
        self.frames = pd.DataFrame(rows)

    def summary(self):
        """One row per track: frames, mean warp error and the frames' mean metrics."""
        if self.frames is None or len(self.frames) == 0:
            return None
        cols = [c for c in self.frames.columns if c not in ("track", "frame", "time_s")]
        out = self.frames.groupby("track", sort=False)[cols].mean().reset_index()
        out.insert(1, "frames", self.frames.groupby("track", sort=False).size().to_numpy())
        return out


def safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", label)


def _tile(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return rgb if (rgb.shape[1], rgb.shape[0]) == size else np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))


def sample_clip(path: str | Path, photo: np.ndarray, seconds: float = 3.0, fps: int = 25, width: int = 320) -> Path:
    """A short pan-and-zoom clip over ``photo`` (the page's sample; nothing downloaded)."""
    h = int(round(width * 3 / 4 / 2)) * 2
    return write_clip(path, pan_zoom_frames(photo, int(seconds * fps), (width, h)), fps=fps)


# --- benchmark rows (python -m experiments.benchmark --video) -----------------------------------------

BENCH_SIZE = (854, 480)  # 480p, 16:9
#: memory target: the peak RSS may grow, after the first batches, by at most this many RGB frames
MEMORY_FRAMES_TARGET = 10


def bench_worker(spec: dict) -> dict:
    """One method over one clip in THIS (fresh) process: load time, frames/s after the first two
    batches, and the peak resident memory - after loading, after the first two batches, at the end."""
    from experiments import benchmark as B

    if spec["device"] == "cpu":
        B.pin_cpu(spec["threads"])
    B.torch_first()
    import backends

    ckpt = None
    if spec.get("checkpoints"):
        for ext in (".pt", ".keras"):
            p = Path(spec["checkpoints"]) / f"{spec['method']}{ext}"
            if p.exists():
                ckpt = p
    t0 = time.perf_counter()
    model = backends.load(spec["method"], device=spec["device"], checkpoint=ckpt)
    load_s = time.perf_counter() - t0
    loaded = B.peak_rss_mb()
    warm: dict = {}

    quarter: dict = {}
    held: list[float] = []  # the resident set after each batch from the quarter on

    def tick(done: int, total: int) -> None:
        if not warm and done >= 2 * spec["batch"]:
            warm.update(frames=done, t=time.perf_counter(), peak=B.peak_rss_mb())
        if not quarter and total and done >= total / 4:
            quarter.update(frames=done, peak=B.peak_rss_mb())
        if quarter:
            now = B.rss_mb()
            if now is not None:
                held.append(now)

    out = Path(spec["out"])
    t0 = time.perf_counter()
    res = colorize_clip(model, spec["clip"], out, max_frames=spec.get("frames"), batch_size=spec["batch"],
                        stabilize=spec["stabilize"], overwrite=True, progress=tick)  # fmt: skip
    end = time.perf_counter()
    peak = B.peak_rss_mb()
    out.unlink(missing_ok=True)
    w, h = res.info.width, res.info.height
    frame_mb = w * h * 3 / 2**20
    after = res.frames - warm.get("frames", 0)
    return {
        "method": spec["method"], "device": spec["device"], "threads": spec["threads"], "stabilize": spec["stabilize"],
        "size": f"{w}x{h}", "frames": res.frames, "clip_seconds": round(res.frames / float(res.info.fps), 2), "batch": spec["batch"],
        "load_s": round(load_s, 2), "seconds": round(end - t0, 2),
        "fps": round(after / (end - warm["t"]), 3) if warm and after > 0 else round(res.frames / (end - t0), 3),
        "peak_loaded_mb": round(loaded, 1), "peak_warm_mb": round(warm.get("peak", loaded), 1), "peak_end_mb": round(peak, 1),
        "growth_after_warmup_mb": round(peak - warm.get("peak", loaded), 1), "frame_mb": round(frame_mb, 2),
        "growth_in_frames": round((peak - warm.get("peak", loaded)) / frame_mb, 2),
        # the part of the clip after its first quarter: memory that grows with the clip's length
        "peak_quarter_mb": round(quarter.get("peak", peak), 1), "quarter_frames": quarter.get("frames"),
        "growth_last_3q_in_frames": round((peak - quarter.get("peak", peak)) / frame_mb, 2),
        # what the process holds between batches (after each batch's buffers are freed): a leak
        # grows it; the peak above also rises with the largest of the batches' transient buffers
        "held_quarter_mb": round(held[0], 1) if held else None,
        "held_growth_last_3q_in_frames": round((max(held) - held[0]) / frame_mb, 2) if held else None,
        "working_set_in_frames": round((peak - loaded) / frame_mb, 1),
    }  # fmt: skip


def bench_clip(path: Path, seconds: float, size: tuple[int, int] = BENCH_SIZE, fps: int = 25) -> Path:
    """The benchmark's clip: a pan and zoom over a test photo, ``seconds`` long, with an audio tone."""
    from experiments import benchmark as B

    photo = B.load_photo(B.default_photo())
    return write_clip(path, pan_zoom_frames(photo, int(round(seconds * fps)), size), fps=fps, audio_seconds=seconds)


def benchmark_video(methods: list[str], seconds: float = 60.0, frames: int = 100, batch: int = DEFAULT_BATCH, device: str = "cpu",
                    threads: int = 2, checkpoints: Path | None = None, stabilize: bool = False, memory: bool = True,
                    progress: bool = True) -> dict:  # fmt: skip
    """Frames/s of every method on ``frames`` frames of a 480p clip, each in a fresh process; with
    ``memory``, the first method over the whole ``seconds``-long clip for the memory row."""
    import json
    import subprocess
    import tempfile

    from experiments import benchmark as B

    rows, skipped = [], {}
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # was something else using the CPU?
    with tempfile.TemporaryDirectory(prefix="video-bench-") as tmp:
        clip = bench_clip(Path(tmp) / "clip480p.mp4", seconds if memory else max(frames / 25 + 1, 2))
        runs = [(m, frames, stabilize, "speed") for m in methods]
        if memory and methods:
            runs.append((methods[0], None, stabilize, "memory"))
        for method, n, stab, kind in runs:
            spec = {"method": method, "clip": str(clip), "out": str(Path(tmp) / f"{method}-{kind}.mp4"), "frames": n, "batch": batch,
                    "stabilize": stab, "device": device, "threads": threads, "checkpoints": str(checkpoints) if checkpoints else None}  # fmt: skip
            code = "import json, sys; from experiments.video import bench_worker; print('@@video ' + json.dumps(bench_worker(json.loads(sys.argv[1]))))"
            env = {**os.environ, **(B.thread_env(threads) if device == "cpu" else {})}
            if progress:
                print(f"video benchmark: {method} ({kind}, {'all' if n is None else n} frames)", file=sys.stderr)
            proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, env=env,
                                  cwd=str(Path(__file__).resolve().parent.parent))  # fmt: skip
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@video ")), None)
            if proc.returncode or line is None:
                skipped[f"{method} ({kind})"] = (proc.stderr.strip().splitlines() or ["failed"])[-1][:300]
                continue
            row = json.loads(line[len("@@video ") :])
            row["kind"] = kind
            if kind == "memory":
                row["target"] = f"peak RSS growth over the last 3/4 of the clip <= {MEMORY_FRAMES_TARGET} frames"
                row["result"] = "PASS" if row["growth_last_3q_in_frames"] <= MEMORY_FRAMES_TARGET else "FAIL"
            rows.append(row)
    return {
        "hardware": B.hardware_name([device]), "software": B.software(), "commit": B.git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M"), "clip": f"{BENCH_SIZE[0]}x{BENCH_SIZE[1]}, 25 fps, {seconds:g} s pan and zoom with AAC audio",
        "rows": rows, "skipped": skipped,
        "load": {"start": load_start, "cpus": os.cpu_count()},  # at the end it would count the rows' own processes
    }  # fmt: skip


def load_note(load: dict | None) -> str:
    """The machine's 1-minute load average before the rows, and (by the benchmarks' rule,
    ``experiments.benchmark.machine_was_shared``) what it means for frames/s."""
    from experiments.benchmark import machine_was_shared

    if not load or load.get("start") is None:
        return ""
    busy = machine_was_shared([load["start"]], load["cpus"])
    return (f" Load average (1 min) before the rows: {load['start']:.1f} on {load['cpus']} cores"
            + ("; other processes were using the CPU, so frames/s are lower than an idle machine's (memory is unaffected)." if busy else " (idle)."))  # fmt: skip


def _held(row: dict) -> str:
    """The held-memory column: a number, or - (rows from before it was measured, or no /proc)."""
    v = row.get("held_growth_last_3q_in_frames")
    return "-" if v is None else f"{v:.1f}"


def video_bench_markdown(report: dict) -> str:
    lines = [f"# Video benchmark: {report['hardware']}", "",
             f"{report['date']}, commit {report['commit']}. Clip: {report['clip']}. Each row in a fresh process; "
             "frames/s after the first two batches (decode, colorize in batches, encode, audio copy); memory: the process's "
             "peak resident set (ru_maxrss) after loading, after the first two batches, after a quarter of the clip and at the end; "
             "held: the resident set after each batch, once its buffers are freed - its largest rise after the first quarter "
             "is memory kept as the clip goes on, while the peak also rises with the largest batch's transient buffers; "
             "one 480p RGB frame is 1.17 MB." + load_note(report.get("load")), "",
             "| kind | method | device | threads | stabiliser | size | frames | load (s) | frames/s | peak after load (MB) | "
             "after 2 batches (MB) | after 1/4 (MB) | at end (MB) | above the model (frames) | growth over the last 3/4 (frames) | "
             "held: growth over the last 3/4 (frames) | target | result |",
             "|---|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]  # fmt: skip
    for r in report["rows"]:
        lines.append(f"| {r['kind']} | {r['method']} | {r['device']} | {r['threads']} | {'on' if r['stabilize'] else 'off'} | {r['size']} | "
                     f"{r['frames']} | {r['load_s']:.1f} | {r['fps']:.2f} | {r['peak_loaded_mb']:.0f} | {r['peak_warm_mb']:.0f} | "
                     f"{r['peak_quarter_mb']:.0f} | {r['peak_end_mb']:.0f} | {r['working_set_in_frames']:.1f} | "
                     f"{r['growth_last_3q_in_frames']:.1f} | {_held(r)} | {r.get('target', '')} | {r.get('result', '')} |")  # fmt: skip
    for k, why in report["skipped"].items():
        lines.append(f"\n- `{k}` did not run: {why}")
    return "\n".join(lines) + "\n"


def benchmark_cli(args) -> int:
    """``python -m experiments.benchmark --video``: writes ``video-<hardware>.{json,md}`` in ``--out``."""
    import json

    from experiments import benchmark as B

    try:
        methods = (
            [m for m in B.parse_methods(args.methods) if m != "neural_style"]
            if args.methods == "all"
            else B.parse_methods(args.methods)
        )
        devices = B.parse_devices(args.device)
        if args.video_seconds <= 0 or args.video_frames < 1:
            raise ValueError("--video-seconds must be > 0 and --video-frames >= 1")
    except (ColorizationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    checkpoints = args.checkpoints
    if checkpoints is None and os.environ.get("COLORIZE_RESULTS_DIR"):
        checkpoints = Path(os.environ["COLORIZE_RESULTS_DIR"]).expanduser() / "checkpoints"
    reports = []
    for device in devices:
        reports.append(benchmark_video(methods, args.video_seconds, args.video_frames, batch=DEFAULT_BATCH, device=device,
                                       threads=args.cpu_threads, checkpoints=checkpoints, stabilize=args.video_stabilize,
                                       memory=not args.video_no_memory,
                                       progress=not args.quiet))  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    report = reports[0] if len(reports) == 1 else {**reports[0], "rows": [r for rep in reports for r in rep["rows"]]}
    stem = args.out / f"video-{B.slug(report['hardware'])}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    md = video_bench_markdown(report)
    stem.with_suffix(".md").write_text(md)
    if not args.quiet:
        print(md)
    print(f"wrote {stem}.json, {stem}.md")
    return 0


def add_benchmark_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("video (--video: only the video rows)")
    g.add_argument("--video", action="store_true",
                   help="frames/s per method on a 480p clip and the memory over a 1-minute one -> video-<hardware>.{json,md}")  # fmt: skip
    g.add_argument("--video-seconds", type=float, default=60.0, help="length of the memory row's clip (default 60 s)")
    g.add_argument("--video-frames", type=int, default=100, help="frames timed per method (default 100)")
    g.add_argument("--video-no-memory", action="store_true", help="skip the whole-clip memory row")
    g.add_argument("--video-stabilize", action="store_true", help="with the temporal stabiliser on")


# --- python -m experiments.video make-clips -------------------------------------------------------------


def make_clips(photos: str | Path, out: str | Path, count: int = 6, frames: int = 40, size: tuple[int, int] = (256, 192),
               every: int = 4, fps: int = 25) -> list[Path]:  # fmt: skip
    """Evaluation clips without the network: a pan and zoom over every ``every``-th photo of a folder
    (sorted), ``count`` of them, as ``<out>/<photo stem>.mp4``."""
    files = sorted(p for p in Path(photos).rglob("*") if is_image_file(p))
    if not files:
        raise VideoError(str(photos), "folder holds no photos")
    made = []
    for p in files[::every][:count]:
        photo = load_image(p, mode="rgb")
        made.append(write_clip(Path(out) / f"{p.stem}.mp4", pan_zoom_frames(photo, frames, size), fps=fps))
    return made


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.video", description="Make evaluation clips from photos (no network).")
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make-clips", help="a pan and zoom over photos of a folder -> OUT/<photo>.mp4")
    m.add_argument(
        "--photos", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "test" / "kodak24"
    )
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--count", type=int, default=6)
    m.add_argument("--frames", type=int, default=40)
    m.add_argument("--size", default="256x192", help="WxH")
    m.add_argument("--every", type=int, default=4, help="take every N-th photo (sorted)")
    args = p.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        made = make_clips(args.photos, args.out, args.count, args.frames, (w, h), args.every)
    except (ColorizationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(made)} clips to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
