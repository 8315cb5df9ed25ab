"""Files the course reads and writes: History JSON, checkpoints, atomic writes, output-path checks."""

import errno
import json
import os
import pathlib
import pickle

import pytest
import torch

from mnist_course.errors import CourseError
from mnist_course.history import History
from mnist_course.paths import check_writable, path_kind, write_atomically
from mnist_course.registry import get_model
from mnist_course.train import load_checkpoint, save_checkpoint


class Evil:
    """Pickles as a call: what ``weights_only=True`` must refuse to run."""

    def __reduce__(self):
        return (os.getcwd, ())


def leftovers(folder: pathlib.Path) -> list[str]:
    """Temporary or probe files left in ``folder`` (there must be none)."""
    return [p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or ".write-check-" in p.name]


@pytest.mark.parametrize("content, fragment", [
    (b"{", "not JSON"),
    (b"", "not JSON"),
    (bytes(range(256)), "not JSON"),
    (b"[" * 100_000, "not JSON"),
    (b"[1, 2]", "expected an object"),
    (json.dumps({"test_acc": "abc"}).encode(), "test_acc must be a list of numbers"),
    (json.dumps({"test_acc": [True]}).encode(), "test_acc must be a list of numbers"),
    (json.dumps({"test_acc": [99.0], "train_acc": []}).encode(), "different lengths"),
    (json.dumps({"meta": 3}).encode(), "meta"),
    (json.dumps({"interrupted": "no"}).encode(), "interrupted"),
    (json.dumps({"accuracy": [1]}).encode(), "unknown field(s) accuracy"),
], ids=["malformed", "empty", "binary", "nested", "list", "abc-accuracies", "bool-accuracy", "lengths",
        "meta", "interrupted", "unknown-field"])
def test_history_load_rejects_bad_json_naming_the_file(tmp_path, content, fragment):
    path = tmp_path / "run.json"
    path.write_bytes(content)
    with pytest.raises(CourseError, match="run.json") as info:
        History.load(path)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("make", ["missing", "folder"])
def test_history_load_unreadable_path(tmp_path, make):
    path = tmp_path / "run.json"
    if make == "folder":
        path.mkdir()
    with pytest.raises(CourseError, match=f"cannot read {path}"):
        History.load(path)


def test_history_round_trip_keeps_interrupted(tmp_path):
    h = History(name="gap", interrupted=True, meta={"epochs": 3})
    h.add(train_loss=0.5, train_acc=80.0, test_loss=0.4, test_acc=85.0, lr=0.01, seconds=1.0)
    loaded = History.load(h.save(tmp_path / "sub" / "h.json"))
    assert loaded == h and not loaded.finished and loaded.epochs == 1
    assert leftovers(tmp_path) == []


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ckpt") / "gap.pt"
    save_checkpoint(get_model("gap"), path)
    return path.read_bytes()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", ["truncated", "empty",
                                  "junk", "pickled-object", "plain-pickle", "other-model",
                                  "folder"])
def test_load_checkpoint_rejects_bad_files_naming_them(tmp_path, checkpoint_bytes, kind):
    path = tmp_path / f"{kind}.pt"
    if kind == "truncated":
        path.write_bytes(checkpoint_bytes[: len(checkpoint_bytes) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "junk":
        path.write_bytes(b"not a checkpoint at all\n" * 10)
    elif kind == "pickled-object":
        torch.save({"weight": Evil()}, path)
    elif kind == "plain-pickle":
        path.write_bytes(pickle.dumps(Evil()))
    elif kind == "other-model":
        torch.save(get_model("baseline").state_dict(), path)
    else:
        path.mkdir()
    with pytest.raises(CourseError) as info:
        load_checkpoint(get_model("gap"), path)
    message = str(info.value)
    assert str(path) in message and "weights_only" not in message and "\n" not in message


def test_load_checkpoint_missing_file(tmp_path):
    with pytest.raises(CourseError, match="does not exist"):
        load_checkpoint(get_model("gap"), tmp_path / "nope.pt")


def test_write_atomically_full_disk_leaves_old_file_and_no_tmp(tmp_path, monkeypatch):
    path = tmp_path / "h.json"
    path.write_text("old")

    def half_then_full(self, data):
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(pathlib.Path, "write_bytes", half_then_full)
    with pytest.raises(CourseError, match="cannot write .*h.json: No space left on device"):
        write_atomically(path, "new" * 1000)
    assert path.read_text() == "old" and leftovers(tmp_path) == []


def test_write_atomically_ctrl_c_leaves_no_tmp(tmp_path, monkeypatch):
    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "h.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_write_atomically_recreates_a_vanished_folder_and_refuses_a_parent_file(tmp_path):
    folder = tmp_path / "out"
    assert write_atomically(folder / "h.json", "{}").read_text() == "{}"
    (folder / "h.json").unlink()
    folder.rmdir()  # the folder vanished during training: it is made again
    assert write_atomically(folder / "h.json", "{}").read_text() == "{}"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    with pytest.raises(CourseError, match="cannot write .*blocked/h.json"):
        write_atomically(blocked / "h.json", "{}")
    assert leftovers(tmp_path) == []


def test_write_atomically_never_replaces_a_device_or_pipe(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(CourseError, match="pipe, socket or device"):
        write_atomically(fifo, "{}")
    assert path_kind(fifo) == "a pipe, socket or device" and leftovers(tmp_path) == []


def test_check_writable_cases(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    cases = {tmp_path / "adir": "is a folder", tmp_path / "afile" / "h.json": "afile is a file, not a folder",
             tmp_path / "afile" / "x" / "h.json": "afile is a file, not a folder",
             tmp_path / "loop1": "cannot be written", tmp_path / "loop1" / "h.json": "cannot be written",
             tmp_path / ("x" * 300 + ".json"): "cannot be written (File name too long)",
             pathlib.Path("/sys/h.json"): "cannot be written"}  # /sys refuses new files, even to root
    for path, fragment in cases.items():
        with pytest.raises(CourseError, match="--history") as info:
            check_writable(path, "--history")
        assert fragment in str(info.value), (path, info.value)
    assert check_writable(tmp_path / "new" / "deeper" / "h.json", "--history")
    assert not (tmp_path / "new").exists() and leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits; /sys covers the unwritable case")
def test_check_writable_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    with pytest.raises(CourseError, match="Permission denied"):
        check_writable(folder / "h.json", "--checkpoint")


def test_load_run_prefers_your_finished_run_then_the_reference_one(tmp_path, monkeypatch):
    from mnist_course import history as history_module

    reference = tmp_path / "reference"
    monkeypatch.setattr(history_module, "REFERENCE_RUNS", reference)
    with pytest.raises(CourseError, match="no run '02_batchnorm'"):
        history_module.load_run("02_batchnorm", tmp_path / "runs")
    ref = History(name="ref", train_loss=[1.0], train_acc=[50.0], meta={"epochs": 1, "environment": "cpu X"})
    ref.save(reference / "02_batchnorm.json")
    mine = History(name="mine", train_loss=[1.0, 0.5], train_acc=[50.0, 60.0], meta={"epochs": 2})
    mine.interrupted = True
    mine.save(tmp_path / "runs" / "02_batchnorm.json")
    h, where = history_module.load_run("02_batchnorm", tmp_path / "runs")  # an interrupted run is not a result
    assert h.name == "ref" and "reference run" in where and "cpu X" in where
    mine.interrupted = False
    mine.save(tmp_path / "runs" / "02_batchnorm.json")
    h, where = history_module.load_run("02_batchnorm", tmp_path / "runs")
    assert h.name == "mine" and where.startswith("your run")
