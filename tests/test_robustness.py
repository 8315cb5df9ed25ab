"""Runs never lie, and bad input is one clear line: broken data, Ctrl-C, ``--resume``, quick vs full.

Data cases run ``cli.main`` in-process (they stop before training); Ctrl-C is a real SIGINT sent to a
``python -m mnist_course`` subprocess running in ``tmp_path``.
"""

import dataclasses
import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnist_course import cli
from mnist_course import reproduce as reproduce_module
from mnist_course.history import History
from mnist_course.mnist_files import FILES, ensure_mnist
from mnist_course.registry import RECIPES

ROOT = Path(__file__).resolve().parent.parent
DATA = os.environ.get("MNIST_DATA") or str(ROOT / "data")
REAL_RAW = Path(DATA) / "MNIST" / "raw"
TRAIN_IMAGES, TEST_LABELS = "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


def env(**extra: str) -> dict:
    base = {key: value for key, value in os.environ.items() if key != "MNIST_COURSE_SMOKE"}
    return {**base, "MNIST_DATA": DATA, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


def one_line_error(code: int, stderr: str, *fragments: str) -> str:
    assert code == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".partial.json")]


@pytest.fixture
def main_in(tmp_path, monkeypatch, capsys):
    """``cli.main`` in-process in ``tmp_path``, training forbidden unless ``run_recipe`` is given."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_DATA", DATA)
    monkeypatch.delenv("MNIST_COURSE_SMOKE", raising=False)

    def must_not_train(*args, **kwargs):
        raise AssertionError("training started although the command should have stopped before")

    def call(*args: str, run_recipe=must_not_train) -> tuple[int, str]:
        monkeypatch.setattr(cli, "run_recipe", run_recipe)
        monkeypatch.setattr(reproduce_module, "run_recipe", run_recipe)
        try:
            code = cli.main(list(args))
        except SystemExit as exc:
            code = exc.code
        return code, capsys.readouterr().err
    return call


@pytest.fixture
def raw(tmp_path) -> Path:
    """``tmp_path/data/MNIST/raw`` holding links to the four real files; tests break one of them."""
    folder = tmp_path / "data" / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for name in FILES:
        (folder / name).symlink_to(REAL_RAW / name)
    return folder


def replace_with_copy(raw: Path, name: str, size: int | None = None) -> Path:
    (raw / name).unlink()
    (raw / name).write_bytes((REAL_RAW / name).read_bytes()[:size])
    return raw / name


# ---- data ----

def test_label_out_of_range(main_in, raw):
    labels = replace_with_copy(raw, TEST_LABELS)
    content = bytearray(labels.read_bytes())
    content[100] = 12
    labels.write_bytes(bytes(content))
    one_line_error(*main_in("train", "--quick", "--data", "data"), TEST_LABELS, "label 12", "0-9")


def test_truncated_file(main_in, raw):
    replace_with_copy(raw, TRAIN_IMAGES, 100_000)
    one_line_error(*main_in("train", "--quick", "--data", "data"), TRAIN_IMAGES, "not a valid MNIST file")


@pytest.mark.parametrize("kind", ["folder", "link loop", "broken link"])
def test_data_file_that_is_not_a_file(main_in, raw, kind):
    target = raw / TEST_LABELS
    target.unlink()
    if kind == "folder":
        target.mkdir()
    elif kind == "link loop":
        (raw / "other").symlink_to(target)
        target.symlink_to(raw / "other")
    else:
        target.symlink_to(raw / "nowhere")
    fragment = "a folder" if kind == "folder" else "a broken link or a link loop"
    one_line_error(*main_in("train", "--quick", "--data", "data"), TEST_LABELS, fragment)
    assert not list(raw.glob("*.gz"))  # nothing was downloaded over it


def test_fifo_in_place_of_a_file_as_a_learner_sees_it(tmp_path, raw):
    # A pipe cannot be read like a file (opening it would wait forever): a subprocess, with a timeout.
    (raw / TEST_LABELS).unlink()
    os.mkfifo(raw / TEST_LABELS)
    result = subprocess.run([sys.executable, "-m", "mnist_course", "train", "--quick", "--data", "data"],
                            capture_output=True, text=True, cwd=tmp_path, env=env(), timeout=120, check=False)
    one_line_error(result.returncode, result.stderr, TEST_LABELS, "pipe, socket or device")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file whatever its mode (see the FIFO case)")
def test_unreadable_file_and_folder(main_in, raw):
    replace_with_copy(raw, TEST_LABELS).chmod(0)
    one_line_error(*main_in("train", "--quick", "--data", "data"), TEST_LABELS, "Permission denied")
    raw.chmod(0)
    try:
        one_line_error(*main_in("train", "--quick", "--data", "data"), "Permission denied")
    finally:
        raw.chmod(0o755)


def test_mistyped_data_folder_leaves_nothing_behind(main_in, tmp_path):
    one_line_error(*main_in("train", "--quick", "--data", "dta"), "dta", "is missing", "--data")
    assert not (tmp_path / "dta").exists()


@pytest.mark.parametrize("kind", ["file", "link loop", "too long", "raw is a file"])
def test_unusable_data_folder(main_in, tmp_path, kind):
    if kind == "file":
        (tmp_path / "somefile").write_text("x")
        arg, fragment = "somefile", "somefile is a file"
    elif kind == "link loop":
        (tmp_path / "a").symlink_to(tmp_path / "b")
        (tmp_path / "b").symlink_to(tmp_path / "a")
        arg, fragment = "a", "a broken link or a link loop"
    elif kind == "too long":
        arg, fragment = "d" * 300, "File name too long"
    else:
        (tmp_path / "d" / "MNIST").mkdir(parents=True)
        (tmp_path / "d" / "MNIST" / "raw").write_text("x")
        arg, fragment = "d", "raw is a file"
    one_line_error(*main_in("train", "--quick", "--data", arg), fragment)


def test_gz_files_only_are_unpacked(tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for name in FILES:
        (folder / f"{name}.gz").write_bytes(gzip.compress((REAL_RAW / name).read_bytes(), compresslevel=1))
    assert ensure_mnist(tmp_path) == tmp_path
    for name in FILES:
        assert (folder / name).read_bytes() == (REAL_RAW / name).read_bytes()
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "not gzip"])
def test_bad_gz_is_one_line_and_leaves_nothing_half_written(main_in, raw, damage):
    (raw / TEST_LABELS).unlink()
    packed = gzip.compress((REAL_RAW / TEST_LABELS).read_bytes())
    (raw / f"{TEST_LABELS}.gz").write_bytes(packed[:200] if damage == "truncated" else b"junk" * 100)
    one_line_error(*main_in("train", "--quick", "--data", "data"), "cannot unpack", f"{TEST_LABELS}.gz")
    assert not (raw / TEST_LABELS).exists() and not leftovers(raw)


# ---- interrupted and resumed runs ----

def start(args: list[str], cwd: Path, wait_for: str, **extra: str) -> tuple[subprocess.Popen, str]:
    """Start ``python -m mnist_course *args``; once a line contains ``wait_for``, send SIGINT."""
    proc = subprocess.Popen([sys.executable, "-m", "mnist_course", *args], cwd=cwd, env=env(**extra),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen, deadline = [], time.monotonic() + 240
    for line in proc.stdout:
        seen.append(line)
        if wait_for in line or time.monotonic() > deadline:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    return proc, "".join(seen) + out + "\n" + err


def test_ctrl_c_during_train_replaces_no_complete_file(tmp_path):
    (tmp_path / "h.json").write_text("complete history")
    (tmp_path / "c.pt").write_text("complete checkpoint")
    # batch 8: 250 steps, so the signal lands inside the one quick epoch
    proc, output = start(["train", "--quick", "--model", "gap", "--batch-size", "8", "--progress", "lines",
                          "--history", "h.json", "--checkpoint", "c.pt"], tmp_path, wait_for="Epoch 1")
    assert proc.returncode == 130, output
    assert "interrupted after 0 of 1 epoch(s): not a result; nothing written" in output
    assert "Traceback" not in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "h.json"]
    assert (tmp_path / "h.json").read_text() == "complete history"
    assert (tmp_path / "c.pt").read_text() == "complete checkpoint"


def test_ctrl_c_during_reproduce_keeps_finished_runs_and_resume_finishes(tmp_path):
    args = ["reproduce", "--quick", "--models", "gap", "--seeds", "3"]
    proc, output = start(args, tmp_path, wait_for="== gap, seed 2")
    assert proc.returncode == 130, output
    assert "interrupted: kept the 1 finished run(s) in runs/quick/" in output and "--resume" in output
    assert "no table written" in output and "Traceback" not in output
    runs = tmp_path / "runs" / "quick"
    assert sorted(p.name for p in runs.iterdir()) == ["gap-seed1.json"]  # no 0-epoch run, no table
    assert History.load(runs / "gap-seed1.json").finished
    assert not (tmp_path / "results").exists()

    # MNIST_COURSE_SMOKE=1 is quick mode too: it reuses seed 1 and trains the unfinished seed 2.
    result = subprocess.run([sys.executable, "-m", "mnist_course", "reproduce", "--models", "gap",
                             "--seeds", "2", "--resume"], capture_output=True, text=True, cwd=tmp_path,
                            env=env(MNIST_COURSE_SMOKE="1"), timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "seed 1: reused runs/quick/gap-seed1.json" in result.stdout
    assert "seed 2: 1 epoch(s) (quick mode)" in result.stdout
    table = (runs / "gap.md").read_text()  # one model: its own file
    assert "(quick mode)" in table and "not results" in table
    assert "quick mode" in result.stdout.splitlines()[-1]
    assert not (tmp_path / "results").exists() and not leftovers(tmp_path)


def saved_run(seed: int, epochs: int = 15, quick: bool = False, interrupted: bool = False, **meta) -> History:
    """A History as a finished full-mode ``reproduce`` run of ``gap`` saves it, changed as asked."""
    recipe = dataclasses.asdict(dataclasses.replace(RECIPES["gap"], epochs=1) if quick else RECIPES["gap"])
    facts = {"recipe": recipe, "quick": quick, "seed": seed, "epochs": epochs, "parameters": 6040,
             "train_images": 2_000 if quick else 60_000, "test_images": 1_000 if quick else 10_000} | meta
    h = History(name="gap", meta=facts, interrupted=interrupted)
    for epoch in range(epochs):
        h.add(train_loss=0.1, train_acc=98.0, test_loss=0.05, test_acc=99.0 + epoch / 100, lr=0.01, seconds=1.0)
    return h


def recording_run(calls: list[int], interrupt_at: int | None = None):
    """A ``run_recipe`` that records the seeds it is asked to train; ``interrupt_at`` gets Ctrl-C."""
    def run_recipe(name, recipe, seed=1, *, quick=False, **options):
        calls.append(seed)
        if seed == interrupt_at:
            return saved_run(seed, epochs=0, interrupted=True)
        return saved_run(seed, quick=quick, epochs=1 if quick else recipe.epochs)
    return run_recipe


def test_full_resume_reuses_only_finished_full_runs_with_the_same_recipe(main_in, tmp_path):
    runs = tmp_path / "runs"
    saved_run(1, quick=True).save(runs / "gap-seed1.json")  # a quick run
    saved_run(2, epochs=3).save(runs / "gap-seed2.json")  # fewer epochs (a --epochs 3 run)
    saved_run(3, interrupted=True).save(runs / "gap-seed3.json")
    saved_run(4).save(runs / "gap-seed4.json")  # the only one to reuse
    lr = dataclasses.asdict(dataclasses.replace(RECIPES["gap"], lr=0.5))
    saved_run(5, recipe=lr).save(runs / "gap-seed5.json")
    saved_run(6, train_images=2_000).save(runs / "gap-seed6.json")
    (runs / "gap-seed7.json").write_text("{ not json")
    saved_run(1).save(runs / "gap-seed8.json")  # the wrong seed inside
    before = (runs / "gap-seed4.json").read_text()
    calls: list[int] = []
    code, err = main_in("reproduce", "--models", "gap", "--seeds", "8", "--resume", "--out", "table.md",
                        run_recipe=recording_run(calls))
    assert code == 0, err
    assert calls == [1, 2, 3, 5, 6, 7, 8]
    assert (runs / "gap-seed4.json").read_text() == before
    assert all(History.load(runs / f"gap-seed{seed}.json").finished for seed in range(1, 9))
    assert "(quick mode)" not in (tmp_path / "table.md").read_text()


def test_interrupted_run_is_never_saved_for_resume(main_in, tmp_path):
    calls: list[int] = []
    code, err = main_in("reproduce", "--quick", "--models", "gap", "--seeds", "3",
                        run_recipe=recording_run(calls, interrupt_at=2))
    assert code == 130 and "kept the 1 finished run(s)" in err and "no table written" in err
    assert calls == [1, 2]
    assert sorted(p.name for p in (tmp_path / "runs" / "quick").iterdir()) == ["gap-seed1.json"]
    assert not (tmp_path / "results").exists()


def test_quick_reproduce_writes_under_runs_quick_only(main_in, tmp_path):
    code, err = main_in("reproduce", "--quick", "--models", "gap", run_recipe=recording_run([]))
    assert code == 0, err
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "runs/quick/gap-seed1.json", "runs/quick/gap.md"]
    assert History.load(tmp_path / "runs" / "quick" / "gap-seed1.json").meta["quick"] is True


def test_pick_device_refuses_devices_the_machine_lacks(monkeypatch):
    from mnist_course import data

    monkeypatch.setattr(data.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(data, "mps_available", lambda: False)
    for device in ("cuda", "cuda:0", "mps"):
        with pytest.raises(data.CourseError, match="this machine has none; use auto or cpu"):
            data.pick_device(device)
    assert data.pick_device("auto").type == "cpu"
    monkeypatch.setattr(data.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(data.torch.cuda, "device_count", lambda: 1)
    with pytest.raises(data.CourseError, match="has 1 CUDA device"):
        data.pick_device("cuda:3")
