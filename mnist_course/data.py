"""MNIST for the course: where the files live, checking them, normalising, and two ways to batch.

Two pipelines sit behind one function, :func:`get_data`:

* ``pipeline="loader"`` — the classic ``torchvision`` ``DataLoader`` with ``transforms`` that every
  tutorial uses (PIL images, one image at a time in Python);
* ``pipeline="device"`` (the default) — the whole split as one ``uint8`` tensor on the training device,
  normalised on the fly, reshuffled each epoch by a seeded generator, augmented a few thousand images
  per call.

Without augmentation both give identical tensors for the same images.
"""

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from . import smoke
from .augment import Augment, random_affine
from .errors import CorruptDataError, CourseError, DataNotFoundError

MNIST_MEAN = 0.1307  # checked against compute_mean_std() by tests/test_data.py
MNIST_STD = 0.3081
REPO_DATA = Path(__file__).resolve().parent.parent / "data"

# name -> (magic number, item count, bytes per item after the header)
FILES = {
    "train-images-idx3-ubyte": (2051, 60_000, 28 * 28),
    "train-labels-idx1-ubyte": (2049, 60_000, 1),
    "t10k-images-idx3-ubyte": (2051, 10_000, 28 * 28),
    "t10k-labels-idx1-ubyte": (2049, 10_000, 1),
}


def resolve_root(root: str | Path | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$MNIST_DATA``, else ``data/`` at the repository root."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("MNIST_DATA"):
        return Path(os.environ["MNIST_DATA"]).expanduser()
    return REPO_DATA


def check_file(path: Path) -> None:
    """Raise :class:`CorruptDataError` unless ``path`` has the MNIST magic number, count and size."""
    magic, count, item_bytes = FILES[path.name]
    header = 16 if magic == 2051 else 8
    with open(path, "rb") as f:
        head = f.read(8)
    expected_size = header + count * item_bytes
    found = int.from_bytes(head[:4], "big") if len(head) >= 4 else None
    found_count = int.from_bytes(head[4:8], "big") if len(head) >= 8 else None
    size = path.stat().st_size
    if found != magic or found_count != count or size != expected_size:
        raise CorruptDataError(
            f"{path} is not a valid MNIST file (expected magic {magic}, {count} items and "
            f"{expected_size:,} bytes; found magic {found}, {found_count} items and {size:,} bytes): "
            f"delete it and download it again"
        )


def ensure_mnist(root: str | Path | None = None) -> Path:
    """Make sure the four raw files are in ``<root>/MNIST/raw`` (downloading them if needed) and valid."""
    root = resolve_root(root)
    raw = root / "MNIST" / "raw"
    if not all((raw / name).exists() for name in FILES):
        try:
            datasets.MNIST(root, train=True, download=True)
            datasets.MNIST(root, train=False, download=True)
        except (OSError, RuntimeError) as exc:  # no network, server down, unwritable folder
            missing = ", ".join(name for name in FILES if not (raw / name).exists())
            raise DataNotFoundError(
                f"MNIST files not found in {raw} (missing: {missing}) and the download failed "
                f"({type(exc).__name__}). Put the four files there, or set MNIST_DATA to a folder "
                f"that holds MNIST/raw/ with them."
            ) from None
    for name in FILES:
        check_file(raw / name)
    return root


@lru_cache(maxsize=4)
def _load(checked_root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    ds = datasets.MNIST(checked_root, train=train, download=False)
    return ds.data, ds.targets


def load_mnist(train: bool = True, root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as tensors: uint8 images (N, 28, 28) and int64 labels (N,). Cached per process."""
    return _load(ensure_mnist(root), train)


def compute_mean_std(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of uint8 images scaled to [0, 1] — the numbers ``Normalize`` needs."""
    x = images.double() / 255
    return x.mean().item(), x.std().item()


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) or float in [0, 1] (N, 1, 28, 28) → normalised float32 (N, 1, 28, 28)."""
    x = images.float().div(255) if images.dtype == torch.uint8 else images.float()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return x.sub(MNIST_MEAN).div(MNIST_STD)


def subset_indices(n_total: int, size: int | None, seed: int = 0) -> torch.Tensor | None:
    """A fixed random subset of ``size`` indices (same seed → same images), or None for all."""
    if size is None or size >= n_total:
        return None
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:size].sort().values


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA if present, then Apple's MPS, then CPU; anything else is passed through."""
    if str(device) != "auto":
        try:
            chosen = torch.device(device)
        except RuntimeError:
            raise CourseError(f"unknown device {str(device)!r}; use auto, cpu, cuda or mps") from None
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise CourseError("device 'cuda' asked for, but this machine has no CUDA GPU; use --device auto")
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class DeviceLoader:
    """Batches from a uint8 image tensor that lives on the training device.

    Each pass reshuffles (when ``shuffle``) with its own seeded generator, so the order of epoch k is
    the same in every run with the same seed. Images are prepared (gathered, scaled, augmented,
    normalised) about ``CHUNK`` at a time, and each batch is a slice of a prepared chunk: a GPU runs a
    few large kernels instead of a dozen small ones per batch, and on a CPU a chunk stays in the cache.
    """

    CHUNK = 2048  # images prepared per call (rounded to whole batches)

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool,
                 augment: Augment | None = None, seed: int = 0):
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.generator = torch.Generator(device=images.device).manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (N, 28, 28) → normalised float (N, 1, 28, 28), augmented if asked."""
        x = images.unsqueeze(1).float().div_(255)
        if self.augment is not None:
            x = random_affine(x, self.augment, self.generator)
        return x.sub_(MNIST_MEAN).div_(MNIST_STD)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, bs = len(self.labels), self.batch_size
        order = torch.randperm(n, device=self.images.device, generator=self.generator) if self.shuffle else None
        per_chunk = max(1, self.CHUNK // bs) * bs
        for start in range(0, n, per_chunk):
            idx = slice(start, start + per_chunk) if order is None else order[start:start + per_chunk]
            x, y = self._prepare(self.images[idx]), self.labels[idx]
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
    steps = []
    if augment is not None:
        steps.append(transforms.RandomAffine(augment.degrees, translate=(augment.translate,) * 2))
    steps += [transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]
    return transforms.Compose(steps)


def get_data(batch_size: int = 128, test_batch_size: int = 1000, augment: Augment | None = None,
             pipeline: str = "device", device: str | torch.device = "auto",
             train_size: int | None = None, test_size: int | None = None, seed: int = 0,
             root: str | Path | None = None, num_workers: int = 0) -> MNISTData:
    """Train and test batches of MNIST. ``train_size``/``test_size`` take a fixed seeded subset.

    ``augment`` (random rotation and translation) applies to the training split only. In smoke mode
    (``MNIST_COURSE_SMOKE=1``) the subsets are capped at 2,000 / 1,000 images.
    """
    if pipeline not in ("device", "loader"):
        raise ValueError(f"pipeline must be 'device' or 'loader', not {pipeline!r}")
    train_size = smoke.cap(train_size, smoke.SMOKE_TRAIN_SIZE)
    test_size = smoke.cap(test_size, smoke.SMOKE_TEST_SIZE)
    device = pick_device(device)
    root = ensure_mnist(root)
    splits, sizes = {}, {}
    for train, size, bs in ((True, train_size, batch_size), (False, test_size, test_batch_size)):
        n_total = FILES["train-labels-idx1-ubyte" if train else "t10k-labels-idx1-ubyte"][1]
        idx = subset_indices(n_total, size, seed)
        aug = augment if train else None
        if pipeline == "device":
            images, labels = _load(root, train)  # root was checked above
            if idx is not None:
                images, labels = images[idx], labels[idx]
            splits[train] = DeviceLoader(images.to(device), labels.to(device), bs, shuffle=train,
                                         augment=aug, seed=seed + (0 if train else 1))
        else:
            ds = datasets.MNIST(root, train=train, download=False, transform=classic_transforms(aug))
            if idx is not None:
                ds = Subset(ds, idx.tolist())
            splits[train] = DataLoader(ds, batch_size=bs, shuffle=train, num_workers=num_workers,
                                       generator=torch.Generator().manual_seed(seed),
                                       pin_memory=device.type == "cuda")
        sizes[train] = n_total if idx is None else len(idx)
    return MNISTData(train=splits[True], test=splits[False], device=device, pipeline=pipeline,
                     train_images=sizes[True], test_images=sizes[False])
