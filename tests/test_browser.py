"""Real browsers drive both front ends through the course notebooks that hold explorers, then re-open them.

Each test serves copies of the course notebooks 01, 04 and 05 (between them every explorer:
``feature_browser``, ``rf_explorer``, ``lr_schedule_explorer``, ``live_dashboard``, ``run_comparison``) from
its own environment, in quick mode, opens each in headless Chromium through Playwright and:

1. runs all cells from the menu; each explorer's picture is a loaded PNG in an ``Image`` (no ``Output``
   widget); the live dashboard shows the last epoch; no error text, stderr output or console error;
2. moves a control of every explorer (a slider of ``rf_explorer`` and ``feature_browser``, the scheduler
   of ``lr_schedule_explorer``, which shows and hides sliders, a tick box of ``run_comparison``): the
   picture changes, and keeps its size and place;
3. narrows the window to 600 px: control rows wrap, sliders keep their width, pictures fit;
4. saves the notebook as a person would (File → Save) and checks the file: the save hook of
   ``mnist_course_jupyter`` (enabled by the config files the package installs, ``jupyter-config/``) left each
   explorer's output as its PNG and text, without the widget view; the dashboard's PNG is its final curves.
   Then it serves the folder again and re-opens each notebook, with a new kernel and with none ("No Kernel" /
   "Continue Without Kernel"): every explorer shows the saved PNG, never "Loading widget..." or an error box;
5. renders, as nbviewer does (nbconvert HTML with the html-manager), the saved file and the committed one
   (widget views, no widget state: what a clone, GitHub and nbviewer show): every explorer's PNG, no error.

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
    EXPLORER_NOTEBOOKS,
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

from mnist_course_jupyter import VIEW, is_explorer

REPO = Path(__file__).resolve().parent.parent
EXPLORERS = ("feature_browser", "rf_explorer", "lr_schedule_explorer", "live_dashboard", "run_comparison")
SCREENSHOTS = REPO / "test-output" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BADGE = '<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20"><rect width="117" height="20"/></svg>'


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


def _explorers(notebook: dict) -> dict[int, str]:
    """Cell index → the explorer it shows: code cells whose committed outputs hold a widget view."""
    found = {}
    for i, cell in enumerate(notebook["cells"]):
        if any(VIEW in o.get("data", {}) for o in cell.get("outputs", [])):
            (found[i],) = [name for name in EXPLORERS if f"{name}(" in "".join(cell["source"])]
    return found


def test_the_course_notebooks_show_every_explorer():
    shown = [name for path in EXPLORER_NOTEBOOKS for name in _explorers(json.loads(path.read_text())).values()]
    assert sorted(shown) == sorted(EXPLORERS)


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
    for path in EXPLORER_NOTEBOOKS:
        shutil.copy(path, root / path.name)
    # The save hook's config files as the package installs them into etc/jupyter (pyproject's data-files).
    env = jupyter_env(tmp_path, MNIST_COURSE_SMOKE="1", JUPYTER_CONFIG_PATH=str(REPO / "jupyter-config"))
    js = envs.ensure_js()
    log = tmp_path / "server.log"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"])
        try:
            first = {}
            port, token = free_port(), new_token()
            with serve(fe.command(bin_dir, port, token, root), env, log, port, token):
                for path in EXPLORER_NOTEBOOKS:
                    page, errors = _page(browser, fe, port, token, path.name)
                    apps = _explorers(json.loads(path.read_text()))
                    _run_all(fe, page)
                    first[path.name] = _check_live(fe, page, errors, apps, out / path.stem)
                    _save(fe, page, root / path.name)
                    page.close()
            saved = {path.name: json.loads((root / path.name).read_text()) for path in EXPLORER_NOTEBOOKS}
            for name, notebook in saved.items():
                _check_saved(notebook, first[name])
            for reopen, kernels in (("new-kernel", True), ("no-kernel", False)):
                port, token = free_port(), new_token()
                with serve(fe.command(bin_dir, port, token, root, kernels=kernels), env, log, port, token):
                    for path in EXPLORER_NOTEBOOKS:
                        page, errors = _page(browser, fe, port, token, path.name)
                        _check_reopened(fe, page, saved[path.name], out / f"{path.stem}-4-{reopen}", kernels, errors)
                        page.close()
            for path in EXPLORER_NOTEBOOKS:
                _check_static(browser, saved[path.name], js, out / f"{path.stem}-5-saved")
                _check_static(browser, json.loads(path.read_text()), js, out / f"{path.stem}-5-committed")
        finally:
            browser.close()


def _new_page(browser):
    """A page; the notebooks' "Open in Colab" badge is served locally (this machine is offline)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.route("https://colab.research.google.com/**", lambda route: route.fulfill(
        body=BADGE, content_type="image/svg+xml"))
    return page


def _page(browser, fe: FrontEnd, port: int, token: str, name: str):
    """The notebook's page, and the list its page errors and console errors go to."""
    page = _new_page(browser)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and errors.append(f"console: {msg.text}"))
    page.goto(f"http://127.0.0.1:{port}/{fe.url.format(name=name)}{'&' if '?' in fe.url else '?'}token={token}")
    return page, errors


def _cell(fe: FrontEnd, page, index: int):
    return page.locator(fe.cell).nth(index)


def _run_all(fe: FrontEnd, page) -> None:
    """Wait for the kernel, run all cells from the menu, wait until the last code cell has run."""
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
    from playwright.sync_api import TimeoutError as Timeout

    try:
        page.wait_for_function("sel => { const p = document.querySelectorAll(sel);"
                               " return p.length && /\\[\\d+\\]/.test(p[p.length - 1].textContent); }",
                               arg=fe.prompt, timeout=400_000)
    except Timeout:
        raise AssertionError(f"the notebook did not run to its end: {body_errors(page)}") from None
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


def _changes(page, app, img, action, what: str) -> None:
    """Do ``action``; the picture must change, keeping its size and its place in the app."""
    src, before, place = img.get_attribute("src"), picture(img), _place(app, img)
    action()
    page.wait_for_function("([img, old]) => img.src !== old && img.complete && img.naturalWidth > 0",
                           arg=[img.element_handle(), src], timeout=60_000)
    assert picture(img) != before, f"{what}: the picture stayed the same"
    assert _place(app, img) == place, f"{what}: the picture moved or changed size"


def _slide(page, app, name: str) -> None:
    slider = app.locator(".widget-slider").filter(has_text=name)
    slider.locator(".noUi-handle, .ui-slider-handle").first.focus()  # ipywidgets 8 / 7
    page.keyboard.press("ArrowRight")


def _move(page, kind: str, app, img) -> None:
    """Step 2 for one explorer."""
    if kind == "rf_explorer":
        col = app.locator(".widget-slider").filter(has_text="col").locator(".widget-readout")
        before = int(col.inner_text())
        _changes(page, app, img, lambda: _slide(page, app, "col"), kind)
        assert int(col.inner_text()) == before + 1
    elif kind == "feature_browser":
        _changes(page, app, img, lambda: _slide(page, app, "channel"), kind)
    elif kind == "lr_schedule_explorer":
        visible = app.locator(".widget-slider:visible")
        names = visible.all_inner_texts()
        assert any("pct_start" in n for n in names) and not any("step_size" in n for n in names), names
        _changes(page, app, img, lambda: app.locator("select").first.select_option(label="StepLR"), kind)
        names = visible.all_inner_texts()  # sliders appeared and disappeared below the picture
        assert any("step_size" in n for n in names) and not any("pct_start" in n for n in names), names
    elif kind == "run_comparison":
        boxes = app.locator(".widget-checkbox input")
        assert boxes.count() >= 2, "run_comparison found fewer than two runs"
        _changes(page, app, img, lambda: boxes.first.click(), kind)
    else:  # live_dashboard: no control; it followed fit to its last epoch, drawn anew once, not twice
        assert "epoch 1," in app.locator(".widget-html").last.inner_text()
        assert app.locator("img.widget-image").count() == 1


def _check_live(fe: FrontEnd, page, errors: list[str], explorers: dict[int, str], out: Path) -> dict[int, str]:
    """Steps 1–3 on one notebook; returns each explorer's picture as first shown (base64 PNG)."""
    apps = {i: _app(fe, page, i) for i in explorers}
    first = {i: picture(img) for i, (_app_box, img) in apps.items()}
    for i, (app, img) in apps.items():
        app.screenshot(path=str(out.with_name(f"{out.name}-1-cell{i}.png")))
        assert app.locator(".widget-output").count() == 0, "an Output widget"
    _no_errors(fe, page, errors)
    for i, (app, img) in apps.items():
        _move(page, explorers[i], app, img)
        app.screenshot(path=str(out.with_name(f"{out.name}-2-moved-cell{i}.png")))
    _no_errors(fe, page, errors)

    if fe is JUPYTERLAB:  # hide the file browser, as on a small screen
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
    page.set_viewport_size({"width": 600, "height": 1100})
    page.wait_for_timeout(800)
    for i, (app, img) in apps.items():
        app.scroll_into_view_if_needed()
        if explorers[i] != "live_dashboard":  # the dashboard has no controls
            row = app.locator(".widget-hbox").first.bounding_box()
            boxes = [c.bounding_box() for c in app.locator(".widget-hbox").first.locator(":scope > *:visible").all()]
            assert all(b["x"] >= row["x"] - 1 and b["x"] + b["width"] <= row["x"] + row["width"] + 1
                       for b in boxes), (i, row, boxes)  # nothing sticks out of the row: it wraps
            sliders = [s.bounding_box() for s in app.locator(".widget-slider:visible").all()]
            assert all(s["width"] >= 250 for s in sliders), (i, sliders)  # no slider shrinks to a bare handle
        box = img.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 600, (i, box)
        app.screenshot(path=str(out.with_name(f"{out.name}-3-narrow-cell{i}.png")))
        if explorers[i] == "rf_explorer":
            rows = {round(s.bounding_box()["y"]) for s in app.locator(".widget-slider").all()}
            assert len(rows) >= 2, "rf_explorer's sliders did not wrap at 600 px"
    page.set_viewport_size({"width": 1400, "height": 1100})
    _no_errors(fe, page, errors)
    if "live_dashboard" in explorers.values():  # its PNG is replaced by the final curves: compare with those
        (i,) = [i for i, kind in explorers.items() if kind == "live_dashboard"]
        first[i] = picture(apps[i][1])
    return first


def _save(fe: FrontEnd, page, saved: Path) -> None:
    """File → Save, as a person would (no widget state); wait for the file to change."""
    mtime = saved.stat().st_mtime
    if fe is JUPYTERLAB:
        page.get_by_role("menuitem", name="File", exact=True).click()
        page.get_by_text("Save Notebook", exact=True).first.click()
    else:
        page.locator("#filelink").click()
        page.locator("#save_checkpoint").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and saved.stat().st_mtime == mtime:
        time.sleep(0.25)
    time.sleep(0.5)  # the write that changed the time may still be going on
    assert saved.stat().st_mtime != mtime, f"{saved.name} was not saved"


def _marked(notebook: dict) -> list[int]:
    """The cells with an explorer's output, marked for the save hook."""
    return [i for i, cell in enumerate(notebook["cells"])
            if any(is_explorer(o) for o in cell.get("outputs", []))]


def _png(notebook: dict, index: int) -> str:
    (output,) = [o for o in notebook["cells"][index]["outputs"] if "image/png" in o.get("data", {}) and is_explorer(o)]
    return output["data"]["image/png"]


def _check_saved(notebook: dict, first: dict[int, str]) -> None:
    """Each explorer's saved output: its PNG (the picture first shown; the dashboard's final curves) and
    text, and no widget view, which would need the kernel that drew it."""
    assert _marked(notebook) == sorted(first), "not every explorer's output is marked for the save hook"
    for i, png in first.items():
        outputs = notebook["cells"][i]["outputs"]
        assert not any(VIEW in o.get("data", {}) for o in outputs), f"cell {i}: the widget view was saved"
        assert base64.b64decode(_png(notebook, i)) == base64.b64decode(png), f"cell {i}: not its picture"


def _check_reopened(fe: FrontEnd, page, notebook: dict, out: Path, kernels: bool, errors: list[str]) -> None:
    """Step 4, in a new server, with a new kernel or none: every explorer shows its saved PNG."""
    if not kernels and fe is JUPYTERLAB:
        dialog = page.locator(".jp-Dialog")  # "Select Kernel": the notebook's kernel is not there
        dialog.wait_for(timeout=60_000)
        dialog.get_by_role("button", name="No Kernel").click()
    elif not kernels:
        page.get_by_text("Continue Without Kernel").click(timeout=60_000)  # "Kernel not found"
    for i in _marked(notebook):
        cell = _cell(fe, page, i)
        img = cell.locator(f"{fe.output} img").first
        img.wait_for(timeout=60_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle(),
                               timeout=30_000)
        assert base64.b64decode(picture(img)) == base64.b64decode(_png(notebook, i)), f"cell {i}: not the saved PNG"
        assert "Loading widget" not in cell.inner_text(), f"cell {i}"
        cell.screenshot(path=str(out.with_name(f"{out.name}-cell{i}.png")))
    assert not body_errors(page), page.locator("body").inner_text()[-3000:]
    if kernels:
        _no_errors(fe, page, errors)


def _check_static(browser, notebook: dict, js: dict, out: Path) -> None:
    """Step 5: nbconvert's HTML with the html-manager, as nbviewer renders it: each explorer's PNG."""
    page = _new_page(browser)
    page.goto(static_html(notebook, out.with_suffix(".html"), True, js).as_uri())
    pngs = [img.get_attribute("src") for img in page.locator(".jp-OutputArea-output img").all()]
    for i, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            if VIEW in output.get("data", {}) or is_explorer(output):
                assert f"data:image/png;base64,{output['data']['image/png']}" in pngs, f"cell {i}"
    page.screenshot(path=str(out.with_suffix(".png")), full_page=True)
    assert not body_errors(page), page.locator("body").inner_text()[-3000:]
    page.close()
