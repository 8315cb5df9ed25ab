"""A real browser drives JupyterLab: run the RF-explorer notebook, move a slider, see the picture change.

The test starts ``jupyter lab`` from this Python environment on 127.0.0.1 (free port, random token,
a temporary root folder holding a copy of ``tests/browser/rf_explorer.ipynb`` and throw-away Jupyter
config/settings folders), opens the notebook in headless Chromium through Playwright, runs all cells
from the menu, waits for the widget, reads the PNG shown in the widget's output, presses → on the
"col" slider and waits for a different PNG, then saves the notebook and checks that nbconvert (what
nbviewer uses) shows the PNG stored next to the widget. Screenshots go to ``test-output/browser/`` at the
repository root (ignored by git). The server is always terminated.

Chromium is Debian's ``/usr/bin/chromium`` (or ``$CHROMIUM``); Playwright's own browser download is
not used. Without Chromium or Playwright the test is skipped on a workstation and fails under CI
(``CI`` set), so CI can never pass without really running it.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = Path(__file__).resolve().parent / "browser" / "rf_explorer.ipynb"
SCREENSHOTS = REPO / "test-output" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: the browser test must run in CI")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"jupyter lab did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server (it shuts its kernels down), then make sure its process group is gone."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    try:  # a kernel left behind by a killed server is in the server's own process group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _check_static_fallback(path: Path) -> None:
    """The widget's output also carries a PNG, which nbconvert (nbviewer) shows instead of the widget."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(path, as_version=4)
    (output,) = [o for o in notebook.cells[1].outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert "image/png" in output["data"]
    html, _ = HTMLExporter().from_notebook_node(notebook)
    assert html.count(output["data"]["image/png"][:200]) == 1  # the widget's PNG is in the page


def test_rf_explorer_runs_and_reacts_in_jupyterlab(tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        _missing(f"no jupyter next to {sys.executable}")

    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))  # no "news?" pop-up over the cells
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    port, token = _free_port(), secrets.token_hex(24)
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"))
    log = tmp_path / "jupyter.log"
    with open(log, "w") as log_file:
        proc = subprocess.Popen(
            [str(jupyter), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             "--LabApp.news_url=None"],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc, log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={token}")
                # the kernel must be ready, or "Run All" is silently dropped
                page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=45_000)
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_text("Run All Cells", exact=True).click()

                widget = page.locator(".jp-OutputArea-output .widget-vbox").first
                widget.wait_for(timeout=45_000)
                image = widget.locator(".widget-output img").first
                image.wait_for(timeout=30_000)
                page.get_by_text("plot_kernels(model", exact=False).wait_for()
                # the cell after the widget returns a bare Figure: it must show as a picture, not text
                page.locator(".jp-Cell").nth(2).locator(".jp-OutputArea-output img").wait_for(timeout=30_000)
                page.screenshot(path=str(SCREENSHOTS / "1-rf-explorer.png"), full_page=True)
                body = page.locator("body").inner_text()
                assert "Error displaying widget" not in body, body[-2000:]
                assert "Traceback" not in body, body[-3000:]
                assert widget.locator(".widget-slider").count() == 3  # image, row, col
                first_src = widget.locator(".widget-output img").first.get_attribute("src")
                assert first_src.startswith("data:image/png;base64,")
                col = widget.locator(".widget-slider").filter(has_text="col")
                col_before = col.locator(".widget-readout").inner_text()

                handle = col.locator(".noUi-handle, .ui-slider-handle").first  # ipywidgets 8 / 7
                handle.focus()
                page.keyboard.press("ArrowRight")
                page.wait_for_function(
                    """(old) => {
                        const img = document.querySelector('.jp-OutputArea-output .widget-output img');
                        return img !== null && img.src !== old;
                    }""", arg=first_src, timeout=30_000)
                col_after = col.locator(".widget-readout").inner_text()
                assert int(col_after) == int(col_before) + 1
                new_src = widget.locator(".widget-output img").first.get_attribute("src")
                assert new_src.startswith("data:image/png;base64,") and new_src != first_src
                page.screenshot(path=str(SCREENSHOTS / "2-after-slider.png"), full_page=True)
                assert "Error displaying widget" not in page.locator("body").inner_text()
                assert not errors, errors

                # saved as JupyterLab saves it, the notebook shows a picture where widgets cannot run
                saved = root / NOTEBOOK.name
                mtime = saved.stat().st_mtime
                page.get_by_role("menuitem", name="File", exact=True).click()
                page.get_by_text("Save Notebook", exact=True).first.click()
                deadline = time.monotonic() + 20
                while saved.stat().st_mtime == mtime and time.monotonic() < deadline:
                    time.sleep(0.2)
            finally:
                browser.close()
        _check_static_fallback(saved)
    except Exception:
        print(log.read_text()[-4000:])  # the server log helps when the page never gets going
        raise
    finally:
        _stop(proc)
