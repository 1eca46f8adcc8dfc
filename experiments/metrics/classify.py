"""Semantic metrics: does a classifier still recognise the colorized photo?

* ``top1_resnet50`` - Zhang et al.'s "semantic interpretability" test with an ImageNet ResNet-50
  (torchvision IMAGENET1K_V1, resolver ``resnet50``): top-1 accuracy on photos whose folder is an
  ImageNet class (the ten Imagenette classes of ../shared/data, by name or WordNet id). Photos of
  other folders are left out (empty cells).
* ``ncm_squeeze`` - the offline SUBSTITUTE, named as such: a nearest-class-mean classifier on the
  pooled features of the genuine SqueezeNet 1.1 (cosine similarity to each class's mean feature),
  fitted on ground-truth colour photos of a training folder (default ../shared/data/train) and
  scoring photos by their folder label. It measures whether colorized photos keep the semantics a
  fixed ImageNet network sees in colour photos; it is not ImageNet top-1.

Both return per-image 0/1 (correct) or NaN (label unknown to the classifier); the mean is the
accuracy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from backends.weights import resolve

from ._common import check_single

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Imagenette folder names and WordNet ids -> ImageNet-1k class index.
IMAGENET_CLASSES = {
    "tench": 0, "english_springer": 217, "cassette_player": 482, "chain_saw": 491, "church": 497,
    "french_horn": 566, "garbage_truck": 569, "gas_pump": 571, "golf_ball": 574, "parachute": 701,
    "n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491, "n03028079": 497,
    "n03394916": 566, "n03417042": 569, "n03425413": 571, "n03445777": 574, "n03888605": 701,
}  # fmt: skip


class ResNet50Top1:
    column = "top1_resnet50"
    label = "top-1 acc. (ImageNet ResNet-50)"

    def __init__(self, device: str = "cpu"):
        import torchvision

        found = resolve("resnet50")
        self.model = torchvision.models.resnet50(weights=None)
        self.model.load_state_dict(torch.load(found.path, map_location="cpu", weights_only=True))
        self.model.eval().to(device)
        self.device = device
        self.source = f"{found.path} ({found.source})"

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, labels: list[str], data_range: float = 1.0) -> np.ndarray:
        check_single(x, data_range, name=self.column)
        x = x.float().to(self.device) / data_range
        x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False, antialias=True)[:, :, 16:240, 16:240]
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        pred = self.model((x - mean) / std).argmax(1).cpu().numpy()
        target = np.array([IMAGENET_CLASSES.get(lab.lower(), -1) for lab in labels])
        return np.where(target >= 0, (pred == target).astype(float), np.nan)


class NearestClassMean:
    column = "ncm_squeeze"
    label = "NCM acc. (SqueezeNet-1.1 features; substitute, not ImageNet top-1)"

    def __init__(self, squeeze, classes: list[str], means: np.ndarray, device: str = "cpu"):
        self.sq = squeeze
        self.classes = list(classes)
        self.means = torch.as_tensor(means, dtype=torch.float32, device=device)
        self.device = device
        self.source = squeeze.source

    @classmethod
    def fit(cls, train_dir: str | Path, size: int, per_class: int = 50, device: str = "cpu", cache_dir: Path | None = None,
            progress: bool = False) -> NearestClassMean:  # fmt: skip
        """Class means of the training photos' pooled features (cached under ``cache_dir``)."""
        from experiments.data import scan_folder

        from .squeezenet import load_squeezenet

        sq = load_squeezenet(device)
        samples, classes = scan_folder(train_dir, limit_per_class=per_class)
        samples = [s for s in samples if s.label >= 0]
        if not classes or not samples:
            raise ValueError(f"{train_dir}: no class folders to fit the nearest-class-mean classifier")
        key = hashlib.sha1(f"{sq.source}|{Path(train_dir).resolve()}|{per_class}|{size}|{len(samples)}".encode()).hexdigest()[:16]
        cache = Path(cache_dir) / f"ncm-{key}.npz" if cache_dir else None
        if cache and cache.exists():
            z = np.load(cache, allow_pickle=False)
            return cls(sq, [str(c) for c in z["classes"]], z["means"], device)
        from tqdm import tqdm

        from experiments.evaluate import load_truth

        sums = np.zeros((len(classes), 512))
        counts = np.zeros(len(classes))
        batch = 32
        for i in tqdm(range(0, len(samples), batch), desc="fit NCM classifier", unit="batch", disable=not progress):
            chunk = samples[i : i + batch]
            imgs = [load_truth(s.path, size) for s in chunk]
            x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float().div(255).to(device)
            with torch.no_grad():
                f = F.normalize(sq.pooled(x), dim=1).cpu().numpy()
            for s, v in zip(chunk, f):
                sums[s.label] += v
                counts[s.label] += 1
        means = sums / np.maximum(counts, 1)[:, None]
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, classes=np.array(classes), means=means)
        return cls(sq, classes, means, device)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, labels: list[str], data_range: float = 1.0) -> np.ndarray:
        check_single(x, data_range, name=self.column)
        f = F.normalize(self.sq.pooled(x.float().to(self.device) / data_range), dim=1)
        pred = (f @ F.normalize(self.means, dim=1).T).argmax(1).cpu().numpy()
        index = {c: i for i, c in enumerate(self.classes)}
        target = np.array([index.get(lab, -1) for lab in labels])
        return np.where(target >= 0, (pred == target).astype(float), np.nan)
