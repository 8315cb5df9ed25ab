"""The MNIST files: finding, checking, unpacking or downloading them, and reading a split as tensors.
Every problem is one :class:`CourseError` that names the path."""

import gzip
import os
import shutil
from functools import lru_cache
from pathlib import Path

import torch
from torchvision import datasets

from .errors import CourseError
from .paths import path_kind

REPO_DATA = Path(__file__).resolve().parent.parent / "data"
FILES = {  # name -> (magic number, items, bytes per item)
    "train-images-idx3-ubyte": (2051, 60_000, 28 * 28),
    "train-labels-idx1-ubyte": (2049, 60_000, 1),
    "t10k-images-idx3-ubyte": (2051, 10_000, 28 * 28),
    "t10k-labels-idx1-ubyte": (2049, 10_000, 1),
}


def _kind(path: Path) -> str:
    """:func:`path_kind`, but a broken link or a link loop is named as such."""
    if path.is_symlink() and not path.exists():
        return "a broken link or a link loop"
    return path_kind(path)


def check_file(path: Path) -> None:
    """Raise :class:`CourseError` unless ``path`` is a readable MNIST file of the right size and labels."""
    magic, count, item_bytes = FILES[path.name]
    expected_size = (16 if magic == 2051 else 8) + count * item_bytes
    if (kind := _kind(path)) != "a file":  # never open a pipe: it would wait forever
        raise CourseError(f"{path} is {kind}, not a file; put the MNIST file {path.name} there")
    try:
        with open(path, "rb") as f:
            head, size = f.read(8), os.fstat(f.fileno()).st_size
            labels = f.read() if magic == 2049 else b""
    except OSError as exc:
        raise CourseError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
    found = int.from_bytes(head[:4], "big") if len(head) >= 4 else None
    found_count = int.from_bytes(head[4:8], "big") if len(head) >= 8 else None
    if (found, found_count, size) != (magic, count, expected_size):
        raise CourseError(f"{path} is not a valid MNIST file (expected magic {magic}, {count} items and "
                          f"{expected_size:,} bytes; found magic {found}, {found_count} items and "
                          f"{size:,} bytes): delete it and download it again")
    if labels and max(labels) > 9:
        raise CourseError(f"{path} holds label {max(labels)}; MNIST labels are 0-9: the file is corrupt")


def _unpack_gz(raw: Path) -> None:
    """``name.gz`` beside a missing ``name``: unpack it (into a temporary file, then renamed)."""
    for name in FILES:
        packed, target, tmp = raw / f"{name}.gz", raw / name, raw / f".{name}.tmp"
        if not os.path.lexists(target) and packed.is_file():
            try:
                with gzip.open(packed) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                tmp.replace(target)
            except (OSError, EOFError, gzip.zlib.error) as exc:  # a truncated or corrupt archive, a full disk
                reason = " ".join(str(getattr(exc, "strerror", None) or exc).split())
                raise CourseError(f"cannot unpack {packed} ({reason}); replace it with a good copy, "
                                  "or unpack it yourself (gunzip)") from None
            finally:  # also after Ctrl-C
                tmp.unlink(missing_ok=True)


def _download(root: Path, raw: Path) -> None:
    """Download the four files with torchvision; a failed download leaves no file or empty folder behind."""
    created = [p for p in (root, root / "MNIST", raw) if not p.exists()]
    before = set(raw.iterdir()) if raw.is_dir() else set()
    try:
        datasets.MNIST(root, train=True, download=True)
        datasets.MNIST(root, train=False, download=True)
    except BaseException as exc:  # no network, server down, unwritable folder, Ctrl-C
        for path in (set(raw.iterdir()) if raw.is_dir() else set()) - before:
            path.unlink(missing_ok=True)  # half-downloaded archives
        for folder in reversed(created):  # leave no empty folders behind
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        if not isinstance(exc, (OSError, RuntimeError)):
            raise
        missing = ", ".join(name for name in FILES if not (raw / name).exists())
        reason = " ".join(str(exc).split())  # one line
        raise CourseError(f"MNIST files not found in {raw} (missing: {missing}) and the download failed "
                          f"({reason}). Put the four files there, or set MNIST_DATA (or --data) to a folder "
                          "that holds MNIST/raw/ with them.") from None


def ensure_mnist(root: str | Path | None = None) -> Path:
    """Make sure ``<root>/MNIST/raw`` holds the four valid files (unpacking .gz or downloading if needed).
    ``root`` defaults to ``$MNIST_DATA``, else ``data/`` at the repository root."""
    where = "" if root is not None or not os.environ.get("MNIST_DATA") else " (from $MNIST_DATA)"
    root = Path(os.environ.get("MNIST_DATA") or REPO_DATA if root is None else root).expanduser()
    raw = root / "MNIST" / "raw"
    try:
        kind = _kind(root)
        if kind != "a folder" and not (kind == "missing" and root == REPO_DATA):  # the default is downloaded
            raise CourseError(f"the data folder {root}{where} is {kind}; give the folder that holds "
                              "MNIST/raw/ (--data or $MNIST_DATA)")
        for folder in (root / "MNIST", raw):
            if (kind := _kind(folder)) not in ("a folder", "missing"):
                raise CourseError(f"{folder} is {kind}; it should be the folder holding the MNIST files")
        if raw.is_dir():
            _unpack_gz(raw)
        if not all(os.path.lexists(raw / name) for name in FILES):  # a broken link: reported, not downloaded
            _download(root, raw)
        for name in FILES:
            check_file(raw / name)
    except OSError as exc:  # a path too long, a folder we may not list
        culprit = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(root) else ""
        raise CourseError(f"cannot use the data folder {root}{where}: {exc.strerror}{culprit}") from None
    return root


@lru_cache(maxsize=4)
def _load(checked_root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    ds = datasets.MNIST(checked_root, train=train, download=False)
    return ds.data, ds.targets


def load_mnist(train: bool = True, root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as tensors: uint8 images (N, 28, 28) and int64 labels (N,). Cached per process."""
    return _load(ensure_mnist(root), train)
