"""The explorers, driven from Python without a browser, on real MNIST digits and a small conv net.

Every control is moved and the picture (the PNG bytes in the ``ipywidgets.Image``) must change; the widget
tree must hold no ``Output`` widget; the mimebundle carries the widget view, a text line and a PNG.
"""

import base64
import struct

import ipywidgets
import pytest
import torch
from matplotlib.patches import Rectangle
from torch import nn

from mnist_course import widgets
from mnist_course.data import to_model_input
from mnist_course.history import History
from mnist_course.mnist_files import load_mnist
from mnist_course.schedule import lr_schedule

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return load_mnist(train=False)[0][:12]


def small_net() -> nn.Sequential:
    """Conv(3) → pool → conv(3) → conv(3) → global pool: receptive fields 3, 4, 8, 12, jumps 1, 2, 2, 2."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
                         nn.Conv2d(6, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
                         nn.LogSoftmax(dim=1))


def _tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _tree(child)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG
    return struct.unpack(">II", data[16:24])


class Pictures:
    """Counts the pictures an app puts into its Image, and checks each one against the first's size."""

    def __init__(self, app):
        self.app, self.count, self.draws, self.size = app, 0, 0, _png_size(app.image.value)
        app.image.observe(self._new, names="value")
        draw = app._draw

        def counted(app):
            self.draws += 1
            return draw(app)

        app._draw = counted

    def _new(self, change):
        self.count += 1
        assert _png_size(change["new"]) == self.size, "the picture changed size"

    def moved(self, control, value) -> int:
        """Set ``control.value`` from Python; returns how many pictures followed (each drawn once); the last
        one must differ."""
        before, count, draws = self.app.image.value, self.count, self.draws
        control.value = value
        assert self.app.image.value != before, f"{control.description} = {value!r} did not change the picture"
        assert self.draws - draws == self.count - count, "a figure was drawn but not shown"
        return self.count - count


def check_app(app) -> None:
    """The rendering contract shared by all explorers."""
    tree = list(_tree(app.widget))
    assert not [w for w in tree if isinstance(w, ipywidgets.Output)], "an Output widget is in the tree"
    assert app.image in tree and app.image.format == "png"
    assert app.image.layout.width == f"{round(app.figure.get_figwidth() * widgets.DPI)}px"
    assert _png_size(app.image.value) == (round(app.figure.get_figwidth() * widgets.DPI),
                                          round(app.figure.get_figheight() * widgets.DPI))
    for box in (w for w in tree if isinstance(w, ipywidgets.HBox)):
        assert box.layout.flex_flow == "row wrap"
    for control in app.controls.values():
        assert control in tree
        if isinstance(control, (ipywidgets.IntSlider, ipywidgets.FloatSlider, ipywidgets.FloatLogSlider)):
            assert control.layout.min_width == "260px" and not control.continuous_update
    bundle = app._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.jupyter.widget-view+json", "text/plain", "image/png"}
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == app.widget.model_id
    assert base64.b64decode(bundle["image/png"]) == app.image.value


def _box(app) -> tuple[float, float, float, float]:
    (rect,) = [p for p in app.figure.axes[0].patches if isinstance(p, Rectangle)]
    return (*rect.get_xy(), rect.get_width(), rect.get_height())


def test_rf_explorer_every_control_redraws_the_field(images):
    app = widgets.rf_explorer(small_net(), images)
    check_app(app)
    c, pictures = app.controls, Pictures(app)
    assert c["layer"].value == "5"  # the deepest layer with more than one unit
    assert (c["row"].max, c["col"].max, c["row"].value, c["col"].value) == (8, 8, 4, 4)
    x, y, w, h = _box(app)
    assert (w, h) == (12, 12)
    assert pictures.moved(c["col"], 5) == 1 and _box(app) == (x + 2, y, w, h)  # one unit right: one jump
    assert pictures.moved(c["row"], 0) == 1 and _box(app)[1] == -0.5  # the field starts at the top edge
    assert pictures.moved(c["layer"], "0") == 1  # one picture, not one per re-centred slider
    assert (c["row"].max, c["col"].max, c["row"].value, c["col"].value) == (25, 25, 13, 13)
    assert _box(app) == (12.5, 12.5, 3, 3)
    heat = app.figure.axes[0].images[1]  # the effective field of exactly this unit: inside its 3×3 box
    rows, cols = heat.get_alpha().nonzero()
    assert rows.min() >= 13 and rows.max() <= 15 and cols.min() >= 13 and cols.max() <= 15
    digit = app.figure.axes[0].images[0]
    assert digit.get_cmap().name == "gray_r"
    assert (digit.get_array() == to_model_input(images[:1])[0, 0].numpy()).all()
    assert pictures.moved(c["image"], 3) == 1
    assert (app.figure.axes[0].images[0].get_array() == to_model_input(images[3:4])[0, 0].numpy()).all()
    assert pictures.moved(c["erf"], False) == 1 and len(app.figure.axes[0].images) == 1
    assert pictures.moved(c["layer"], "2") == 1 and (c["row"].max, c["row"].value) == (12, 6)
    check_app(app)


def test_rf_explorer_shows_a_field_larger_than_the_digit(images):
    model = nn.Sequential(*[m for _ in range(4) for m in (nn.Conv2d(1, 1, 5, padding=2), nn.MaxPool2d(2))])
    app = widgets.rf_explorer(model, images[:2], layer="6")
    ax = app.figure.axes[0]
    assert app.controls["layer"].value == "6" and _box(app)[2] > 28
    assert ax.get_xlim()[0] < -0.5 and ax.get_xlim()[1] > 27.5  # the view widens to the whole field


def test_feature_browser_every_control_shows_kernels_and_feature_map(images):
    model = small_net()
    app = widgets.feature_browser(model, images)
    check_app(app)
    c, pictures = app.controls, Pictures(app)
    assert [value for _, value in c["layer"].options] == ["0", "3", "5"]  # the Conv2d layers
    assert (c["layer"].value, c["channel"].max) == ("0", 3)
    assert len(app.figure.axes) == 5  # digit, kernels, feature map, two colour bars
    assert pictures.moved(c["layer"], "3") == 1 and (c["channel"].value, c["channel"].max) == (0, 5)
    assert pictures.moved(c["channel"], 4) == 1
    assert pictures.moved(c["image"], 2) == 1
    digit, kernels, fmap = (ax.images[0] for ax in app.figure.axes[:3])
    assert digit.get_cmap().name == "gray_r"
    with torch.no_grad():
        expected = model[:4](to_model_input(images[2:3]))[0, 4]
    assert torch.allclose(torch.as_tensor(fmap.get_array()), expected, atol=1e-5)
    mosaic = torch.as_tensor(kernels.get_array().filled(float("nan")))
    assert mosaic.shape == (7, 7)  # 4 input channels' 3×3 kernels in a 2×2 grid, one blank pixel apart
    assert torch.equal(mosaic[4:, 4:], model[3].weight[4, 3].detach())
    assert mosaic[3].isnan().all() and mosaic[:, 3].isnan().all()
    vmin, vmax = kernels.get_clim()
    assert vmin == -vmax == -model[3].weight[4].abs().max().item()  # a symmetric colour bar: 0 is white
    assert pictures.moved(c["layer"], "5") == 1 and c["channel"].max == 7
    check_app(app)


def test_feature_browser_shows_the_whole_kernel_of_a_layer_with_one_input(images):
    model = small_net()
    app = widgets.feature_browser(model, images)  # layer "0": one input channel, one 3×3 kernel per channel
    kernels = app.figure.axes[1].images[0]
    shown = torch.as_tensor(kernels.get_array().filled(float("nan")))
    assert torch.equal(shown, model[0].weight[0, 0].detach())


def _history(name: str, epochs: int, shift: float = 0.0) -> History:
    return History(name=name, train_loss=[1 / (e + 1) + shift for e in range(epochs)],
                   test_loss=[0.8 / (e + 1) + shift for e in range(epochs)],
                   train_acc=[90.0 + e - shift for e in range(epochs)],
                   test_acc=[91.0 + e - shift for e in range(epochs)])


def test_live_dashboard_starts_with_a_note_then_redraws_only_its_picture():
    dash = widgets.live_dashboard()
    check_app(dash)
    assert "first epoch" in dash.status.value and len(dash.figure.axes) == 4
    assert not any(ax.lines for ax in dash.figure.axes) and "no epoch" in dash.figure.get_suptitle()
    children, pictures = list(_tree(dash.widget)), Pictures(dash)
    history = History(name="run")
    for epoch in range(1, 4):
        history.train_loss.append(1 / epoch)
        history.test_loss.append(0.9 / epoch)
        history.train_acc.append(90.0 + epoch)
        history.test_acc.append(91.0 + epoch)
        if epoch % 2:
            dash(history, None)  # what fit does: callback(history, model)
        else:
            dash(history)  # the older callback(history)
        assert pictures.count == epoch
        assert all(len(ax.lines[0].get_xdata()) == epoch for ax in dash.figure.axes)
    assert "epoch 3" in dash.status.value and "94.00%" in dash.status.value
    assert list(_tree(dash.widget)) == children  # the same widgets: nothing else in the cell is touched
    check_app(dash)


def test_live_dashboard_with_a_history_shows_it_at_once():
    dash = widgets.live_dashboard(_history("done", 5))
    assert [len(ax.lines) for ax in dash.figure.axes] == [1, 1, 1, 1]
    assert list(dash.figure.axes[3].lines[0].get_ydata()) == [91, 92, 93, 94, 95]
    assert "epoch 5" in dash.status.value


def test_live_dashboard_as_the_callback_of_fit():
    from mnist_course.data import get_data
    from mnist_course.train import fit

    data = get_data(batch_size=64, train_size=128, test_size=64, device="cpu")
    dash = widgets.live_dashboard()
    pictures = Pictures(dash)
    history = fit(small_net(), data, 2, callbacks=[dash], progress="off", name="tiny")
    assert pictures.count == 2 and dash.history is history
    assert list(dash.figure.axes[3].lines[0].get_ydata()) == history.test_acc


def test_run_comparison_ticks_and_refresh(tmp_path):
    for i, name in enumerate(["a", "b", "c"]):
        _history(name, 3, i / 10).save(tmp_path / f"{name}.json")
    (tmp_path / "notes.json").write_text("[1, 2]")
    app = widgets.run_comparison(tmp_path)
    check_app(app)
    pictures = Pictures(app)
    assert list(app.controls) == ["a", "b", "c"] and all(box.value for box in app.controls.values())
    assert "3 run(s)" in app.status.value and "notes.json" in app.status.value
    assert all(len(ax.lines) == 3 for ax in app.figure.axes)
    assert pictures.moved(app.controls["b"], False) == 1
    assert [line.get_label() for line in app.figure.axes[3].lines] == ["a", "c"]
    _history("d", 2).save(tmp_path / "d.json")
    (button,) = [w for w in _tree(app.widget) if isinstance(w, ipywidgets.Button)]
    before = app.image.value
    button.click()
    assert app.image.value != before
    assert [n for n, box in app.controls.items() if box.value] == ["a", "c", "d"]
    for name in ("a", "c"):
        pictures.moved(app.controls[name], False)
    assert pictures.moved(app.controls["d"], False) == 1 and app.figure.get_suptitle() == "no run ticked"
    check_app(app)
    assert widgets.run_comparison(tmp_path / "none").figure.get_suptitle() == "no run saved yet"


def test_run_comparison_keeps_one_colour_per_run(tmp_path):
    for name in ("x", "y"):
        _history(name, 2).save(tmp_path / f"{name}.json")
    app = widgets.run_comparison(tmp_path)
    colours = {line.get_label(): line.get_color() for line in app.figure.axes[0].lines}
    app.controls["x"].value = False
    assert app.figure.axes[0].lines[0].get_color() == colours["y"] != colours["x"]


def _drawn(app) -> list[float]:
    return list(app.figure.axes[0].lines[0].get_ydata())


def test_lr_schedule_explorer_every_control_and_the_hidden_ones():
    app = widgets.lr_schedule_explorer(epochs=4, steps_per_epoch=10)
    check_app(app)
    c, pictures = app.controls, Pictures(app)
    shown = {name for name, control in c.items() if control.layout.display != "none"}
    assert shown == {"scheduler", "epochs", "pct_start"}
    assert len(_drawn(app)) == 40 and max(_drawn(app)) == pytest.approx(0.1)
    assert pictures.moved(c["pct_start"], 0.5) == 1
    assert _drawn(app).index(max(_drawn(app))) == pytest.approx(20, abs=1)  # the peak moved to mid-run
    assert pictures.moved(c["epochs"], 6) == 1 and len(_drawn(app)) == 60
    assert pictures.moved(c["scheduler"], "StepLR") == 1
    assert c["step_size"].layout.display is None and c["pct_start"].layout.display == "none"
    assert pictures.moved(c["step_size"], 2) == 1
    assert pictures.moved(c["gamma"], 0.1) == 1
    assert _drawn(app)[::10] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    assert "StepLR(optimizer, step_size=2, gamma=0.1)" in app.status.value
    assert pictures.moved(c["scheduler"], "ReduceLROnPlateau") == 1
    assert c["factor"].layout.display is None and c["gamma"].layout.display == "none"
    assert pictures.moved(c["patience"], 0) == 1
    assert _drawn(app)[::10] == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.0125, 0.00625])  # epoch 1: the best
    assert pictures.moved(c["factor"], 0.1) == 1
    assert _drawn(app)[::10][:4] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    assert pictures.moved(c["scheduler"], "constant") == 1 and set(_drawn(app)) == {0.1}
    hidden = ("step_size", "gamma", "factor", "pct_start", "patience")
    assert all(c[name].layout.display == "none" for name in hidden)
    assert app.status.value == "no scheduler: constant"
    check_app(app)


def test_lr_schedule_explorer_draws_what_fit_would_step():
    app = widgets.lr_schedule_explorer("OneCycleLR", epochs=6, steps_per_epoch=30)
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, epochs=6, steps_per_epoch=30,
                                                    pct_start=0.3)
    assert _drawn(app) == pytest.approx(lr_schedule(optimizer, scheduler, 30, 6))


def test_errors_name_the_problem(images):
    from mnist_course.errors import CourseError

    with pytest.raises(CourseError, match="no Conv2d"):
        widgets.feature_browser(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), images)
    with pytest.raises(CourseError, match="no Conv2d or pooling"):
        widgets.rf_explorer(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), images)


def test_a_saved_notebook_keeps_each_explorer_as_its_picture():
    """The save hook (``mnist_course_jupyter``) drops the widget view of an explorer's output, marked as such,
    and leaves every other output alone; an explorer's display carries the mark."""
    from mnist_course_jupyter import MARK, keep_pictures
    from mnist_course_jupyter import VIEW as view

    picture = {"image/png": "iVBORw0KGgo=", "text/plain": "<an interactive figure>"}
    explorer = {"output_type": "display_data", "data": {view: {"model_id": "a"}, **picture}, "metadata": MARK}
    other = {"output_type": "display_data", "data": {view: {"model_id": "b"}, **picture}, "metadata": {}}
    no_png = {"output_type": "display_data", "data": {view: {"model_id": "c"}}, "metadata": MARK}
    cells = [{"cell_type": "code", "outputs": [explorer, other, no_png]}, {"cell_type": "markdown"}]
    keep_pictures({"type": "notebook", "content": {"cells": cells}}, path="a.ipynb", contents_manager=None)
    assert explorer["data"] == picture
    assert view in other["data"] and view in no_png["data"]
    keep_pictures({"type": "file", "content": "text"}, path="a.txt")  # not a notebook: nothing to do

    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    with capture_output() as shown:
        widgets.lr_schedule_explorer()._ipython_display_()
    (output,) = shown.outputs
    assert output.metadata == MARK and set(output.data) == {view, *picture}


def test_the_classic_notebook_hook_runs_after_keeping_pictures_and_keeps_another_hook():
    """The classic Notebook 6 has one pre-save hook: the extension chains to one already set."""
    from types import SimpleNamespace

    from mnist_course_jupyter import MARK, VIEW, load_jupyter_server_extension

    seen = []
    app = SimpleNamespace(contents_manager=SimpleNamespace(pre_save_hook=lambda model, **kw: seen.append(kw)))
    load_jupyter_server_extension(app)
    output = {"data": {VIEW: {}, "image/png": "iVBORw0KGgo="}, "metadata": MARK}
    model = {"type": "notebook", "content": {"cells": [{"cell_type": "code", "outputs": [output]}]}}
    app.contents_manager.pre_save_hook(model=model, path="a.ipynb", contents_manager=None)
    assert set(output["data"]) == {"image/png"} and seen == [{"path": "a.ipynb", "contents_manager": None}]
