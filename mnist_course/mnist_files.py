"""The MNIST files: where they live, checking them (size, magic number, labels), unpacking ``.gz`` files or
downloading them, and reading a split as tensors. Every problem is one :class:`CourseError` naming the path."""

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


def resolve_root(root: str | Path | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$MNIST_DATA``, else ``data/`` at the repository root."""
    if root is None:
        root = os.environ.get("MNIST_DATA") or REPO_DATA
    return Path(root).expanduser()


def _not_a(path: Path, kind: str) -> str:
    """What ``path`` is instead of a ``kind`` ("file" or "folder"), or '' if it is one."""
    if path.is_symlink() and not path.exists():
        return "a broken link or a link loop"
    found = path_kind(path)
    return "" if found == f"a {kind}" else found


def check_file(path: Path) -> None:
    """Raise :class:`CourseError` unless ``path`` is a readable MNIST file of the right size and labels."""
    magic, count, item_bytes = FILES[path.name]
    header = 16 if magic == 2051 else 8
    if problem := _not_a(path, "file"):  # never open a pipe: it would wait forever
        raise CourseError(f"{path} is {problem}, not a file; put the MNIST file {path.name} there")
    try:
        with open(path, "rb") as f:
            head, size = f.read(8), os.fstat(f.fileno()).st_size
            labels = f.read() if magic == 2049 else b""
    except OSError as exc:
        raise CourseError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
    found = int.from_bytes(head[:4], "big") if len(head) >= 4 else None
    found_count = int.from_bytes(head[4:8], "big") if len(head) >= 8 else None
    if found != magic or found_count != count or size != header + count * item_bytes:
        raise CourseError(f"{path} is not a valid MNIST file (expected magic {magic}, {count} items and "
                          f"{header + count * item_bytes:,} bytes; found magic {found}, {found_count} items and "
                          f"{size:,} bytes): delete it and download it again")
    if labels and max(labels) > 9:
        raise CourseError(f"{path} holds label {max(labels)}; MNIST labels are 0-9: the file is corrupt")


def _unpack_gz(raw: Path) -> None:
    """``name.gz`` beside a missing ``name``: unpack it (into a temporary file, then renamed)."""
    for name in FILES:
        packed, target = raw / f"{name}.gz", raw / name
        if not os.path.lexists(target) and packed.is_file():
            tmp = raw / f".{name}.tmp"
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
    """Make sure ``<root>/MNIST/raw`` holds the four valid files (unpacking .gz or downloading if needed)."""
    where = "" if root is not None or not os.environ.get("MNIST_DATA") else " (from $MNIST_DATA)"
    root = resolve_root(root)
    raw = root / "MNIST" / "raw"
    try:
        problem = _not_a(root, "folder")
        if problem and not (problem == "missing" and root == REPO_DATA):  # the default is downloaded into
            raise CourseError(f"the data folder {root}{where} is {problem}; give the folder that holds "
                              "MNIST/raw/ (--data or $MNIST_DATA)")
        for folder in (root / "MNIST", raw):
            if (problem := _not_a(folder, "folder")) not in ("", "missing"):
                raise CourseError(f"{folder} is {problem}; it should be the folder holding the MNIST files")
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
