"""The colorization flow every method shares, and the small training contract.

A method only predicts ab from L at its working size (:meth:`Colorizer.predict_ab`). This base
class owns the rest: input validation, lightness at full resolution, resizing, upsampling the
ab, joining it to the ORIGINAL L and gamut clipping, so no method can get size or lightness
wrong.

Training contract (what ``experiments.train`` calls, knowing nothing method-specific)::

    method = Cls(config, device)          # fresh, untrained
    losses = method.train_step(batch)     # batch: {"L": N1HW, "ab": N2HW, "label": N} torch tensors
    method.save(path, meta)               # model + optimiser state + config, resumable
    method.load(path, training=True)
"""

from __future__ import annotations

import dataclasses
import json
import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from . import color, threads
from .errors import BackendUnavailable, CheckpointError
from .imageio import as_rgb

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = PROJECT_ROOT / "results" / "checkpoints"


def resolve_device(device: str | None = "auto") -> str:
    """``auto`` -> ``cuda`` when a CUDA GPU is present, else ``cpu``."""
    device = (device or "auto").lower()
    if device == "auto":
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    elif device != "cpu":
        raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device


def resize_plane(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float ``H x W`` plane to ``(h, w)`` (Pillow, float32)."""
    h, w = size
    if x.shape == (h, w):
        return x.astype(np.float32, copy=False)
    return np.asarray(Image.fromarray(x.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))


def config_from_dict(cls, data: dict | None):
    """Fill dataclass ``cls`` from a dict, refusing unknown keys (typos fail loudly)."""
    data = dict(data or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown option(s) for {cls.__name__}: {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return cls(**data)


def check_working_size(size) -> int:
    """A configured working size: an integer of at least 16 (a method with stricter needs, such as
    the U-Net's multiple of 2 ** n_down, checks them itself)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"working_size must be an integer >= 16, got {size!r}")
    return size


def linear_decay_lr(step: int, lr: float, decay_start: int, decay_steps: int) -> float:
    """Learning rate before the ``step``-th update (0-based) under pix2pix's "linear" policy: ``lr``
    for ``decay_start`` steps, then falling linearly to 0 over ``decay_steps`` more (0: constant).
    The gan's schedule, and an option of regression and fusion / koalarization."""
    if decay_steps <= 0 or step < decay_start:
        return lr
    return lr * max(0.0, 1.0 - (step - decay_start + 1) / (decay_steps + 1))


def check_linear_decay(decay_start: int, decay_steps: int) -> None:
    """A config's :func:`linear_decay_lr` settings, checked where the config is."""
    if decay_start < 0 or decay_steps < 0:
        raise ValueError(f"decay_start and decay_steps must be >= 0, got {decay_start}, {decay_steps}")


def aspect_kept_shape(h: int, w: int, size: int, multiple: int = 16) -> tuple[int, int]:
    """The working shape of an ``h x w`` photo with its aspect ratio kept: the longer side becomes
    ``size``, both sides rounded to multiples of ``multiple`` (at least one multiple).

    Fusion's shape always; classification's, gan's and regression's with ``keep_aspect`` (their
    default, NOT the papers' code, which squashes every photo to the working square; neural_style's
    too, where Gatys et al. optimise at any shape), so a
    non-square photo meets the network undistorted, at the scale a square one does (training crops
    are square cuts, never squashed); a square photo gets the same square either way. Measured on
    400 validation photos outside the tables' and the gate's samples, each cut to 3:2, 2:3, 4:3 or
    3:4 in turn (the val set itself is all square): rebalanced AuC squashed -> kept, classification
    0.8374 -> 0.8425, gan 0.8315 -> 0.8336, regression 0.8353 -> 0.8383 (grey 0.8079); the shorter
    side at the working size instead (a larger scale) 0.8342 / 0.8316 / 0.8338. The 91 test photos,
    at their own shape, move by at most 0.001 (docs/training.md, "Non-square photos")."""
    k = size / max(h, w)
    return max(multiple, int(round(h * k / multiple)) * multiple), max(multiple, int(round(w * k / multiple)) * multiple)


def _fits_half(t) -> bool:
    """True when a float tensor survives float16: finite there, no value above its range (65,504)."""
    return bool(t.numel() == 0 or float(t.detach().abs().max()) <= 65504.0)


class Colorizer:
    """Base of every backend. Subclasses set ``name`` and implement :meth:`predict_ab`."""

    name: ClassVar[str] = "base"
    #: Working resolution (square) at which the method sees L; output keeps the input's size.
    working_size: int = 256
    #: True for methods that use a colour reference photo.
    uses_reference: ClassVar[bool] = False
    #: Checkpoint file extension (``.pt`` for PyTorch methods, ``.keras`` for Keras).
    checkpoint_ext: ClassVar[str] = ".pt"

    device: str = "cpu"
    checkpoint: Path | None = None
    #: The provenance saved with the checkpoint it was built from (``from_checkpoint``).
    checkpoint_meta: dict[str, Any] = {}

    # -- the method's own part -----------------------------------------------------------------
    def predict_ab(self, L: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """``N x H x W`` float32 L in [0, 100] at the working size -> ``N x 2 x h x w`` ab."""
        raise NotImplementedError

    # -- the shared flow -----------------------------------------------------------------------
    def working_shape(self, h: int, w: int) -> tuple[int, int]:
        """The shape L is resized to before the network: the ``working_size`` square (the papers'
        code squashes every photo to it), or, for a method whose config says ``keep_aspect``, the
        photo's own aspect ratio with its longer side at ``working_size`` (a square photo gets the
        same square either way)."""
        s = self.working_size
        if getattr(getattr(self, "config", None), "keep_aspect", False):
            return aspect_kept_shape(h, w, s)
        return (s, s)

    def colorize(self, image: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """Grey ``H x W`` or RGB ``H x W x 3`` uint8 -> RGB uint8 of the same size and lightness."""
        return self.colorize_batch([image], reference=reference)[0]

    def colorize_batch(self, images: list[np.ndarray], reference: np.ndarray | None = None) -> list[np.ndarray]:
        """Colorize several images in one forward pass (they may differ in size)."""
        rgbs = [as_rgb(im, f"image {i}") for i, im in enumerate(images)]
        if reference is not None:
            reference = as_rgb(reference, "reference")
        L_full = [color.lightness(rgb) for rgb in rgbs]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, L in enumerate(L_full):
            groups.setdefault(self.working_shape(*L.shape), []).append(i)
        out: list[np.ndarray | None] = [None] * len(rgbs)
        for shape, idx in groups.items():
            L_small = np.stack([resize_plane(L_full[i], shape) for i in idx])
            with threads.fitted():  # fewer PyTorch threads while other work holds cores (backends.threads)
                ab = np.asarray(self.predict_ab(L_small, reference=reference), dtype=np.float32)
            for j, i in enumerate(idx):
                out[i] = join_lab(L_full[i], ab[j])
        return out  # type: ignore[return-value]

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def default_checkpoint(cls) -> Path:
        return CHECKPOINT_DIR / f"{cls.name}{cls.checkpoint_ext}"

    @classmethod
    def open(cls, checkpoint: str | Path | None = None, device: str = "auto", **options) -> Colorizer:
        """Ready-to-use model: the given checkpoint, else the shipped one in results/checkpoints."""
        path = Path(checkpoint) if checkpoint else cls.default_checkpoint()
        if not path.exists():
            if checkpoint:
                raise CheckpointError(f"{path}: checkpoint not found")
            raise BackendUnavailable(
                f"{cls.name}: no trained checkpoint at {path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path}; "
                f"fix: python -m experiments.train --config experiments/configs/{cls.name}.toml, or pass --checkpoint"
            )
        return cls.from_checkpoint(path, device, **options)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", **overrides) -> Colorizer:
        raise NotImplementedError

    @classmethod
    def availability(cls) -> tuple[bool, str, str | None]:
        """(can run, why / what, checkpoint path) without loading the model."""
        path = cls.default_checkpoint()
        if path.exists():
            return True, f"checkpoint {path.name}", str(path)
        return False, f"no trained checkpoint at results/checkpoints/{path.name}; train one with experiments.train", None

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "device": self.device, "checkpoint": str(self.checkpoint) if self.checkpoint else None}

    # -- weights as arrays (experiments.average) ---------------------------------------------
    def weight_arrays(self) -> dict[str, np.ndarray]:
        """Every weight and buffer of the method's networks by name (float32 or integer arrays)."""
        raise NotImplementedError(f"{self.name} has no trainable weights")

    def set_weight_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Load arrays named as :meth:`weight_arrays` names them (all of them, same shapes)."""
        raise NotImplementedError(f"{self.name} has no trainable weights")


def _native_cpu_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except AttributeError:  # an older PyTorch without the probes
        return False


def join_lab(L_full: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Upsample ``2 x h x w`` ab to L's size and join to the original L -> RGB uint8; colours
    outside sRGB lose chroma (not lightness) to fit, so the output keeps the input's L.

    Works strip by strip (about ``color.STRIP_PIXELS`` pixels each) in float32, so memory beyond
    the input's L and the output is a few strips whatever the photo's size; each strip is then
    converted by OpenCV and the pixels it clipped, collected over the strips, are gamut-mapped
    exactly in one pass (:class:`color.GamutEdges`; without OpenCV, each strip is
    :func:`color.lab_to_rgb_uint8_mapped` in numpy). The strips' ab is bilinear upsampling with pixel centres
    aligned (Pillow's and OpenCV's ``INTER_LINEAR``): when ab is upsampled in both directions (the
    usual case), separably - OpenCV resizes the rows once to the full width (a small ``h x W``
    image), then each strip blends its two source rows (7 ms -> under 2 ms for a 1024 px photo; the
    same values as Pillow's within 1e-6, tested); otherwise (ab larger than L in a direction, where
    Pillow's filter also anti-aliases) Pillow resizes the same source box for each strip, so the
    strips tile the full-size resize exactly."""
    h, w = L_full.shape
    ab = np.asarray(ab, dtype=np.float32)
    sh, sw = ab.shape[1:]
    out = np.empty((h, w, 3), np.uint8)
    step = max(1, color.STRIP_PIXELS // w)
    if color._cv2() is not None:  # OpenCV per strip, the gamut's edge pixels of all strips in one pass
        edges = color.GamutEdges(out.reshape(-1, 3))

        def put(r0: int, r1: int, L: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
            flat = (r1 - r0) * w
            edges.convert(r0 * w, *(np.ascontiguousarray(p, dtype=np.float32).reshape(flat) for p in (L, a, b)))
    else:
        edges = None

        def put(r0: int, r1: int, L: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
            out[r0:r1] = color.lab_to_rgb_uint8_mapped(L, a, b)

    _join_strips(L_full, ab, put, step)
    if edges is not None:
        edges.finish()
    return out


def _join_strips(L_full: np.ndarray, ab: np.ndarray, put, step: int) -> None:
    """Calls ``put(r0, r1, L, a, b)`` for each strip of rows with ab upsampled to L's size."""
    h, w = L_full.shape
    sh, sw = ab.shape[1:]
    if (sh, sw) == (h, w):
        for r0 in range(0, h, step):
            r1 = min(h, r0 + step)
            put(r0, r1, L_full[r0:r1], ab[0, r0:r1], ab[1, r0:r1])
        return
    wide = _widen_rows(ab, w) if h >= sh and w >= sw else None
    if wide is not None:
        ys = np.clip((np.arange(h) + 0.5) * (sh / h) - 0.5, 0.0, sh - 1)
        i0 = np.floor(ys).astype(np.intp)
        i1 = np.minimum(i0 + 1, sh - 1)
        f = (ys - i0).astype(np.float32)[:, None]
        for r0 in range(0, h, step):
            r1 = min(h, r0 + step)
            fr = f[r0:r1]
            a, b = ((1.0 - fr) * wide[c][i0[r0:r1]] + fr * wide[c][i1[r0:r1]] for c in (0, 1))
            put(r0, r1, L_full[r0:r1], a, b)
        return
    planes = [Image.fromarray(np.ascontiguousarray(ab[c]), mode="F") for c in (0, 1)]
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        box = (0.0, r0 * sh / h, float(sw), r1 * sh / h)
        a, b = (np.asarray(p.resize((w, r1 - r0), Image.BILINEAR, box=box)) for p in planes)
        put(r0, r1, L_full[r0:r1], a, b)


def _widen_rows(ab: np.ndarray, w: int) -> list[np.ndarray] | None:
    """Each of ab's ``sh`` rows linearly interpolated to width ``w`` (pixel centres aligned):
    ``[a, b]``, each ``sh x w``; None without OpenCV."""
    cv2 = color._cv2()
    if cv2 is None:
        return None
    if ab.shape[2] == w:
        return [ab[0], ab[1]]
    wide = cv2.resize(np.ascontiguousarray(ab.transpose(1, 2, 0)), (w, ab.shape[1]), interpolation=cv2.INTER_LINEAR)
    return [np.ascontiguousarray(wide[..., 0]), np.ascontiguousarray(wide[..., 1])]


# --- PyTorch methods --------------------------------------------------------------------------


class TorchColorizer(Colorizer):
    """Shared PyTorch plumbing: device, mixed precision, networks dict, safe checkpoints.

    Subclasses build ``self.nets`` (name -> nn.Module) and ``self.optims`` (name -> optimiser)
    in ``__init__`` and call :meth:`_finish_init`.
    """

    Config: ClassVar[type]

    def __init__(self, config=None, device: str = "auto"):
        import torch

        self.config = config if config is not None else self.Config()
        self.working_size = check_working_size(getattr(self.config, "working_size", type(self).working_size))
        self.device = resolve_device(device)
        self.nets: dict[str, torch.nn.Module] = {}
        self.optims: dict[str, torch.optim.Optimizer] = {}
        self.step = 0

    def _finish_init(self):
        import torch

        for k, net in self.nets.items():
            self.nets[k] = net.to(self.device)
            if self.device == "cpu":  # oneDNN's convolutions run channels-last natively: gan and fusion's
                # forward pass 31% and 34% less CPU time (1 thread, 512 px), classification's the same
                self.nets[k] = self.nets[k].to(memory_format=torch.channels_last)
        self.use_amp = self.device.startswith("cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.eval()

    # -- modes and precision ---------------------------------------------------------------------
    def train(self):
        for net in self.nets.values():
            net.train()
        return self

    def eval(self):
        for net in self.nets.values():
            if net.training:  # a walk over every submodule (1-3 ms): only when not in eval mode already
                net.eval()
        return self

    def autocast(self):
        import torch

        return torch.autocast("cuda", dtype=torch.float16) if self.use_amp else nullcontext()

    #: ``train_step`` in bfloat16 on the CPU (set by :meth:`set_train_precision`); inference stays float32.
    cpu_bf16 = False

    def set_train_precision(self, precision: str = "auto") -> str:
        """Precision of ``train_step`` on this device: ``"auto"`` (bfloat16 autocast on a CPU with
        native bfloat16 - AVX512-BF16 or AMX - else float32; CUDA keeps its float16 AMP), ``"bf16"``
        (on any CPU; emulated where not native, usually slower) or ``"float32"``. With bfloat16 the
        networks also go channels-last (oneDNN's preferred layout). Measured with the benchmark's
        training row (1 thread, 64-px crops, a Xeon with AMX): fusion 24.5 -> 47.3 images per
        CPU-second, gan 33.1 -> 70.3, classification 119 -> 171. Losses, softmaxes and the
        optimiser stay float32 (autocast's CPU policy), and so do the weights. Returns what was chosen."""
        import torch

        if precision not in ("auto", "bf16", "float32"):
            raise ValueError(f"train precision must be auto, bf16 or float32, got {precision!r}")
        on_cpu = self.device == "cpu"
        native = on_cpu and _native_cpu_bf16()
        self.cpu_bf16 = on_cpu and (precision == "bf16" or (precision == "auto" and native))
        if self.cpu_bf16:
            for net in self.nets.values():
                net.to(memory_format=torch.channels_last)
            return "bf16"
        return "float16-amp" if self.use_amp else "float32"

    def train_autocast(self):
        """The autocast of ``train_step``: bfloat16 on the CPU when chosen, else :meth:`autocast`."""
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16) if self.cpu_bf16 else self.autocast()

    def backward(self, loss, optim_name: str):
        """Backward + step of one optimiser, with the AMP grad scaler on CUDA."""
        opt = self.optims[optim_name]
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()

    def distribute(self, local_rank: int):
        """Wrap every trainable network in DistributedDataParallel (used under torchrun)."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        for k, net in self.nets.items():
            if any(p.requires_grad for p in net.parameters()):
                ids = [local_rank] if self.device.startswith("cuda") else None
                self.nets[k] = DDP(net, device_ids=ids)

    def _bare(self, net):
        return getattr(net, "module", net)

    #: On the CPU, inference runs at most this many pixels per forward pass (None: the whole batch
    #: at once). Set by methods whose activations are memory-bound: U-Net skips and concatenations
    #: of a 16-photo batch stream through main memory, those of 4 photos stay in the cache.
    cpu_slice_pixels: ClassVar[int | None] = None

    def slice_sizes(self, n: int, h: int, w: int) -> list[int]:
        """How many of ``n`` images of ``h x w`` each forward pass takes (see :attr:`cpu_slice_pixels`)."""
        if self.device != "cpu" or self.cpu_slice_pixels is None:
            return [n]
        step = max(1, self.cpu_slice_pixels // (h * w))
        return [min(step, n - i) for i in range(0, n, step)]

    def to_tensor(self, x: np.ndarray):
        import torch

        if isinstance(x, np.ndarray) and not x.flags.writeable:  # e.g. a cached, frozen input: torch warns
            x = np.array(x, dtype=np.float32)  # on sharing read-only memory; the copy is one small plane
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    # -- checkpoints -------------------------------------------------------------------------------
    def weight_arrays(self) -> dict[str, np.ndarray]:
        return {
            f"{k}/{n}": (v.detach().float() if v.is_floating_point() else v.detach()).cpu().numpy()
            for k, net in self.nets.items()
            for n, v in self._bare(net).state_dict().items()
        }

    def set_weight_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        import torch

        for k, net in self.nets.items():
            bare = self._bare(net)
            ref = bare.state_dict()
            bare.load_state_dict({n: torch.as_tensor(np.asarray(arrays[f"{k}/{n}"])).to(v.dtype) for n, v in ref.items()})

    def extra_state(self) -> dict:
        """Tensors/plain values the method needs besides its networks (e.g. ab bins)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def save(self, path: str | Path, meta: dict | None = None, training: bool = True, half: bool = False) -> Path:
        """Write a checkpoint (atomically). ``training`` keeps the optimiser state for resuming;
        ``half`` stores float weights in float16 (for shipped checkpoints)."""
        import torch

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)

        def cast(sd):
            # float16 only where the values fit it: a BatchNorm running variance above 65,504 became
            # inf (fusion's first encoder layer did), zeroing its channels in the shipped model
            return {k: (v.half() if half and v.is_floating_point() and _fits_half(v) else v) for k, v in sd.items()}

        state = {
            "method": self.name,
            "config": dataclasses.asdict(self.config),
            "nets": {k: cast(self._bare(n).state_dict()) for k, n in self.nets.items()},
            "extra": self.extra_state(),
            "step": self.step,
            "meta": json.loads(json.dumps(meta or {}, default=str)),
        }
        if training:
            state["optims"] = {k: o.state_dict() for k, o in self.optims.items()}
            state["scaler"] = self.scaler.state_dict()
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    @classmethod
    def read_checkpoint(cls, path: str | Path) -> dict:
        import torch

        path = Path(path)
        if not path.exists():
            raise CheckpointError(f"{path}: checkpoint not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:120]})") from None
        if not isinstance(state, dict) or "nets" not in state:
            raise CheckpointError(f"{path}: not a checkpoint of this project (no 'nets' entry)")
        if state.get("method") != cls.name:
            raise CheckpointError(f"{path}: checkpoint is for method {state.get('method')!r}, not {cls.name!r}")
        return state

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", **overrides):
        """Rebuild the model from the config stored in the checkpoint, then load its weights."""
        state = cls.read_checkpoint(path)
        cfg = dict(state.get("config") or {})
        cfg.update(overrides)
        try:
            obj = cls(config_from_dict(cls.Config, cfg), device)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: checkpoint config does not fit {cls.name}: {exc}") from None
        obj._load_state(state, path, training=False)
        obj.checkpoint = Path(path)
        obj.checkpoint_meta = state.get("meta", {})
        return obj

    def load(self, path: str | Path, training: bool = True) -> dict:
        state = self.read_checkpoint(path)
        self._load_state(state, path, training)
        return state.get("meta", {})

    def _load_state(self, state: dict, path, training: bool):
        try:
            self.load_extra_state(state.get("extra", {}))
            for k, net in self.nets.items():
                sd = state["nets"][k]
                ref = self._bare(net).state_dict()
                sd = {n: v.to(ref[n].dtype) if n in ref else v for n, v in sd.items()}
                self._bare(net).load_state_dict(sd)
            if training and "optims" in state:
                for k, opt in self.optims.items():
                    opt.load_state_dict(state["optims"][k])
                self.scaler.load_state_dict(state.get("scaler", {}))
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{path}: checkpoint does not match the {self.name} model ({str(exc).splitlines()[0][:160]})") from None
        self.step = int(state.get("step", 0))
