"""``python -m mnist_course`` as a learner runs it: real subprocesses, exit codes, one-line errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_course.data import FILES, ensure_mnist
from mnist_course.models import model_names

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnist_course", *args], capture_output=True, text=True, check=False,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_the_commands():
    result = cli("--help")
    assert result.returncode == 0
    for command in ("train", "models", "summary", "reproduce"):
        assert command in result.stdout


def test_unknown_model():
    assert_one_line_error(cli("train", "--model", "resnet50"), "unknown model 'resnet50'", "final")


@pytest.mark.parametrize("epochs", ["0", "-3", "many"])
def test_bad_epochs(epochs):
    assert_one_line_error(cli("train", "--epochs", epochs), "--epochs")


def test_unknown_device():
    assert_one_line_error(cli("train", "--device", "gpu", "--dry-run"), "unknown device 'gpu'")


def test_missing_data_offline(tmp_path):
    # Point the download at a closed local port through the proxy variables urllib honours.
    proxy = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    result = cli("train", "--dry-run", "--data", str(tmp_path), env=proxy)
    assert_one_line_error(result, "MNIST files not found", str(tmp_path), "MNIST_DATA", *FILES)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_corrupt_data(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    real = ensure_mnist() / "MNIST" / "raw"
    for name in FILES:
        (raw / name).symlink_to(real / name)
    (raw / "train-images-idx3-ubyte").unlink()
    (raw / "train-images-idx3-ubyte").write_bytes((real / "train-images-idx3-ubyte").read_bytes()[:100_000])
    result = cli("train", "--dry-run", "--data", str(tmp_path), "--checkpoint", str(tmp_path / "best.pt"))
    assert_one_line_error(result, "train-images-idx3-ubyte", "not a valid MNIST file")
    assert not (tmp_path / "best.pt").exists()


def test_models_lists_every_model_with_its_count():
    result = cli("models")
    assert result.returncode == 0
    for name in model_names():
        assert name in result.stdout
    assert "9,962" in result.stdout and "18,520" in result.stdout and "19,866" in result.stdout


def test_summary_prints_the_table():
    result = cli("summary", "--model", "ref003")
    assert result.returncode == 0 and "Total params: 19,866" in result.stdout


def test_dry_run_trains_and_reports(tmp_path):
    result = cli("train", "--dry-run", "--progress", "off", "--history", str(tmp_path / "h.json"),
                 "--checkpoint", str(tmp_path / "best.pt"))
    assert result.returncode == 0, result.stderr
    assert "Total params" in result.stdout
    assert "Test set: Average loss:" in result.stdout
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("final: ") and "parameters, best test accuracy" in last
    assert "Train: Loss=" not in result.stderr
    assert (tmp_path / "h.json").exists() and (tmp_path / "best.pt").exists()
