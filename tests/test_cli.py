"""``python -m mnist_course`` as a learner runs it: real subprocesses, exit codes, one-line errors.

Subprocesses run in ``tmp_path`` so runs/ and results/ land there. A few cases that cannot be caused for
real in a test (out of memory, Ctrl-C after some epochs) call ``cli.main`` in-process with a stand-in trainer.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mnist_course import cli
from mnist_course.data import mps_available
from mnist_course.history import History
from mnist_course.mnist_files import FILES
from mnist_course.registry import get_model, model_names
from mnist_course.train import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
DATA = os.environ.get("MNIST_DATA") or str(ROOT / "data")


def run_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if key != "MNIST_COURSE_SMOKE"}
    env = {**base, "MNIST_DATA": DATA, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mnist_course", *args], capture_output=True, text=True,
                          check=False, cwd=cwd, env=env, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess | tuple[int, str], *fragments: str) -> str:
    code, stderr = (result.returncode, result.stderr) if hasattr(result, "stderr") else result
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def must_not_train(*args, **kwargs):
    raise AssertionError("training started although the command should have stopped before")


@pytest.fixture
def main_in(tmp_path, monkeypatch, capsys):
    """``cli.main`` in-process, in ``tmp_path``: ``call(*args, run_recipe=...)`` → (exit status, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_DATA", DATA)
    monkeypatch.delenv("MNIST_COURSE_SMOKE", raising=False)

    def call(*args: str, run_recipe=must_not_train) -> tuple[int, str]:
        monkeypatch.setattr(cli, "run_recipe", run_recipe)
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse
            code = exc.code
        return code, capsys.readouterr().err
    return call


def test_help_lists_the_commands_and_only_devices_this_machine_has(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("train", "models", "summary", "reproduce"):
        assert command in result.stdout
    helptext = run_cli("train", "--help", cwd=tmp_path).stdout
    assert "{" + ",".join(cli.DEVICES) + "}" in helptext
    assert ("mps" in helptext) == mps_available()
    assert ("cuda}" in helptext or "cuda," in helptext) == torch.cuda.is_available()


def test_unknown_model(main_in):
    assert_one_line_error(main_in("train", "--model", "resnet50"), "unknown model 'resnet50'", "final")


NO_MPS = pytest.mark.skipif(mps_available(), reason="this machine has MPS")
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
BAD_ARGUMENTS = [
    (["--epochs", "0"], ["--epochs"]),
    (["--epochs", "many"], ["--epochs", "whole number"]),
    (["--seed", "-1"], ["--seed", "at least 0"]),
    (["--lr", "-1"], ["--lr", "above 0"]),
    (["--lr", "1e308"], ["--lr", "at most 10"]),
    (["--lr", "inf"], ["--lr"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--device", "gpu"], ["--device", "'gpu'", "auto, cpu"]),
    pytest.param(["--device", "mps"], ["--device", "no device 'mps' on this machine", "auto, cpu"],
                 marks=NO_MPS),
    pytest.param(["--device", "cuda"], ["--device", "no device 'cuda' on this machine", "auto, cpu"],
                 marks=NO_CUDA),
]


@pytest.mark.parametrize("args, fragments", BAD_ARGUMENTS,
                         ids=[" ".join(getattr(case, "values", case)[0]) for case in BAD_ARGUMENTS])
def test_bad_arguments(main_in, args, fragments):
    assert_one_line_error(main_in("train", "--quick", *args), *fragments)


def test_bad_argument_as_a_learner_sees_it(tmp_path):
    assert_one_line_error(run_cli("train", "--lr", "nan", cwd=tmp_path), "--lr", "got nan")


def test_missing_data_offline(tmp_path):
    # Point the download at a closed local port through the proxy variables urllib honours.
    proxy = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    (tmp_path / "data").mkdir()
    result = run_cli("train", "--quick", "--data", "data", env=proxy, cwd=tmp_path)
    assert_one_line_error(result, "MNIST files not found", "MNIST_DATA", *FILES)
    assert list((tmp_path / "data").iterdir()) == []  # no empty MNIST/raw left behind


@pytest.fixture
def obstacles(tmp_path) -> list[str]:
    """A folder and a file where outputs might be asked for; returns the names present."""
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    return ["adir", "afile"]


@pytest.mark.parametrize("flag, target, fragment", [
    ("--history", "adir", "is a folder"),
    ("--checkpoint", "adir", "is a folder"),
    ("--history", "afile/h.json", "afile is a file, not a folder"),
    ("--checkpoint", "afile/sub/c.pt", "afile is a file, not a folder"),
    ("--history", "/sys/h.json", "cannot be written"),  # refuses new files even to root
    ("--checkpoint", "/dev/null", "pipe, socket or device"),
    ("--history", "results/h.json", "quick mode never writes to results/"),
    ("--checkpoint", "x" * 300 + ".pt", "File name too long"),
])
def test_train_output_paths_rejected_before_training(main_in, tmp_path, obstacles, flag, target, fragment):
    assert_one_line_error(main_in("train", "--quick", "--model", "gap", flag, target), flag, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == obstacles


def test_output_path_rejected_as_a_learner_sees_it(tmp_path, obstacles):
    result = run_cli("train", "--quick", "--model", "gap", "--checkpoint", "afile/c.pt", cwd=tmp_path)
    assert_one_line_error(result, "--checkpoint afile/c.pt", "afile is a file, not a folder")
    assert "Total params" not in result.stdout  # nothing started
    assert sorted(p.name for p in tmp_path.iterdir()) == obstacles


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits (/sys/h.json covers it for root)")
def test_train_output_in_read_only_folder(main_in, tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    code, err = main_in("train", "--quick", "--history", "ro/h.json")
    assert_one_line_error((code, err), "--history", "Permission denied")


def test_same_path_for_history_and_checkpoint(main_in):
    assert_one_line_error(main_in("train", "--quick", "--history", "x", "--checkpoint", "./x"),
                          "--checkpoint and --history name the same file")


@pytest.mark.parametrize("args, fragment", [
    (["--out", "adir"], "--out adir is a folder"),
    (["--out", "afile/t.md"], "afile is a file, not a folder"),
    (["--out", "results/t.md"], "quick mode never writes to results/"),
    (["--out", "/sys/t.md"], "cannot be written"),
])
def test_reproduce_output_paths_rejected_before_training(main_in, tmp_path, obstacles, args, fragment):
    assert_one_line_error(main_in("reproduce", "--quick", "--models", "gap", *args), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == obstacles


@pytest.mark.parametrize("runs", ["a file", "a file above"])
def test_reproduce_runs_folder_unusable(main_in, tmp_path, runs):
    if runs == "a file":
        (tmp_path / "runs").write_text("not a folder")
    else:
        (tmp_path / "runs").mkdir()
        (tmp_path / "runs" / "quick").write_text("not a folder")
    code, err = main_in("reproduce", "--quick", "--models", "gap", "--out", "t.md")
    assert_one_line_error((code, err), "runs folder", "is a file")


def test_models_lists_every_model_with_its_count(tmp_path):
    result = run_cli("models", cwd=tmp_path)
    assert result.returncode == 0
    for name in model_names():
        assert name in result.stdout
    assert "9,962" in result.stdout and "18,520" in result.stdout and "19,866" in result.stdout


def test_summary_prints_the_table(tmp_path):
    result = run_cli("summary", "--model", "ref003", cwd=tmp_path)
    assert result.returncode == 0 and "Total params: 19,866" in result.stdout


def test_quick_train_reports_and_writes_complete_files(tmp_path):
    (tmp_path / "h.partial.json").write_text("left by an interrupted run")
    result = run_cli("train", "--quick", "--model", "gap", "--progress", "lines", "--history", "h.json",
                     "--checkpoint", "best.pt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "quick mode" in result.stdout and "Total params" in result.stdout
    assert "Test set: Average loss:" in result.stdout
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("gap: ") and "best test accuracy" in last and last.endswith("[quick mode]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "h.json"]
    history = History.load(tmp_path / "h.json")
    assert history.finished and history.meta["quick"] is True and "quick mode" in history.meta["note"]
    load_checkpoint(get_model("gap"), tmp_path / "best.pt")


# ---- in-process: a stand-in for run_recipe ----

def fake_run(epochs_done: int, interrupted: bool = False, error: BaseException | None = None):
    """A ``run_recipe`` that 'trains' ``epochs_done`` epochs instantly (calling the callbacks), or raises."""
    def run_recipe(name, recipe, seed=1, *, callbacks=(), quick=False, **options):
        if error is not None:
            raise error
        model = get_model(name)
        history = History(name=name, meta={"epochs": recipe.epochs, "parameters": 1, "device": "cpu",
                                           "quick": quick})
        for epoch in range(epochs_done):
            history.add(train_loss=1.0, train_acc=50.0, test_loss=1.0, test_acc=60.0 + epoch, lr=0.01, seconds=0.1)
            for callback in callbacks:
                callback(history, model)
        history.interrupted = interrupted
        return history
    return run_recipe


def test_interrupted_train_keeps_partial_files_beside_the_complete_ones(main_in, tmp_path):
    (tmp_path / "h.json").write_text("complete history of an earlier run")
    (tmp_path / "c.pt").write_bytes(b"complete checkpoint of an earlier run")
    args = ["train", "--model", "gap", "--epochs", "3", "--history", "h.json", "--checkpoint", "c.pt"]
    code, err = main_in(*args, run_recipe=fake_run(1, interrupted=True))
    assert code == 130
    assert "interrupted after 1 of 3 epoch(s): not a result" in err
    assert "h.partial.json" in err and "c.partial.pt" in err and "partial" in err
    assert (tmp_path / "h.json").read_text() == "complete history of an earlier run"
    assert (tmp_path / "c.pt").read_bytes() == b"complete checkpoint of an earlier run"
    partial = History.load(tmp_path / "h.partial.json")
    assert partial.interrupted and partial.epochs == 1 and not partial.finished
    load_checkpoint(get_model("gap"), tmp_path / "c.partial.pt")

    # A finished run afterwards replaces the complete files and clears the partial ones.
    code, err = main_in(*args, run_recipe=fake_run(3))
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "h.json"]
    assert History.load(tmp_path / "h.json").finished


def test_interrupted_train_with_no_finished_epoch_writes_nothing(main_in, tmp_path):
    args = ["train", "--model", "gap", "--history", "h.json", "--checkpoint", "c.pt"]
    code, err = main_in(*args, run_recipe=fake_run(0, interrupted=True))
    assert code == 130 and "nothing written" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                 "you tried to allocate 1125899906842624 bytes.\nError code 12"),
], ids=["cuda", "cpu"])
def test_out_of_memory_is_one_line(main_in, tmp_path, error):
    args = ["train", "--model", "gap", "--batch-size", "60000", "--history", "h.json"]
    code, err = main_in(*args, run_recipe=fake_run(0, error=error))
    assert_one_line_error((code, err), "out of memory", "--batch-size")
    assert list(tmp_path.iterdir()) == []


def test_other_runtime_errors_are_not_disguised(main_in):
    with pytest.raises(RuntimeError, match="a bug"):
        main_in("train", "--model", "gap", run_recipe=fake_run(0, error=RuntimeError("a bug")))


def test_failed_final_write_is_one_line_and_leaves_no_tmp(main_in, tmp_path):
    (tmp_path / "out").mkdir()

    def folder_becomes_a_file(*args, **kwargs):
        history = fake_run(2)(*args, **kwargs)
        (tmp_path / "out").rmdir()
        (tmp_path / "out").write_text("a file now")
        return history

    args = ["train", "--model", "gap", "--history", "out/h.json"]
    code, err = main_in(*args, run_recipe=folder_becomes_a_file)
    assert_one_line_error((code, err), "cannot write out/h.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
