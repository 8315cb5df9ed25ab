"""Writing files safely: what a path is, whether it can be written (checked before training), and a write
that never leaves a half-written file or a ``.tmp`` behind."""

import contextlib
import os
import stat
from pathlib import Path

from .errors import CourseError


def write_atomically(path: str | Path, data: str | bytes) -> Path:
    """Write a temporary file beside ``path``, then rename it: never a half-written file, no ``.tmp`` left."""
    tmp = (path := Path(path)).with_name(f".{path.name[:200]}.tmp")
    try:
        if (kind := path_kind(path)) not in ("missing", "a file"):
            raise CourseError(f"cannot write {path}: it is {kind}, not a file")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a parent that became a file, no permission
        culprit = "" if exc.filename in (None, str(tmp), str(path)) else f" ({exc.filename})"
        raise CourseError(f"cannot write {path}: {exc.strerror or exc}{culprit}") from None
    finally:  # also after Ctrl-C
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


def path_kind(path: str | Path) -> str:
    """'missing', 'a file', 'a folder' or 'a pipe, socket or device'; OSError for a link loop, say."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    kinds = {stat.S_IFREG: "a file", stat.S_IFDIR: "a folder"}
    return kinds.get(stat.S_IFMT(mode), "a pipe, socket or device")


def check_writable(path: str | Path, what: str, folder: bool = False) -> Path:
    """Fail now, before minutes of training, unless ``path`` (a file, or a ``folder``) can be written:
    :class:`CourseError` naming ``what``. Creates and removes a file there, so it holds for root too."""
    path, want = Path(path), "a folder" if folder else "a file"
    try:
        if (kind := path_kind(path)) not in ("missing", want):
            raise CourseError(f"{what} {path} is {kind}; give a {want.removeprefix('a ')} path")
        parent = path if folder else path.parent
        while path_kind(parent) == "missing" and parent != parent.parent:
            parent = parent.parent
        if (kind := path_kind(parent)) != "a folder":
            raise CourseError(f"{what} {path}: {parent} is {kind}, not a folder")
        probe = parent / f".write-check-{os.getpid()}"
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as exc:  # no permission, a read-only disk, a link loop, a name too long
        raise CourseError(f"{what} {path} cannot be written ({exc.strerror}); choose another path") from None
    return path
