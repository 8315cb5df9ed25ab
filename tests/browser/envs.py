"""Builds the extra test environments, each a venv under ``.envs/NAME`` at the repository root (ignored).

* ``classic``: the classic Notebook 6.5.7 with ipywidgets 7.7.1 and widgetsnbextension 3.6.10 (what pip
  installs for ipywidgets 7.7.1 today, the combination learners reported).
* ``colab``: the versions Colab runs that matter to the course's widgets and plots: ipywidgets 7.7.1,
  IPython 7.34.0, ipykernel 6.17.1, tqdm 4.67.1, matplotlib 3.10.0, notebook 6.5.7 (which
  widgetsnbextension 3.6 pulls in), torch 2.11.0, torchvision 0.26.0; nbval and pytest to run the tests.
  Colab runs Python 3.13 (as the issue reports); these machines have 3.11 only.

How they are built: ``python -m venv``, then ``pip install`` of only the pinned front-end packages (and
whatever they need) into the venv, then a file ``main-venv.pth`` is added to its site-packages holding
two paths: the site-packages of the Python that runs this script (the main venv) and the repository root. Python appends the paths of a ``.pth``
file AFTER the site-packages folder itself, so the venv's own pinned packages (ipywidgets, IPython,
matplotlib, torch 2.11 in ``colab``…) win, and everything else (torch, torchvision, numpy, the CUDA
libraries torch loads, torchsummary, mnist_course itself) comes from the main venv. torch 2.11 and
torchvision 0.26 are installed with ``--no-deps``: the CUDA 13 libraries they would pull (several GB)
are already in the main venv, found through that path.

``js``: the widget renderer nbviewer uses (``@jupyter-widgets/html-manager``'s ``embed-amd.js``) and
RequireJS, from the npm registry, so that the tests can render nbconvert's HTML as nbviewer does, offline.

``python tests/browser/envs.py classic colab js`` builds (or keeps, when its pins are unchanged) each
environment and prints its python (or folder). Tests call :func:`ensure` and :func:`ensure_js`.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / ".envs"
PINS = {
    "classic": [["notebook==6.5.7", "ipywidgets==7.7.1", "widgetsnbextension==3.6.10", "ipykernel==6.29.5"]],
    "colab": [["ipywidgets==7.7.1", "ipython==7.34.0", "ipykernel==6.17.1", "tqdm==4.67.1",
               "matplotlib==3.10.0", "notebook==6.5.7", "nbval==0.11.0", "pytest==8.4.2"],
              ["--no-deps", "torch==2.11.0", "torchvision==0.26.0"]],
}


JS = {"@jupyter-widgets/html-manager@1.0.15": "package/dist/embed-amd.js", "requirejs@2.3.8": "package/require.js"}


def python(name: str) -> Path:
    return ROOT / name / "bin" / "python"


def ensure(name: str) -> Path:
    """The environment's python, built first unless it exists with the same pins."""
    env, stamp = ROOT / name, repr((PINS[name], sysconfig.get_path("purelib"), str(REPO)))
    marker = env / "pins.txt"
    if marker.exists() and marker.read_text() == stamp and python(name).exists():
        return python(name)
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
    pip = [str(python(name)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for group in PINS[name]:
        done = subprocess.run(pip + group, check=False, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"pip install {' '.join(group)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    site = Path(subprocess.run([str(python(name)), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "main-venv.pth").write_text(f"{sysconfig.get_path('purelib')}\n{REPO}\n")
    freeze = [str(python(name)), "-m", "pip", "freeze", "--local"]
    (env / "freeze.txt").write_text(subprocess.run(freeze, check=True, capture_output=True, text=True).stdout)
    marker.write_text(stamp)
    print(f"built .envs/{name} in {time.monotonic() - start:.0f} s", file=sys.stderr)
    return python(name)


def ensure_js() -> dict[str, Path]:
    """``{"embed-amd.js": path, "require.js": path}``, fetched with ``npm pack`` unless already there."""
    folder = ROOT / "js"
    files = {Path(member).name: folder / Path(member).name for member in JS.values()}
    if all(path.exists() for path in files.values()):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["npm", "pack", "--silent", *JS], cwd=folder, check=True, capture_output=True, text=True)
    for tgz, member in zip(out.stdout.split(), JS.values()):
        with tarfile.open(folder / tgz) as archive:
            files[Path(member).name].write_bytes(archive.extractfile(member).read())
    return files


if __name__ == "__main__":
    for arg in sys.argv[1:] or [*PINS, "js"]:
        print(ensure_js()["embed-amd.js"].parent if arg == "js" else ensure(arg))
