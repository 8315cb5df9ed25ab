"""Real browsers drive both front ends through every explorer, then re-open the saved notebook.

Each test serves a copy of ``tests/browser/explorers.ipynb`` (every explorer on real MNIST digits and a
small net, in quick mode) from its own environment, opens it in headless Chromium through Playwright and:

1. runs all cells from the menu; each explorer's picture is a loaded PNG in an ``Image`` (no ``Output``
   widget); the live dashboard shows the last epoch; no error text, stderr output or console error;
2. moves a control of every explorer (a slider of ``rf_explorer`` and ``feature_browser``, the scheduler
   of ``lr_schedule_explorer``, which shows and hides sliders, a tick box of ``run_comparison``): the
   picture changes, and keeps its size and place;
3. narrows the window to 600 px: control rows wrap, sliders keep their width, pictures fit;
4. saves the notebook with its widget state as a person would (JupyterLab: Settings → Save Widget State
   Automatically, then File → Save; classic: Widgets → Save Notebook Widget State), checks the file (each
   explorer's Image state holds the last picture shown; the dashboard's PNG is its final curves), then
   serves it again and re-opens it: with a new kernel, every explorer is drawn from the saved state; with
   no kernel available ("No Kernel" / "Continue Without Kernel"), the classic Notebook shows each output's
   PNG, JupyterLab shows "Loading widget..." for a file it trusts and the PNGs for one it does not (a
   fresh Jupyter data folder); never an error box, and the same pictures as saved;
5. renders the saved file as nbviewer does (nbconvert HTML with the html-manager), and with its widget
   state stripped (what a renderer without widgets shows): pictures everywhere, progress bars as text.

Environments: JupyterLab 4 + ipywidgets 8 from the main venv (the one running pytest); the classic
Notebook 6.5.7 + ipywidgets 7.7.1 + widgetsnbextension 3.6.10 in ``.envs/classic``, built by
``tests/browser/envs.py`` when missing. Screenshots go to ``test-output/browser/<front end>/``.
Chromium is Debian's ``/usr/bin/chromium`` (or ``$CHROMIUM``). Without Chromium, Playwright or an
environment the tests skip on a workstation and fail under CI (``CI`` set): CI never passes without them.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
import envs
from frontends import (
    CLASSIC,
    JUPYTERLAB,
    FrontEnd,
    body_errors,
    free_port,
    jupyter_env,
    new_token,
    picture,
    serve,
    static_html,
)

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "tests" / "browser" / "explorers.ipynb"
SCREENSHOTS = REPO / "test-output" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DASHBOARD, RF, FEATURES, SCHEDULE, RUNS, FIGURE = 2, 4, 5, 6, 7, 8  # cells of the notebook
APPS = (DASHBOARD, RF, FEATURES, SCHEDULE, RUNS)
VIEW, STATE = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: the browser tests must run in CI")
    pytest.skip(reason)


def _needs_browser() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")


def test_explorers_in_jupyterlab_4(tmp_path):
    _needs_browser()
    _drive(JUPYTERLAB, Path(sys.executable).parent, tmp_path)


def test_explorers_in_classic_notebook_6_with_ipywidgets_7(tmp_path):
    _needs_browser()
    try:
        python = envs.ensure("classic")
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:  # no network, no pip
        _missing(f"cannot build .envs/classic: {error}")
    _drive(CLASSIC, python.parent, tmp_path)


def _drive(fe: FrontEnd, bin_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    root, out = tmp_path / "notebooks", SCREENSHOTS / fe.name
    root.mkdir()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    saved = root / NOTEBOOK.name
    shutil.copy(NOTEBOOK, saved)
    env = jupyter_env(tmp_path, MNIST_COURSE_SMOKE="1")
    js = envs.ensure_js()
    log = tmp_path / "server.log"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"])
        try:
            port, token = free_port(), new_token()
            with serve(fe.command(bin_dir, port, token, root), env, log, port, token):
                page, errors = _page(browser, fe, port, token)
                _run_all(fe, page)
                shown = _check_live(fe, page, errors, out)
                _save(fe, page, saved)
                page.close()
            notebook = json.loads(saved.read_text())
            _check_saved(notebook, shown)
            reopen = [("new-kernel", True, env), ("no-kernel", False, env)]
            if fe is JUPYTERLAB:  # another Jupyter data folder: the file is not trusted, as when downloaded
                reopen.append(("no-kernel-untrusted", False, jupyter_env(tmp_path / "other")))
            for name, kernels, reopen_env in reopen:
                port, token = free_port(), new_token()
                with serve(fe.command(bin_dir, port, token, root, kernels=kernels), reopen_env, log, port, token):
                    page, errors = _page(browser, fe, port, token)
                    _check_reopened(fe, page, notebook, out / f"4-reopened-{name}", kernels, errors)
                    page.close()
            _check_static(browser, notebook, js, out)
        finally:
            browser.close()


def _page(browser, fe: FrontEnd, port: int, token: str):
    """The notebook's page, and the list its page errors and console errors go to."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and errors.append(f"console: {msg.text}"))
    page.goto(f"http://127.0.0.1:{port}/{fe.url.format(name=NOTEBOOK.name)}?token={token}")
    return page, errors


def _cell(fe: FrontEnd, page, index: int):
    return page.locator(fe.cell).nth(index)


def _run_all(fe: FrontEnd, page) -> None:
    """Wait for the kernel (a run requested earlier is dropped), run all cells from the menu, wait for the end."""
    if fe is JUPYTERLAB:
        page.locator(fe.idle).wait_for(timeout=90_000)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
    else:
        page.wait_for_function("() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
                               " && Jupyter.notebook.kernel.is_connected() && Jupyter.notebook.kernel.widget_manager",
                               timeout=90_000)
        page.locator("#celllink").click()
        page.locator("#run_all_cells").click()
    _cell(fe, page, FIGURE).locator(f"{fe.output} img").wait_for(timeout=300_000)
    page.locator(fe.idle).wait_for(timeout=60_000)


def _app(fe: FrontEnd, page, index: int):
    app = _cell(fe, page, index).locator(".widget-vbox").first
    img = app.locator("img.widget-image")
    img.wait_for(timeout=60_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle(), timeout=30_000)
    return app, img


def _no_errors(fe: FrontEnd, page, errors: list[str]) -> None:
    assert not body_errors(page), page.locator("body").inner_text()[-3000:]
    assert page.locator(fe.stderr).count() == 0, page.locator(fe.stderr).first.inner_text()
    assert not errors, errors


def _place(app, img) -> tuple[float, ...]:
    a, b = app.bounding_box(), img.bounding_box()
    return round(b["x"] - a["x"]), round(b["y"] - a["y"]), round(b["width"]), round(b["height"])


def _changes(page, app, img, action, what: str) -> str:
    """Do ``action``; the picture must change, keeping its size and its place in the app."""
    src, before, place = img.get_attribute("src"), picture(img), _place(app, img)
    action()
    page.wait_for_function("([img, old]) => img.src !== old && img.complete && img.naturalWidth > 0",
                           arg=[img.element_handle(), src], timeout=60_000)
    after = picture(img)
    assert after != before, f"{what}: the picture stayed the same"
    assert _place(app, img) == place, f"{what}: the picture moved or changed size"
    return after


def _slide(page, app, name: str) -> None:
    slider = app.locator(".widget-slider").filter(has_text=name)
    slider.locator(".noUi-handle, .ui-slider-handle").first.focus()  # ipywidgets 8 / 7
    page.keyboard.press("ArrowRight")


def _check_live(fe: FrontEnd, page, errors: list[str], out: Path) -> dict[int, str]:
    """Steps 1–3; returns each app's last picture (base64 PNG)."""
    apps = {i: _app(fe, page, i) for i in APPS}
    shown = {i: picture(img) for i, (app, img) in apps.items()}
    page.screenshot(path=str(out / "1-ran.png"), full_page=True)
    for i, (app, _img) in apps.items():
        app.screenshot(path=str(out / f"1-cell{i}.png"))
        assert app.locator(".widget-output").count() == 0, "an Output widget"
    _no_errors(fe, page, errors)
    status = apps[DASHBOARD][0].locator(".widget-html").last.inner_text()
    assert "lr 0.05: epoch 2" in status, status  # the dashboard followed fit to its last epoch
    assert _cell(fe, page, DASHBOARD).locator("img.widget-image").count() == 1  # drawn anew once, not twice
    assert _cell(fe, page, 3).locator(".widget-hprogress, .progress").count() >= 1  # fit's tqdm bars

    app, img = apps[RF]
    col = app.locator(".widget-slider").filter(has_text="col").locator(".widget-readout")
    before = int(col.inner_text())
    shown[RF] = _changes(page, app, img, lambda: _slide(page, app, "col"), "rf_explorer col")
    assert int(col.inner_text()) == before + 1
    app, img = apps[FEATURES]
    shown[FEATURES] = _changes(page, app, img, lambda: _slide(page, app, "channel"), "feature_browser channel")
    app, img = apps[SCHEDULE]
    visible = app.locator(".widget-slider:visible")
    names = visible.all_inner_texts()
    assert any("pct_start" in n for n in names) and not any("step_size" in n for n in names), names
    shown[SCHEDULE] = _changes(page, app, img, lambda: app.locator("select").first.select_option(label="StepLR"),
                               "lr_schedule_explorer scheduler")  # sliders appear and disappear below
    names = visible.all_inner_texts()
    assert any("step_size" in n for n in names) and not any("pct_start" in n for n in names), names
    app, img = apps[RUNS]
    box = app.locator(".widget-checkbox").filter(has_text="lr0.01").locator("input")
    shown[RUNS] = _changes(page, app, img, lambda: box.click(), "run_comparison tick box")
    page.screenshot(path=str(out / "2-moved.png"), full_page=True)
    _no_errors(fe, page, errors)

    if fe is JUPYTERLAB:  # hide the file browser, as on a small screen
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
    page.set_viewport_size({"width": 600, "height": 1100})
    page.wait_for_timeout(800)
    for i in (RF, FEATURES, SCHEDULE, RUNS):
        app, img = apps[i]
        row = app.locator(".widget-hbox").first.bounding_box()
        boxes = [c.bounding_box() for c in app.locator(".widget-hbox").first.locator(":scope > *:visible").all()]
        assert all(b["x"] >= row["x"] - 1 and b["x"] + b["width"] <= row["x"] + row["width"] + 1 for b in boxes), \
            (i, row, boxes)  # nothing sticks out of the row: it wraps
        sliders = [s.bounding_box() for s in app.locator(".widget-slider:visible").all()]
        assert all(s["width"] >= 250 for s in sliders), (i, sliders)  # no slider shrinks to a bare handle
        picture_box = img.bounding_box()
        assert picture_box["x"] >= 0 and picture_box["x"] + picture_box["width"] <= 600, (i, picture_box)
        app.screenshot(path=str(out / f"3-narrow-cell{i}.png"))
    rows = {round(b["y"]) for b in (s.bounding_box() for s in apps[RF][0].locator(".widget-slider").all())}
    assert len(rows) >= 2, "rf_explorer's sliders did not wrap at 600 px"
    page.set_viewport_size({"width": 1400, "height": 1100})
    _no_errors(fe, page, errors)
    return shown


def _save(fe: FrontEnd, page, saved: Path) -> None:
    """Save with the widget state, through the menus a person would use; wait for the file."""
    mtime = saved.stat().st_mtime
    if fe is JUPYTERLAB:
        page.get_by_role("menuitem", name="Settings", exact=True).click()
        page.get_by_text("Save Widget State Automatically", exact=True).click()
        page.wait_for_timeout(500)  # the setting is written to the server
        page.get_by_role("menuitem", name="File", exact=True).click()
        page.get_by_text("Save Notebook", exact=True).first.click()
    else:
        page.locator("#menus a.dropdown-toggle", has_text="Widgets").click()
        page.get_by_text("Save Notebook Widget State", exact=True).click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (saved.stat().st_mtime == mtime or "widgets" not in saved.read_text()):
        time.sleep(0.25)
    assert "widgets" in json.loads(saved.read_text())["metadata"], "saved without the widget state"


def _image_state(notebook: dict, output: dict) -> str:
    """The base64 PNG of the Image (first child of the app's VBox) in the saved widget state."""
    state = notebook["metadata"]["widgets"][STATE]["state"]
    box = state[output["data"][VIEW]["model_id"]]["state"]
    image = state[box["children"][0].removeprefix("IPY_MODEL_")]
    (buffer,) = [b for b in image.get("buffers", []) if b["path"] == ["value"]]
    return buffer["data"]


def _app_output(notebook: dict, index: int) -> dict:
    (output,) = [o for o in notebook["cells"][index]["outputs"] if VIEW in o.get("data", {})]
    return output


def _same_png(a: str, b: str) -> bool:
    return base64.b64decode(a) == base64.b64decode(b)


def _check_saved(notebook: dict, shown: dict[int, str]) -> None:
    for i in APPS:
        output = _app_output(notebook, i)
        assert set(output["data"]) == {VIEW, "text/plain", "image/png"}
        assert _same_png(_image_state(notebook, output), shown[i]), f"cell {i}: the state is not the last picture"
    dashboard = _app_output(notebook, DASHBOARD)
    assert _same_png(dashboard["data"]["image/png"], shown[DASHBOARD]), "the dashboard's PNG is not its final curves"


def _check_reopened(fe: FrontEnd, page, notebook: dict, out: Path, kernels: bool, errors: list[str]) -> None:
    """Step 4, in a new server. With a kernel (a new one, without the widgets): every explorer is drawn from
    the saved widget state. With none, the classic Notebook has no widget manager and shows each output's
    PNG; so does JupyterLab for a file it does not trust (it shows only safe types); for one it trusts, its
    widget manager waits for a kernel and shows "Loading widget..." (no error; see README)."""
    trusted = "untrusted" not in out.name
    if not kernels and fe is JUPYTERLAB:
        dialog = page.locator(".jp-Dialog")  # "Select Kernel": the notebook's kernel is not there
        dialog.wait_for(timeout=60_000)
        dialog.get_by_role("button", name="No Kernel").click()
    elif not kernels:
        page.get_by_text("Continue Without Kernel").click(timeout=60_000)  # "Kernel not found"
    _cell(fe, page, FIGURE).locator(f"{fe.output} img").wait_for(timeout=60_000)
    for i in APPS:
        output, cell = _app_output(notebook, i), _cell(fe, page, i)
        if kernels:
            img, expected = cell.locator("img.widget-image"), _image_state(notebook, output)
        elif fe is JUPYTERLAB and trusted:
            page.wait_for_timeout(1000)
            assert "Loading widget..." in cell.inner_text() or cell.locator("img").count(), i
            cell.screenshot(path=str(out.with_name(f"{out.name}-cell{i}.png")))
            continue
        else:
            img, expected = cell.locator(f"{fe.output} img").first, output["data"]["image/png"]
        img.wait_for(timeout=60_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle(),
                               timeout=30_000)
        assert _same_png(picture(img), expected), f"cell {i}: not the saved picture"
        cell.screenshot(path=str(out.with_name(f"{out.name}-cell{i}.png")))
    page.screenshot(path=str(out.with_suffix(".png")))
    assert not body_errors(page), page.locator("body").inner_text()[-3000:]
    print(out.name, "console errors:", errors)
    if kernels:
        _no_errors(fe, page, errors)


def _check_static(browser, notebook: dict, js: dict, out: Path) -> None:
    """Step 5: nbviewer-style (the html-manager draws the saved widgets), and with no widget state at all."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(static_html(notebook, out / "5-nbviewer.html", True, js).as_uri())
    images = page.locator(".jupyter-widgets img.widget-image")
    page.wait_for_function(f"() => document.querySelectorAll('.jupyter-widgets img.widget-image').length >= {len(APPS)}",
                           timeout=60_000)
    pictures = []
    for img in images.all():
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle(),
                               timeout=30_000)
        pictures.append(base64.b64decode(picture(img)))
    for i in APPS:
        assert base64.b64decode(_image_state(notebook, _app_output(notebook, i))) in pictures, f"cell {i}"
    page.screenshot(path=str(out / "5-nbviewer.png"), full_page=True)
    assert not body_errors(page), page.locator("body").inner_text()[-3000:]

    page.goto(static_html(notebook, out / "6-no-widget-state.html", False, js).as_uri())
    pngs = [img.get_attribute("src") for img in page.locator(".jp-OutputArea-output img").all()]
    for i in APPS:
        assert f"data:image/png;base64,{_app_output(notebook, i)['data']['image/png']}" in pngs, f"cell {i}"
    assert "it/s]" in page.locator("body").inner_text()  # fit's progress bars: as text lines
    page.screenshot(path=str(out / "6-no-widget-state.png"), full_page=True)
    assert not body_errors(page), page.locator("body").inner_text()[-3000:]
    page.close()
