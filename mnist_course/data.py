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
from .mnist_files import FILES, _load, ensure_mnist, load_mnist

MNIST_MEAN = 0.1307  # the training pixels' mean and std, checked by tests/test_data.py
MNIST_STD = 0.3081
VAL_SIZE = 5_000  # the course's validation split: 5,000 of the 60,000 training images, held out for choices
TRAIN_EVAL_SIZE = 5_000  # training images measured in eval mode after each epoch
SPLIT_SEED = 2024  # fixed: the same validation images and the same training subset in every run


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
    """The batches of one run, and the device they are meant for.

    ``train`` is shuffled and augmented; ``train_eval`` is a fixed subset of the same training images, in
    order and never augmented, to measure training accuracy in eval mode; ``val`` is the validation split
    (None without one) and ``test`` the test set (None when the run must not touch it).
    """

    train: DeviceLoader | DataLoader
    train_eval: DeviceLoader | DataLoader
    val: DeviceLoader | DataLoader | None
    test: DeviceLoader | DataLoader | None
    device: torch.device
    pipeline: str
    train_images: int
    val_images: int
    test_images: int


def classic_transforms(augment: Augment | None = None) -> transforms.Compose:
    """The torchvision transform chain learners know, with the same augmentation as the device path."""
    steps = []
    if augment:
        scale = (1 - augment.scale, 1 + augment.scale) if augment.scale else None
        steps.append(transforms.RandomAffine(augment.degrees, translate=(augment.translate,) * 2, scale=scale))
        if augment.jitter:
            steps.append(transforms.ColorJitter(brightness=augment.jitter, contrast=augment.jitter))
    return transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])


def split_indices(val_size: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Indices into the training file of (training, validation) images: the same ``val_size`` images are
    held out in every run, whatever its seed (None, None: no validation split)."""
    n = FILES["train-labels-idx1-ubyte"][1]
    if val_size == 0:
        return None, None
    if not 0 < val_size < n:
        raise ValueError(f"val_size must be between 0 and {n - 1}, not {val_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return order[val_size:].sort().values, order[:val_size].sort().values


def load_split(split: str, val_size: int = VAL_SIZE, root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and labels of ``"train"`` (without the validation images), ``"val"`` or ``"test"``."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', not {split!r}")
    images, labels = load_mnist(train=split != "test", root=root)
    idx = None if split == "test" else split_indices(val_size)[split == "val"]
    return (images, labels) if idx is None else (images[idx], labels[idx])


def get_data(batch_size: int = 128, test_batch_size: int = 1000, augment: Augment | None = None,
             pipeline: str = "device", device: str | torch.device = "auto", train_size: int | None = None,
             test_size: int | None = None, val_size: int = 0, test: bool = True, seed: int = 0,
             root: str | Path | None = None) -> MNISTData:
    """Batches of MNIST. ``val_size`` holds out that many training images (always the same ones) as a
    validation split; ``test=False`` leaves the test set out; ``train_size``/``test_size`` take a fixed
    seeded subset (None: all). ``augment`` applies to the training batches only.
    """
    if pipeline not in ("device", "loader"):
        raise ValueError(f"pipeline must be 'device' or 'loader', not {pipeline!r}")
    if batch_size < 1 or test_batch_size < 1:
        raise ValueError(f"batch sizes must be at least 1, not {batch_size} and {test_batch_size}")
    train_idx, val_idx = split_indices(val_size)
    device, root = pick_device(device), ensure_mnist(root)
    n_train = FILES["train-labels-idx1-ubyte"][1] - val_size
    if (pick := subset_indices(n_train, train_size, seed)) is not None:
        train_idx = pick if train_idx is None else train_idx[pick]
    n_train = n_train if pick is None else len(pick)
    eval_pick = subset_indices(n_train, TRAIN_EVAL_SIZE, SPLIT_SEED)
    eval_idx = train_idx if eval_pick is None else eval_pick if train_idx is None else train_idx[eval_pick]
    n_test = FILES["t10k-labels-idx1-ubyte"][1]
    test_idx = subset_indices(n_test, test_size, seed)

    def batches(train_file: bool, idx: torch.Tensor | None, bs: int, shuffle: bool, aug: Augment | None,
                loader_seed: int) -> DeviceLoader | DataLoader:
        if pipeline == "device":
            images, labels = _load(root, train_file)
            if idx is not None:
                images, labels = images[idx], labels[idx]
            return DeviceLoader(images.to(device), labels.to(device), bs, shuffle, aug, loader_seed)
        ds = datasets.MNIST(root, train=train_file, download=False, transform=classic_transforms(aug))
        return DataLoader(ds if idx is None else Subset(ds, idx.tolist()), batch_size=bs, shuffle=shuffle,
                          generator=torch.Generator().manual_seed(loader_seed), pin_memory=device.type == "cuda")

    return MNISTData(
        train=batches(True, train_idx, batch_size, True, augment, seed),
        train_eval=batches(True, eval_idx, test_batch_size, False, None, seed),
        val=batches(True, val_idx, test_batch_size, False, None, seed) if val_size else None,
        test=batches(False, test_idx, test_batch_size, False, None, seed + 1) if test else None,
        device=device, pipeline=pipeline, train_images=n_train, val_images=val_size,
        test_images=(n_test if test_idx is None else len(test_idx)) if test else 0)
