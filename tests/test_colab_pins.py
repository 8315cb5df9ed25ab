"""The smoke suite of the explorers under Colab's package versions.

``.envs/colab`` (built by ``tests/browser/envs.py`` when missing) pins what Colab runs and the course's
widgets and plots depend on: ipywidgets 7.7.1, IPython 7.34.0, ipykernel 6.17.1, tqdm 4.67.1, matplotlib
3.10.0, notebook 6.5.7, torch 2.11.0 and torchvision 0.26.0; everything else comes from the main venv
through a ``.pth`` file placed after the environment's own site-packages. In it, pytest runs the unit tests
of the widgets, plots, receptive fields and histories; then ``tests/browser/run_notebook.py`` executes the
course notebooks that hold explorers (01, 04 and 05: every explorer, on real MNIST, with ``fit``) in quick
mode with nbclient, as nbval does, and checks what they store.
Not covered: Python 3.13 (Colab's; these machines have 3.11), Colab's own widget manager and front end.
Without the environment (no network to build it) the test skips on a workstation and fails under CI.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
import envs
from frontends import EXPLORER_NOTEBOOKS

REPO = Path(__file__).resolve().parent.parent
COLAB = {"ipywidgets": "7.7.1", "IPython": "7.34.0", "ipykernel": "6.17.1", "tqdm": "4.67.1",
         "matplotlib": "3.10.0", "torch": "2.11.0", "torchvision": "0.26.0"}
SUITE = ["tests/test_widgets.py", "tests/test_plots.py", "tests/test_receptive_field.py", "tests/test_history.py"]


@pytest.fixture(scope="module")
def colab_python() -> Path:
    try:
        return envs.ensure("colab")
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        if os.environ.get("CI"):
            pytest.fail(f"cannot build .envs/colab: {error}")
        pytest.skip(f"cannot build .envs/colab: {error}")


def test_the_environment_has_colab_versions(colab_python):
    code = "import importlib, json; print(json.dumps({m: importlib.import_module(m).__version__ for m in %r}))"
    out = subprocess.run([str(colab_python), "-c", code % list(COLAB)], check=True, capture_output=True,
                         text=True, cwd=REPO).stdout
    found = {name: version.split("+")[0] for name, version in json.loads(out).items()}
    assert found == COLAB


def test_smoke_suite_under_colab_versions(colab_python):
    done = _run(colab_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *SUITE)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]


def test_course_notebooks_with_explorers_under_colab_versions(colab_python):
    """Notebooks 01, 04 and 05 (every explorer, with ``fit``, quick mode), executed by nbclient with an
    IPython 7.34 kernel; the dashboard's stored PNG must be its final curves (its display is updated after
    the cell)."""
    done = _run(colab_python, "tests/browser/run_notebook.py", *map(str, EXPLORER_NOTEBOOKS))
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]


def _run(python: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(python), *args], cwd=REPO, env=dict(os.environ, MNIST_COURSE_SMOKE="1"),
                          capture_output=True, text=True, timeout=1200, check=False)
    print(done.stdout[-3000:])
    return done
