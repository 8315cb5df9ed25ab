"""MNIST batches, in two pipelines that give identical tensors without augmentation: ``"device"`` (the split
as one uint8 tensor on the training device, shuffled, augmented and normalised a few thousand images at a
time) and ``"loader"`` (torchvision's ``DataLoader`` with ``transforms``, one PIL image at a time)."""

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


def mps_available() -> bool:
    """True on a Mac whose torch can use Apple's GPU."""
    return torch.backends.mps.is_available()


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA, else Apple's MPS, else CPU; a device this machine lacks is a CourseError."""
    cuda, mps = torch.cuda.is_available(), mps_available()
    if str(device) == "auto":
        device = "cuda" if cuda else "mps" if mps else "cpu"
    try:
        chosen = torch.device(device)
    except RuntimeError:
        choices = f"auto, cpu{', cuda' * cuda}{', mps' * mps}"
        raise CourseError(f"unknown device {str(device)!r}; use {choices}") from None
    if (chosen.type == "cuda" and not cuda) or (chosen.type == "mps" and not mps):
        raise CourseError(f"device {str(device)!r} asked for, but this machine has none; use auto or cpu")
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
        raise CourseError(f"device {str(device)!r} asked for, but this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s), numbered from 0")
    return chosen


class DeviceLoader:
    """Batches from uint8 images on the training device, reshuffled each pass (when ``shuffle``) by a seeded
    generator; about ``CHUNK`` images at a time are augmented and normalised, then sliced into batches."""

    CHUNK = 2048

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool,
                 augment: Augment | None = None, seed: int = 0):
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.generator = torch.Generator(device=images.device).manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, bs, device = len(self.labels), self.batch_size, self.images.device
        order = torch.randperm(n, device=device, generator=self.generator) if self.shuffle else None
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
    """One run's batches: ``train`` (shuffled, augmented), ``train_eval`` (a fixed subset of the training
    images, in order, never augmented), ``val`` and ``test`` (None when left out), and their device."""

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
        steps.append(transforms.RandomAffine(augment.degrees, (augment.translate,) * 2, scale=scale))
        if augment.jitter:
            steps.append(transforms.ColorJitter(brightness=augment.jitter, contrast=augment.jitter))
    return transforms.Compose([*steps, transforms.ToTensor(),
                               transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])


def split_indices(val_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted positions in the training file of the (training, validation) images: the same ``val_size``
    images are held out in every run, whatever its seed."""
    n = FILES["train-labels-idx1-ubyte"][1]
    if not 0 <= val_size < n:
        raise ValueError(f"val_size must be between 0 and {n - 1}, not {val_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return order[val_size:].sort().values, order[:val_size].sort().values


def _subset(indices: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """A fixed random subset of ``size`` of ``indices``, in order (same seed → same images); None: all."""
    if size is None or size >= len(indices):
        return indices
    if size < 1:
        raise ValueError(f"a subset needs at least 1 image, not {size}")
    pick = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))[:size]
    return indices[pick.sort().values]


def load_split(split: str, val_size: int = VAL_SIZE,
               root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and labels of ``"train"`` (without the validation images), ``"val"`` or ``"test"``."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', not {split!r}")
    images, labels = load_mnist(train=split != "test", root=root)
    if split == "test":
        return images, labels
    idx = split_indices(val_size)[split == "val"]
    return images[idx], labels[idx]


def get_data(batch_size: int = 128, test_batch_size: int = 1000, augment: Augment | None = None,
             pipeline: str = "device", device: str | torch.device = "auto", train_size: int | None = None,
             test_size: int | None = None, val_size: int = 0, test: bool = True, seed: int = 0,
             root: str | Path | None = None) -> MNISTData:
    """Batches of MNIST. ``val_size`` holds out that many training images (always the same) as a validation
    split; ``test=False`` leaves the test set out; ``train_size``/``test_size`` take a fixed seeded subset
    (None: all). ``augment`` applies to the training batches only."""
    if pipeline not in ("device", "loader"):
        raise ValueError(f"pipeline must be 'device' or 'loader', not {pipeline!r}")
    if batch_size < 1 or test_batch_size < 1:
        raise ValueError(f"batch sizes must be at least 1, not {batch_size} and {test_batch_size}")
    train_idx, val_idx = split_indices(val_size)
    device, root = pick_device(device), ensure_mnist(root)
    train_idx = _subset(train_idx, train_size, seed)
    test_idx = _subset(torch.arange(FILES["t10k-labels-idx1-ubyte"][1]), test_size, seed)

    def batches(train_file: bool, idx: torch.Tensor, size: int, shuffle: bool = False,
                aug: Augment | None = None, loader_seed: int = seed) -> DeviceLoader | DataLoader:
        if pipeline == "device":
            images, labels = (tensor[idx].to(device) for tensor in _load(root, train_file))
            return DeviceLoader(images, labels, size, shuffle, aug, loader_seed)
        ds = datasets.MNIST(root, train=train_file, download=False, transform=classic_transforms(aug))
        return DataLoader(Subset(ds, idx.tolist()), size, shuffle=shuffle, pin_memory=device.type == "cuda",
                          generator=torch.Generator().manual_seed(loader_seed))

    return MNISTData(
        train=batches(True, train_idx, batch_size, shuffle=True, aug=augment),
        train_eval=batches(True, _subset(train_idx, TRAIN_EVAL_SIZE, SPLIT_SEED), test_batch_size),
        val=batches(True, val_idx, test_batch_size) if val_size else None,
        test=batches(False, test_idx, test_batch_size, loader_seed=seed + 1) if test else None,
        device=device, pipeline=pipeline, train_images=len(train_idx), val_images=val_size,
        test_images=len(test_idx) if test else 0)
