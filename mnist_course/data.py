"""MNIST batches: normalising, and two ways to batch (the files themselves: :mod:`.mnist_files`).

* ``pipeline="loader"``: the classic torchvision ``DataLoader`` with ``transforms`` (one PIL image at a time);
* ``pipeline="device"`` (default): the split as one ``uint8`` tensor on the training device, reshuffled
  each epoch by a seeded generator, augmented and normalised a few thousand images per call.

Without augmentation both give identical tensors for the same images.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from .augment import Augment, random_affine
from .errors import CourseError
from .mnist_files import FILES, _load, ensure_mnist

MNIST_MEAN = 0.1307  # the training pixels' mean and std, checked by tests/test_data.py
MNIST_STD = 0.3081


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) or floats in [0, 1] → normalised float32 (N, 1, 28, 28)."""
    x = images.float().div(255) if images.dtype == torch.uint8 else images.float()
    x = x.reshape(-1, 1, *x.shape[-2:]) if x.dim() != 4 else x
    return x.sub(MNIST_MEAN).div(MNIST_STD)


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """What a model takes: uint8 images are normalised; float images are taken as normalised already."""
    return normalize(images) if images.dtype == torch.uint8 else images.reshape(-1, 1, *images.shape[-2:])


def compute_mean_std(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of uint8 images scaled to [0, 1]: the numbers ``Normalize`` needs."""
    x = images.double() / 255
    return x.mean().item(), x.std().item()


def subset_indices(n_total: int, size: int | None, seed: int = 0) -> torch.Tensor | None:
    """A fixed random subset of ``size`` indices (same seed → same images), or None for all."""
    if size is None or size >= n_total:
        return None
    if size < 1:
        raise ValueError(f"a subset needs at least 1 image, not {size}")
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:size].sort().values


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA if present, then Apple's MPS, then CPU; a device this machine lacks is an error."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise CourseError(f"unknown device {str(device)!r}; use auto, cpu{', cuda' * torch.cuda.is_available()}"
                          f"{', mps' * mps_available()}") from None
    if (chosen.type == "cuda" and not torch.cuda.is_available()) or (chosen.type == "mps" and not mps_available()):
        raise CourseError(f"device {str(device)!r} asked for, but this machine has none; use auto or cpu")
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
        raise CourseError(f"device {str(device)!r} asked for, but this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s), numbered from 0")
    return chosen


def mps_available() -> bool:
    """True on a Mac whose torch can use Apple's GPU."""
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


class DeviceLoader:
    """Batches from a uint8 image tensor that lives on the training device.

    Each pass reshuffles (when ``shuffle``) with its own seeded generator, so epoch k has the same order in
    every run with the same seed. Images are prepared about ``CHUNK`` at a time and batches are slices of
    a prepared chunk: a few large kernels instead of a dozen small ones per batch.
    """

    CHUNK = 2048

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool,
                 augment: Augment | None = None, seed: int = 0):
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.generator = torch.Generator(device=images.device).manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, bs = len(self.labels), self.batch_size
        order = torch.randperm(n, device=self.images.device, generator=self.generator) if self.shuffle else None
        per_chunk = max(1, self.CHUNK // bs) * bs
        for start in range(0, n, per_chunk):
            idx = slice(start, start + per_chunk) if order is None else order[start:start + per_chunk]
            x = self.images[idx].unsqueeze(1).float().div_(255)
            if self.augment is not None:
                x = random_affine(x, self.augment, self.generator)
            x, y = normalize(x), self.labels[idx]
            for b in range(0, len(y), bs):
                yield x[b:b + bs], y[b:b + bs]


@dataclass
class MNISTData:
    """The train and test batches of one run, and the device they are meant for."""

    train: DeviceLoader | DataLoader
    test: DeviceLoader | DataLoader
    device: torch.device
    pipeline: str
    train_images: int
    test_images: int


def classic_transforms(augment: Augment | None = None) -> transforms.Compose:
    """The torchvision transform chain learners know, with the same augmentation as the device path."""
    steps = [transforms.RandomAffine(augment.degrees, translate=(augment.translate,) * 2)] if augment else []
    return transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])


def get_data(batch_size: int = 128, test_batch_size: int = 1000, augment: Augment | None = None,
             pipeline: str = "device", device: str | torch.device = "auto", train_size: int | None = None,
             test_size: int | None = None, seed: int = 0, root: str | Path | None = None) -> MNISTData:
    """Train and test batches of MNIST; ``train_size``/``test_size`` take a fixed seeded subset (None: all).

    ``augment`` (random rotation and translation) applies to the training split only.
    """
    if pipeline not in ("device", "loader"):
        raise ValueError(f"pipeline must be 'device' or 'loader', not {pipeline!r}")
    if batch_size < 1 or test_batch_size < 1:
        raise ValueError(f"batch sizes must be at least 1, not {batch_size} and {test_batch_size}")
    device, root = pick_device(device), ensure_mnist(root)
    splits, sizes = {}, {}
    for train, size, bs in ((True, train_size, batch_size), (False, test_size, test_batch_size)):
        n_total = FILES["train-labels-idx1-ubyte" if train else "t10k-labels-idx1-ubyte"][1]
        idx = subset_indices(n_total, size, seed)
        aug = augment if train else None
        if pipeline == "device":
            images, labels = _load(root, train)
            if idx is not None:
                images, labels = images[idx], labels[idx]
            splits[train] = DeviceLoader(images.to(device), labels.to(device), bs, shuffle=train,
                                         augment=aug, seed=seed + (0 if train else 1))
        else:
            ds = datasets.MNIST(root, train=train, download=False, transform=classic_transforms(aug))
            ds = ds if idx is None else Subset(ds, idx.tolist())
            splits[train] = DataLoader(ds, batch_size=bs, shuffle=train, generator=torch.Generator().manual_seed(seed),
                                       pin_memory=device.type == "cuda")
        sizes[train] = n_total if idx is None else len(idx)
    return MNISTData(train=splits[True], test=splits[False], device=device, pipeline=pipeline,
                     train_images=sizes[True], test_images=sizes[False])
