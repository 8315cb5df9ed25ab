"""What ``tests/test_browser.py`` needs to drive a Jupyter front end in headless Chromium.

:class:`FrontEnd` names, for JupyterLab 4 and for the classic Notebook 6, the command that serves a
folder and the selectors and menus a person would use; :func:`serve` runs such a server (127.0.0.1, free
port, random token, throw-away Jupyter config/data/runtime folders beside the notebook) and always stops
it. :func:`picture` reads the PNG bytes an ``<img>`` shows; :func:`static_html` renders a saved notebook
with nbconvert, with its widget state (as nbviewer does, with the html-manager and RequireJS from
``tests/browser/envs.py`` instead of a CDN) or without it (what a renderer without widget support shows).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# The course notebooks that hold explorers: between them, every explorer (the browser and Colab-pins tests run them).
REPO = Path(__file__).resolve().parents[2]
EXPLORER_NOTEBOOKS = [REPO / "notebooks" / name for name in
                      ("01_baseline.ipynb", "04_gap.ipynb", "05_scheduler_and_augmentation.ipynb")]

# Text that must never be on the page: widget errors of ipywidgets 8 and 7, and Python errors.
ERROR_TEXT = ("Error displaying widget", "Error rendering Jupyter widget", "could not be displayed",
              "model not found", "missing widget manager", "Traceback", "is not a function")


@dataclass(frozen=True)
class FrontEnd:
    name: str
    cell: str  # a notebook cell
    output: str  # one output of a cell
    stderr: str  # a stderr output
    idle: str  # shown while the kernel is idle
    url: str  # the notebook's page, from the notebook's name (JupyterLab: in a new workspace, no other tab)
    prompt: str  # a code cell's prompt: "[12]:" (JupyterLab) or "In [12]:" once it has run

    def command(self, bin_dir: Path, port: int, token: str, root: Path, kernels: bool = True) -> list[str]:
        no_kernel = [] if kernels else ["--KernelSpecManager.allowed_kernelspecs=no-such-kernel"]
        if self.name == "jupyterlab":
            return [str(bin_dir / "jupyter-lab"), "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
                    f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
                    *no_kernel]
        return [str(bin_dir / "jupyter-notebook"), "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
                f"--NotebookApp.token={token}", f"--NotebookApp.notebook_dir={root}", *no_kernel]


JUPYTERLAB = FrontEnd("jupyterlab", ".jp-Notebook .jp-Cell", ".jp-OutputArea-output",
                      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
                      "text=Python 3 (ipykernel) | Idle", "lab/tree/{name}?reset", ".jp-InputArea-prompt")
CLASSIC = FrontEnd("classic", "#notebook-container .cell", ".output_subarea", ".output_stderr",
                   "#kernel_indicator_icon.kernel_idle_icon", "notebooks/{name}", ".input_prompt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env(home: Path, **extra: str) -> dict[str, str]:
    """Throw-away Jupyter folders under ``home`` (a notebook's trust lives in the data folder: the same
    ``home`` trusts what it saved)."""
    settings = home / "lab-settings" / "@jupyterlab"
    for plugin, values in (("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False}),
                           ("notebook-extension/tracker", {"windowingMode": "none"})):
        (settings / plugin).parent.mkdir(parents=True, exist_ok=True)  # no "news?" pop-up; every cell drawn
        (settings / f"{plugin}.jupyterlab-settings").write_text(json.dumps(values))
    return dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
                JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
                JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"), **extra)


@contextmanager
def serve(argv: list[str], env: dict[str, str], log: Path, port: int, token: str, timeout: float = 90):
    """Run a Jupyter server until it answers; on the way out SIGTERM it, then kill its process group."""
    with open(log, "a") as log_file:
        proc = subprocess.Popen(argv, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{argv[0]} did not answer in {timeout} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.25)
        yield proc
    except Exception:
        print(log.read_text()[-4000:])  # the server log helps when the page never gets going
        raise
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        try:  # a kernel left behind is in the server's own process group
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def new_token() -> str:
    return secrets.token_hex(24)


# The bytes of a picture: its src is a blob: (ipywidgets 7 and 8) or data: URL; either can be fetched.
_PICTURE = """async (img) => {
    if (!img.complete || !img.naturalWidth) return "not loaded:";
    const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    let text = "";
    for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.slice(i, i + 8192));
    return Array.from(bytes.slice(0, 8)).join(",") + ":" + btoa(text);
}"""
PNG_HEAD = "137,80,78,71,13,10,26,10"


def picture(img) -> str:
    """The base64 PNG an ``<img>`` locator shows (it must be loaded and be a PNG)."""
    head, _, data = img.evaluate(_PICTURE).partition(":")
    assert head == PNG_HEAD, f"the picture is not a loaded PNG: {head}"
    return data


def body_errors(page) -> list[str]:
    body = page.locator("body").inner_text()
    return [text for text in ERROR_TEXT if text in body]


def static_html(notebook: dict, path: Path, with_state: bool, js: dict[str, Path]) -> Path:
    """nbconvert's HTML (lab template) of ``notebook``, with or without its widget state; with it, the page
    loads the html-manager and RequireJS from ``js`` (nbviewer loads the same from a CDN)."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.reads(json.dumps(notebook), as_version=4)  # a copy, with sources as strings
    if not with_state:
        notebook.metadata.pop("widgets", None)
    exporter = HTMLExporter(widget_renderer_url=js["embed-amd.js"].as_uri(),
                            require_js_url=js["require.js"].as_uri())
    body, _ = exporter.from_notebook_node(notebook)
    path.write_text(body)
    return path
