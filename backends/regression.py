"""The baseline of the source reports: a CNN that regresses ab directly, in TensorFlow / Keras.

An encoder-decoder maps normalised L to normalised ab with no intermediate representation:
``Config.depth`` stride-2 3 x 3 convolutions (no pooling) each followed by a 3 x 3 convolution,
BatchNorm + ReLU after every one, down to 1 / 2**depth resolution; then ``depth`` stages of
nearest-neighbour upsampling + 3 x 3 convolution back to full resolution, and a 3 x 3
convolution to 2 channels with tanh (ab / ``AB_SCALE``). No skip connections: it is the plain
baseline the other methods are compared against. The loss is L2 (mean squared error on ab /
``AB_SCALE``), with Huber as an option (``Config.huber_delta`` in ab units). L2 regression
averages the plausible colours of a region, so its colours are famously desaturated (brownish);
that is the point of having it in the comparison.

SHRUNK for 2 CPU cores: base width 32 doubling per stage to 256 at depth 4 (the source reports
used wider stages), 1.57 M parameters and about 4.1 GFLOPs (2.1 G multiply-adds) per 256 x 256
forward pass. See ``experiments/configs/regression.toml`` for the measured time.

Built in Keras on purpose, as the source reports did, to show that a Keras model plugs in beside
the PyTorch ones. TensorFlow is imported only when this backend builds a model (never by
``import backends`` or ``import backends.regression``), with GPU memory growth switched on
first so that TensorFlow and PyTorch can share one GPU.

Checkpoint (``.keras``): Keras's own archive (``config.json``, ``metadata.json``,
``model.weights.h5``) plus ``workbench.json`` (method, config, step, the runner's meta) and,
for resumable checkpoints, ``optimizer.npz`` (Adam's slots and iteration count). Loading goes
through ``keras.saving.load_model(safe_mode=True)`` on the Keras part only, and ``np.load`` with
``allow_pickle=False`` on the optimiser state: nothing in a checkpoint is executed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import os
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from . import color
from .base import Colorizer, check_linear_decay, check_working_size, config_from_dict, linear_decay_lr, resolve_device
from .encoders import SqueezeNetFeatures, building_from_checkpoint, check_encoder, from_checkpoint_active, grey_srgb
from .errors import BackendUnavailable, CheckpointError
from .registry import MethodInfo, keep_aspect_option

#: Entries of the Keras archive proper; everything else in the zip belongs to the workbench.
KERAS_FILES = ("config.json", "metadata.json", "model.weights.h5")
META_FILE = "workbench.json"
OPTIMIZER_FILE = "optimizer.npz"


@dataclass
class Config:
    """The ``[model]`` section of ``experiments/configs/regression.toml``."""

    #: Width of the first stage; each stride-2 stage doubles it (32 -> 64 -> 128 -> 256).
    filters: int = 32
    #: Number of stride-2 stages (the output of the encoder is at 1 / 2**depth resolution).
    depth: int = 4
    #: "l2" (mean squared error, the source reports' loss) or "huber".
    loss: str = "l2"
    #: Huber threshold in ab units (errors beyond it are penalised linearly).
    huber_delta: float = 10.0
    #: Adam.
    lr: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    #: Linear learning-rate decay (the gan's pix2pix policy, not the source reports', which keep
    #: Adam's rate constant): ``lr`` for ``decay_start`` steps, then falling linearly to 0 over
    #: ``decay_steps`` more; 0 = off (constant).
    decay_start: int = 0
    decay_steps: int = 0
    #: Seed of the weight initialisation.
    seed: int = 0
    #: "scratch" (the plain encoder above, learned) or "squeezenet": the genuine ImageNet SqueezeNet
    #: 1.1 as a frozen Keras encoder (its first convolution folded to take the grey image), with a
    #: decoder of nearest upsampling + 3x3 conv + BatchNorm + ReLU that concatenates its taps at
    #: 1/16, 1/8, 1/4, 1/2 and a learned L path at 1/2 and 1 (:func:`build_squeeze_network`).
    #: The regression head (tanh, ab / AB_SCALE, L2 or Huber) is unchanged.
    encoder: str = "scratch"
    #: Fine-tune the pretrained encoder (default: frozen).
    encoder_trainable: bool = False
    #: Explicit SqueezeNet weights file (Keras HDF5); empty: the weights resolver.
    squeezenet_weights: str = ""
    #: The SqueezeNet encoder sees the grey photo resized by this factor (to multiples of 16), its
    #: taps resampled back to the decoder's grid (antialiased bilinear; 1: as the decoder) - as the
    #: PyTorch methods' :class:`backends.encoders.SqueezeNetEncoder` does (area resampling there).
    encoder_scale: float = 1.0
    #: Working size: L is resized to this square (with ``keep_aspect``, its longer side to this)
    #: before the network (ab comes back at the photo's size). The paper's 256; the squeezenet runs
    #: use 160, the scale of their training photos (cached at 160 px on the short side), since a
    #: network meets objects at the size it learned them.
    working_size: int = 256
    #: Keep a non-square photo's shape, its longer side at ``working_size`` (not the paper's code,
    #: which squashes it to the working square; ``false``): :func:`backends.base.aspect_kept_shape`
    #: has why and what it measured.
    keep_aspect: bool = True
    #: Decoder upsampling, "nearest" (the source reports') or "bilinear" (no 2-px blocks in ab).
    upsample: str = "nearest"

    def __post_init__(self):
        if self.loss not in ("l2", "huber"):
            raise ValueError(f"loss must be 'l2' or 'huber', got {self.loss!r}")
        if not 1 <= self.depth <= 6:
            raise ValueError(f"depth must be in 1..6, got {self.depth}")
        if self.filters < 2:
            raise ValueError(f"filters must be >= 2, got {self.filters}")
        if self.huber_delta <= 0:
            raise ValueError(f"huber_delta must be > 0, got {self.huber_delta}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        check_linear_decay(self.decay_start, self.decay_steps)
        check_encoder(self.encoder)
        if self.upsample not in ("nearest", "bilinear"):
            raise ValueError(f"upsample must be 'nearest' or 'bilinear', got {self.upsample!r}")
        if not 0.5 <= self.encoder_scale <= 4.0:
            raise ValueError(f"encoder_scale must be in [0.5, 4], got {self.encoder_scale}")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (the network pads to it)."""
        return 16 if self.encoder == "squeezenet" else 2**self.depth


def _upsample(x, mode: str, dtype, name: str):
    """2x upsampling. "bilinear" is nearest upsampling followed by a fixed 2x2 box filter (stride 1),
    which is linear interpolation shifted by half a pixel: it removes the 2-px period nearest
    leaves in ab exactly, and unlike Keras' bilinear UpSampling2D it works on inputs of unknown
    size inside a traced predict function (that one needs static height and width)."""
    from keras import layers

    x = layers.UpSampling2D(2, interpolation="nearest", dtype=dtype, name=name)(x)
    if mode == "bilinear":
        x = layers.AveragePooling2D(2, strides=1, padding="same", dtype=dtype, name=f"{name}_smooth")(x)
    return x


# --- TensorFlow, imported on first use --------------------------------------------------------


def tensorflow():
    """Import TensorFlow and Keras (Keras on the TensorFlow backend), GPU memory growth on.

    Memory growth has to be set before TensorFlow touches a GPU; otherwise TensorFlow would
    reserve nearly all GPU memory and leave none for the PyTorch methods in the same process.
    """
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and importlib.util.find_spec("triton") is not None:
        # TensorFlow and Triton (which PyTorch imports for its compiler, e.g. on the first
        # torch.optim optimiser) both carry LLVM; loading Triton AFTER TensorFlow aborts the whole
        # process ("LLVM ERROR: inconsistency in registered CommandLine options"). Loaded first,
        # both work, so the PyTorch methods keep running beside this one.
        import triton  # noqa: F401
    try:
        import tensorflow as tf
    except ImportError:
        raise BackendUnavailable(
            "regression: needs the Python package 'tensorflow', which is not installed; fix: pip install -r requirements.txt"
        ) from None
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the GPU was initialised already, by an earlier call: growth is set
            pass
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        try:  # TensorFlow ignores OMP_NUM_THREADS; honour it so a shared CPU is not oversubscribed
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(int(threads))
        except RuntimeError:  # the runtime is up already; the first setting stays
            pass
    import keras

    if keras.backend.backend() != "tensorflow":
        raise BackendUnavailable(
            f"regression: Keras runs on the {keras.backend.backend()!r} backend in this process; "
            "fix: set KERAS_BACKEND=tensorflow before anything imports keras"
        )
    return tf, keras


def tf_device(device: str) -> str:
    """``cpu`` -> ``/CPU:0``; ``cuda`` / ``cuda:N`` -> ``/GPU:0`` / ``/GPU:N``."""
    if device.startswith("cuda"):
        return f"/GPU:{device.partition(':')[2] or 0}"
    return "/CPU:0"


def build_squeeze_network(cfg: Config, dtype: str = "float32"):
    """``[N x H x W x 1 normalised L, N x H x W x 1 grey sRGB in [0, 1]]`` -> ``N x H x W x 2`` ab /
    AB_SCALE (tanh); H and W multiples of 16.

    SqueezeNet 1.1 in Keras with the layer names of the released Keras weights (``conv1``,
    ``fire2_squeeze1x1`` ...), 'same' padding so its taps sit at exactly 1/2, 1/4, 1/8 and 1/16.
    Its input convention (BGR x 255 minus the ImageNet mean, three equal channels for a grey
    photo) is folded into ``conv1`` (:func:`squeezenet_keras_weights`), so it takes the grey image
    as one channel."""
    _, keras = tensorflow()
    from keras import layers

    seed = iter(range(cfg.seed * 1000, cfg.seed * 1000 + 1000))
    frozen = not cfg.encoder_trainable

    def sq_conv(x, width, k, stride=1, name=""):
        return layers.Conv2D(width, k, strides=stride, padding="same", activation="relu", dtype=dtype, name=name, trainable=not frozen)(x)

    def conv(x, width, stride=1, name=""):
        x = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False,
                          kernel_initializer=keras.initializers.HeNormal(seed=next(seed)), dtype=dtype, name=name)(x)  # fmt: skip
        x = layers.BatchNormalization(momentum=0.9, dtype=dtype, name=f"{name}_bn")(x)
        return layers.ReLU(dtype=dtype, name=f"{name}_relu")(x)

    def up(x, name):
        return _upsample(x, cfg.upsample, dtype, name)

    inp_l = keras.Input((None, None, 1), name="L", dtype=dtype)
    inp_g = keras.Input((None, None, 1), name="grey", dtype=dtype)
    g = inp_g
    if cfg.encoder_scale != 1.0:  # the ImageNet network sees the photo resized (see Config.encoder_scale)
        g = resize_layer()(cfg.encoder_scale, 16, "bilinear", dtype=dtype, name="encoder_resize")([inp_g, inp_g])
    x = sq_conv(g, 64, 3, 2, "conv1")
    taps = [x]
    pool_i = 0
    for spec, fname in zip(SqueezeNetFeatures.FIRES, SqueezeNetFeatures.KERAS_NAMES):
        if spec == "M" or fname == "fire2":
            pool_i += 1
            x = layers.MaxPooling2D(3, 2, padding="same", dtype=dtype, name=f"pool{pool_i}")(x)
        if spec == "M":
            continue
        _, sq, e1, e3 = spec
        s = sq_conv(x, sq, 1, name=f"{fname}_squeeze1x1")
        x = layers.Concatenate(dtype=dtype, name=f"{fname}_concat")([sq_conv(s, e1, 1, name=f"{fname}_expand1x1"), sq_conv(s, e3, 3, name=f"{fname}_expand3x3")])
        if fname in ("fire3", "fire5", "fire9"):
            taps.append(x)
    f2, f4, f8, f16 = taps
    if cfg.encoder_scale != 1.0:  # each tap back to 1/2 ... 1/16 of L's side
        f2, f4, f8, f16 = (resize_layer()(1 / 2**k, 1, "antialias", dtype=dtype, name=f"tap{2**k}_resize")([t, inp_l])
                           for k, t in zip((1, 2, 3, 4), (f2, f4, f8, f16)))  # fmt: skip
    l1 = conv(inp_l, 16, name="local1")
    l2 = conv(l1, 32, stride=2, name="local2")
    y = conv(f16, 192, name="dec16")
    y = conv(layers.Concatenate(dtype=dtype, name="cat8")([up(y, "up8"), f8]), 128, name="dec8")
    y = conv(layers.Concatenate(dtype=dtype, name="cat4")([up(y, "up4"), f4]), 64, name="dec4")
    y = conv(layers.Concatenate(dtype=dtype, name="cat2")([up(y, "up2"), f2, l2]), 32, name="dec2")
    y = conv(layers.Concatenate(dtype=dtype, name="cat1")([up(y, "up1"), l1]), 16, name="dec1")
    out = layers.Conv2D(2, 3, padding="same", activation="tanh",
                        kernel_initializer=keras.initializers.GlorotUniform(seed=next(seed)), dtype=dtype, name="ab")(y)  # fmt: skip
    return keras.Model([inp_l, inp_g], out, name="regression_squeezenet")


_RESIZE_LAYER = None


def resize_layer():
    """``ResizeLike(factor, multiple, method)([x, ref])``: ``x`` resized to ``ref``'s height and
    width times ``factor``, rounded to multiples of ``multiple`` (at least one) - sizes known only
    when the graph runs, which Keras' own Resizing layer cannot take. ``method`` "bilinear", or
    "antialias" (bilinear with its kernel widened to the downsampling factor, TensorFlow's
    differentiable stand-in for area resampling). Registered, so checkpoints holding it load in
    safe mode."""
    global _RESIZE_LAYER
    if _RESIZE_LAYER is None:
        tf, keras = tensorflow()

        @keras.saving.register_keras_serializable(package="colorization_workbench")
        class ResizeLike(keras.layers.Layer):
            def __init__(self, factor: float, multiple: int = 1, method: str = "bilinear", **kwargs):
                super().__init__(**kwargs)
                self.factor, self.multiple, self.method = float(factor), int(multiple), str(method)

            def call(self, inputs):
                x, ref = inputs
                hw = tf.cast(tf.shape(ref)[1:3], tf.float32) * self.factor / self.multiple
                size = tf.maximum(tf.cast(tf.round(hw), tf.int32), 1) * self.multiple
                out = tf.image.resize(x, size, method="bilinear", antialias=self.method == "antialias")
                return tf.cast(out, x.dtype)

            def compute_output_shape(self, input_shapes):
                return (input_shapes[0][0], None, None, input_shapes[0][-1])

            def get_config(self):
                return {**super().get_config(), "factor": self.factor, "multiple": self.multiple, "method": self.method}

        _RESIZE_LAYER = ResizeLike
    return _RESIZE_LAYER


def squeezenet_keras_weights(path) -> dict[str, list[np.ndarray]]:
    """Layer name -> [kernel, bias] of the released Keras SqueezeNet, ``conv1`` folded to one grey
    input channel: for an input whose three channels are ``255 g - mean_c``, the response equals
    ``sum_c W_c * 255 * g + (b - sum_c mean_c * sum_k W_c)``, exact away from the zero padding."""
    from .encoders import CAFFE_MEAN_BGR, read_squeezenet_h5

    arrays = read_squeezenet_h5(path)
    out = {name.replace("/", "_"): [k, b] for name, (k, b) in arrays.items()}
    k, b = arrays["conv1"]
    mean = np.asarray(CAFFE_MEAN_BGR, np.float32)
    out["conv1"] = [255.0 * k.sum(2, keepdims=True), b - np.einsum("hwco,c->o", k, mean)]
    return out


def build_network(cfg: Config, dtype: str = "float32"):
    """``N x H x W x 1`` normalised L -> ``N x H x W x 2`` ab / AB_SCALE in (-1, 1) (tanh).

    H and W must be multiples of 2**depth (:meth:`RegressionColorizer.predict_ab` pads).
    ``encoder = "squeezenet"``: :func:`build_squeeze_network` (two inputs).
    """
    if cfg.encoder == "squeezenet":
        return build_squeeze_network(cfg, dtype)
    _, keras = tensorflow()
    from keras import layers

    seed = iter(range(cfg.seed * 1000, cfg.seed * 1000 + 1000))

    def conv(x, width, stride=1, name=""):
        x = layers.Conv2D(
            width,
            3,
            strides=stride,
            padding="same",
            use_bias=False,
            kernel_initializer=keras.initializers.HeNormal(seed=next(seed)),
            dtype=dtype,
            name=name,
        )(x)
        x = layers.BatchNormalization(momentum=0.9, dtype=dtype, name=f"{name}_bn")(x)
        return layers.ReLU(dtype=dtype, name=f"{name}_relu")(x)

    widths = [cfg.filters * 2**i for i in range(cfg.depth)]
    inp = keras.Input((None, None, 1), name="L", dtype=dtype)
    x = inp
    for i, w in enumerate(widths):  # encoder: stride-2 convolutions instead of pooling
        x = conv(x, w, stride=2, name=f"down{i + 1}")
        x = conv(x, w, name=f"down{i + 1}_conv")
    for i, w in reversed(list(enumerate(widths))):  # decoder: nearest upsampling + convolution
        x = _upsample(x, cfg.upsample, dtype, f"up{i + 1}_nearest")
        x = conv(x, max(w // 2, 8), name=f"up{i + 1}")
    out = layers.Conv2D(
        2,
        3,
        padding="same",
        activation="tanh",
        kernel_initializer=keras.initializers.GlorotUniform(seed=next(seed)),
        dtype=dtype,
        name="ab",
    )(x)
    return keras.Model(inp, out, name="regression")


# --- the method -------------------------------------------------------------------------------


class RegressionColorizer(Colorizer):
    """Encoder-decoder CNN regressing ab from L (Keras), L2 or Huber loss."""

    name: ClassVar[str] = "regression"
    method_info: ClassVar = MethodInfo(
        "regression", "CNN regressing ab directly (L2) - the baseline of the source reports (Keras)",
        paper="CNN regression of ab with an L2 loss (the baseline of Zhang et al. 2016, Sec. 3)", framework="TensorFlow / Keras",
        options=(
            keep_aspect_option("regression: keep the photo's shape (off = squashed to the working square)", "+0.003"),
        ),
    )
    checkpoint_ext: ClassVar[str] = ".keras"
    Config: ClassVar[type] = Config

    def __init__(self, config: Config | None = None, device: str = "auto"):
        self.config = config if config is not None else Config()
        self.working_size = check_working_size(self.config.working_size)
        self.device = resolve_device(device)
        self.step = 0
        tf, keras = tensorflow()
        self._tf = tf
        self._scope = tf_device(self.device)
        if self._scope.startswith("/GPU") and not tf.config.list_physical_devices("GPU"):
            warnings.warn(
                "regression: this TensorFlow build sees no GPU (tensorflow-cpu), so the Keras model runs on the CPU; "
                "for the GPU: pip install 'tensorflow[and-cuda]'",
                stacklevel=2,
            )
            self._scope, self.device = "/CPU:0", "cpu"
        self.weights_source: str | None = None
        with tf.device(self._scope):
            self.model = build_network(self.config)
            if self.config.encoder == "squeezenet" and not from_checkpoint_active():
                from .weights import resolve

                found = resolve("squeezenet", explicit=self.config.squeezenet_weights or None)
                if found.path.suffix not in (".h5", ".hdf5"):
                    raise BackendUnavailable(f"regression: the Keras encoder needs the SqueezeNet Keras HDF5 weights, found {found.path}")
                for name, ws in squeezenet_keras_weights(found.path).items():
                    self.model.get_layer(name).set_weights(ws)
                self.weights_source = f"{found.path} ({found.source})"
            self.optimizer = keras.optimizers.Adam(self.config.lr, beta_1=self.config.beta_1, beta_2=self.config.beta_2)
            self.optimizer.build(self.model.trainable_variables)
        cfg = self.config
        delta = cfg.huber_delta / color.AB_SCALE

        def objective(pred, target):
            err = pred - target
            terms = {"loss_l2": tf.reduce_mean(tf.square(err))}
            if cfg.loss == "huber":
                a = tf.abs(err)
                q = tf.minimum(a, delta)
                terms["loss_huber"] = tf.reduce_mean(0.5 * tf.square(q) + delta * (a - q))
            return terms["loss_" + cfg.loss], terms

        def step(x, y):
            with tf.GradientTape() as tape:
                pred = tf.cast(self.model(x, training=True), tf.float32)
                loss, terms = objective(pred, y)
            grads = tape.gradient(loss, self.model.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
            return {"loss": loss, **terms}

        self._train_fn = tf.function(step, reduce_retracing=True)
        self._predict_fn = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def _inputs(self, L: np.ndarray):
        """Model input(s) from ``N x H x W x 1`` L in [0, 100]: normalised L (and the grey sRGB
        image for the SqueezeNet encoder)."""
        x = self._tf.constant((L - color.L_CENTER) / color.L_SCALE)
        if self.config.encoder == "squeezenet":
            return (x, self._tf.constant(grey_srgb(L)))
        return x

    # -- the training contract -----------------------------------------------------------------
    def train(self):
        """Keras takes the mode per call (``training=``); kept for the runner's contract."""
        return self

    def eval(self):
        return self

    def lr_at(self, step: int) -> float:
        """Learning rate before the ``step``-th update (0-based): constant, or the linear decay."""
        c = self.config
        return linear_decay_lr(step, c.lr, c.decay_start, c.decay_steps)

    def train_step(self, batch: dict) -> dict[str, float]:
        """One Adam step on ``{"L": N1HW, "ab": N2HW}`` torch tensors (Lab units)."""
        L = np.asarray(batch["L"].numpy(), np.float32).transpose(0, 2, 3, 1)
        ab = np.asarray(batch["ab"].numpy(), np.float32).transpose(0, 2, 3, 1)
        m = self.config.multiple
        if L.shape[1] % m or L.shape[2] % m:
            raise ValueError(f"regression: training crops must be multiples of {m}, got {L.shape[1]} x {L.shape[2]}")
        y = ab / color.AB_SCALE
        self.optimizer.learning_rate.assign(self.lr_at(self.step))
        with self._tf.device(self._scope):
            out = self._train_fn(self._inputs(L), self._tf.constant(y))
        return {k: float(v) for k, v in out.items()}

    def predict_ab(self, L: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """``N x H x W`` L in [0, 100] -> ``N x 2 x H x W`` ab (inference mode: BatchNorm statistics)."""
        L = np.asarray(L, np.float32)
        if L.ndim != 3:
            raise ValueError(f"predict_ab expects N x H x W lightness, got shape {L.shape}")
        n, h, w = L.shape
        m = self.config.multiple
        x = np.pad(L[..., None], ((0, 0), (0, -h % m), (0, -w % m), (0, 0)), mode="edge")
        outs = []
        with self._tf.device(self._scope):
            for i in range(0, n, 16):
                outs.append(self._predict_fn(self._inputs(x[i : i + 16])).numpy())
        ab = np.concatenate(outs)[:, :h, :w].astype(np.float32) * color.AB_SCALE
        return ab.transpose(0, 3, 1, 2)

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, path: str | Path, meta: dict | None = None, training: bool = True, half: bool = False) -> Path:
        """Write a ``.keras`` checkpoint atomically. ``training`` adds the optimiser state (exact
        resume); ``half`` stores float16 weights (shipped checkpoints; they load back as float32)."""
        _, keras = tensorflow()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        model = self.model
        weights = self.model.get_weights()
        if half and any(w.size and float(np.abs(w).max()) >= 65504.0 for w in weights):
            half = False  # a value float16 cannot hold (a BatchNorm's moving variance grows past 65,504): keep float32
        if half:
            with self._tf.device("/CPU:0"):
                model = build_network(self.config, dtype="float16")
            model.set_weights([w.astype(np.float16) for w in weights])
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.keras", dir=path.parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a checkpoint is an ordinary file
        try:
            keras.saving.save_model(model, tmp)
            with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as zf:
                info = {
                    "method": self.name,
                    "config": dataclasses.asdict(self.config),
                    "step": self.step,
                    "precision": "float16" if half else "float32",
                    "meta": json.loads(json.dumps(meta or {}, default=str)),
                }
                zf.writestr(META_FILE, json.dumps(info, indent=2))
                if training:
                    store: dict = {}
                    self.optimizer.save_own_variables(store)
                    buf = io.BytesIO()
                    np.savez(buf, **store)
                    zf.writestr(OPTIMIZER_FILE, buf.getvalue())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def read_checkpoint(cls, path: str | Path) -> tuple[dict, dict[str, bytes]]:
        """(workbench info, archive entries) of a checkpoint, checked to be this method's."""
        path = Path(path)
        if not path.exists():
            raise CheckpointError(f"{path}: checkpoint not found")
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                missing = [n for n in (META_FILE, *KERAS_FILES) if n not in names]
                if missing:
                    raise CheckpointError(
                        f"{path}: not a {cls.name} checkpoint of this project (no {', '.join(missing)} in the archive)"
                    )
                for n in (META_FILE, *KERAS_FILES, OPTIMIZER_FILE):
                    if n in names and zf.getinfo(n).file_size > 2**30:
                        raise CheckpointError(f"{path}: archive entry {n} is implausibly large")
                entries = {n: zf.read(n) for n in (META_FILE, *KERAS_FILES, OPTIMIZER_FILE) if n in names}
            info = json.loads(entries[META_FILE])
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise CheckpointError(f"{path}: not a readable .keras checkpoint ({type(exc).__name__}: {str(exc)[:120]})") from None
        if not isinstance(info, dict) or info.get("method") != cls.name:
            got = info.get("method") if isinstance(info, dict) else None
            raise CheckpointError(f"{path}: checkpoint is for method {got!r}, not {cls.name!r}")
        return info, entries

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", **overrides) -> RegressionColorizer:
        """Rebuild the network from the config stored in the checkpoint, then load its weights."""
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(Config)})
        if unknown:
            raise ValueError(f"unknown option(s) for {cls.name}: {', '.join(unknown)}")
        info, entries = cls.read_checkpoint(path)
        cfg = dict(info.get("config") or {})
        cfg.update(overrides)
        try:
            config = config_from_dict(Config, cfg)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: checkpoint config does not fit {cls.name}: {exc}") from None
        with building_from_checkpoint():  # a pretrained encoder's weights are in the checkpoint
            obj = cls(config, device)
        obj._load_entries(path, info, entries, training=False)
        obj.checkpoint = Path(path)
        obj.checkpoint_meta = info.get("meta", {})
        return obj

    def load(self, path: str | Path, training: bool = True) -> dict:
        """Load weights (and, with ``training``, the optimiser state); returns the saved meta."""
        info, entries = self.read_checkpoint(path)
        self._load_entries(path, info, entries, training)
        return info.get("meta", {})

    def _load_entries(self, path, info: dict, entries: dict[str, bytes], training: bool) -> None:
        _, keras = tensorflow()
        try:
            with tempfile.TemporaryDirectory(prefix="regression-") as d:
                keras_part = Path(d) / "model.keras"  # only the Keras part goes to Keras, in safe mode
                with zipfile.ZipFile(keras_part, "w") as zf:
                    for n in KERAS_FILES:
                        zf.writestr(n, entries[n])
                with self._tf.device("/CPU:0"):
                    stored = keras.saving.load_model(keras_part, compile=False, safe_mode=True)
            # by variable path (every layer is named), so a weightless layer added to the graph -
            # e.g. the bilinear option's smoothing - cannot shift the arrays; else in graph order
            by_path = {v.path: v for v in stored.weights}
            mine = self.model.weights
            if len(by_path) == len(stored.weights) and {v.path for v in mine} == set(by_path):
                weights = [np.asarray(by_path[v.path].numpy()) for v in mine]
            else:
                weights = stored.get_weights()
            if len(weights) != len(mine) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(weights, mine)):
                raise ValueError(
                    f"{len(weights)} stored weight arrays do not match the model's {len(mine)} "
                    f"(config {info.get('config')} against {dataclasses.asdict(self.config)})"
                )
            for v, w in zip(mine, weights):
                v.assign(w.astype(v.dtype))
            if training and OPTIMIZER_FILE in entries:
                with np.load(io.BytesIO(entries[OPTIMIZER_FILE]), allow_pickle=False) as z:
                    store = {k: z[k] for k in z.files}
                slots = self.optimizer.variables
                if len(store) == len(slots) and all(store[str(i)].shape == tuple(v.shape) for i, v in enumerate(slots)):
                    self.optimizer.load_own_variables(store)
                else:  # the weights fit but the slots' order changed with the graph: Adam restarts
                    print(f"{path}: the optimiser state does not fit this graph; the weights are loaded and Adam starts afresh", file=sys.stderr)
        except (ValueError, TypeError, KeyError, OSError) as exc:
            first = (str(exc).splitlines() or [""])[0][:200]
            raise CheckpointError(
                f"{path}: checkpoint does not match the {self.name} model ({type(exc).__name__}: {first})"
            ) from None
        self.step = int(info.get("step", 0))

    def weight_arrays(self) -> dict[str, np.ndarray]:
        return {v.path: np.asarray(v.numpy()) for v in self.model.weights}

    def set_weight_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for v in self.model.weights:
            v.assign(np.asarray(arrays[v.path]).astype(v.dtype))

    @classmethod
    def availability(cls) -> tuple[bool, str, str | None]:
        if importlib.util.find_spec("tensorflow") is None:
            return False, "needs the Python package 'tensorflow'; fix: pip install -r requirements.txt", None
        return super().availability()

    def info(self) -> dict:
        return {
            **super().info(),
            "framework": "TensorFlow/Keras",
            "tf_device": self._scope,
            "parameters": int(self.model.count_params()),
            "encoder": self.config.encoder,
        }
