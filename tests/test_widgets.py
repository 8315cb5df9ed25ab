"""The widgets, driven from Python without a browser: setting a control redraws `.figure`."""

import base64

import pytest
import torch
from matplotlib.patches import Rectangle
from torch import nn

from mnist_course import widgets
from mnist_course.data import load_mnist
from mnist_course.history import History
from mnist_course.models import get_model
from mnist_course.receptive_field import receptive_field_table


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return load_mnist(train=False)[0][:12]


def _box(app) -> tuple[float, float, float, float]:
    (rect,) = [p for p in app.figure.axes[0].patches if isinstance(p, Rectangle)]
    x, y = rect.get_xy()
    return (x, y, rect.get_width(), rect.get_height())


def test_rf_explorer_moves_and_resizes_the_box(images):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), nn.ReLU(),
                          nn.Conv2d(4, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    app = widgets.rf_explorer(model, images)
    c = app.controls
    assert c["layer"].value == "5"  # the deepest layer with more than one unit
    assert (c["row"].max, c["col"].max, c["row"].value) == (8, 8, 4)
    x, y, w, h = _box(app)
    assert (w, h) == (12, 12)  # rf of layer 5: 3, 4, 8, 12
    c["col"].value = 5
    assert _box(app) == (x + 2, y, w, h)  # one unit right = one jump (2 pixels)
    c["row"].value = 0
    assert _box(app)[1] == -0.5  # top row of units: the field starts at the image's top edge
    c["layer"].value = "0"
    assert (c["row"].max, c["col"].max) == (25, 25) and (c["row"].value, c["col"].value) == (13, 13)
    assert _box(app) == (12.5, 12.5, 3, 3)
    # the heat map is the effective field of exactly this unit, on the shown digit
    heat = app.figure.axes[0].images[1].get_array()
    rows, cols = heat[:, :, 3].nonzero()
    assert rows.min() >= 13 and rows.max() <= 15 and cols.min() >= 13 and cols.max() <= 15
    c["erf"].value = False
    assert len(app.figure.axes[0].images) == 1
    before = app.figure.axes[0].images[0].get_array().copy()
    c["image"].value = 3
    assert (app.figure.axes[0].images[0].get_array() != before).any()


def test_rf_explorer_on_a_registry_model_reaches_outside_the_image(images):
    app = widgets.rf_explorer(get_model("ref002"), images)
    table = receptive_field_table(get_model("ref002"))
    last = table[app.controls["layer"].value]
    assert (last.type, last.out_size, last.rf) == ("MaxPool2d", (3, 3), 38)  # the last layer before GAP
    ax = app.figure.axes[0]
    assert ax.get_xlim()[0] < -0.5 and ax.get_xlim()[1] > 27.5  # a 38-pixel field exceeds the digit
    assert _box(app)[2] == 38
    redraws = app.redraws
    app.controls["layer"].value = app.controls["layer"].options[0][1]  # one redraw, not one per slider
    assert app.redraws == redraws + 1


def test_feature_browser_shows_kernel_and_feature_map(images):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 6, 3))
    app = widgets.feature_browser(model, images)
    assert app.controls["layer"].value == "0" and app.controls["channel"].max == 2
    assert len(app.figure.axes) == 4  # digit, kernel, feature map, colorbar
    app.controls["layer"].value = "3"
    app.controls["channel"].value = 4
    app.controls["image"].value = 2
    model.eval()
    expected = model(((images[2:3].float() / 255 - 0.1307) / 0.3081).unsqueeze(1))[0, 4]
    assert torch.allclose(app.feature_map, expected.detach(), atol=1e-5)
    shown = app.figure.axes[2].images[0].get_array()
    assert shown.shape == (24, 24)
    kernel = app.figure.axes[1].images[0].get_array()
    assert kernel.shape == (3 + 1 + 3, 3 + 1 + 3)  # 3 input channels in a 2×2 grid
    app.controls["layer"].value = "2"
    assert app.controls["channel"].value == 0 and "no kernel" in app.figure.axes[1].texts[0].get_text()


def test_live_dashboard_redraws_after_each_epoch():
    dash = widgets.live_dashboard()
    assert dash.widget is not None and len(dash.figure.axes) == 4
    history = History(name="run")
    for epoch in range(1, 4):
        for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
            getattr(history, key).append(float(epoch))
        dash(history)  # what fit does after every epoch
        assert all(len(ax.lines[0].get_xdata()) == epoch for ax in dash.figure.axes)
    assert "epoch 3" in dash.status.value


def test_live_dashboard_as_a_fit_callback(monkeypatch, images):
    from mnist_course.data import DeviceLoader, MNISTData
    from mnist_course.train import fit

    monkeypatch.delenv("MNIST_COURSE_SMOKE", raising=False)
    all_images, labels = load_mnist(train=False)
    data = MNISTData(train=DeviceLoader(all_images[:64], labels[:64], 32, shuffle=True),
                     test=DeviceLoader(all_images[64:96], labels[64:96], 32, shuffle=False),
                     device=torch.device("cpu"), pipeline="device", train_images=64, test_images=32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10),
                          nn.LogSoftmax(dim=1))
    dash = widgets.live_dashboard()
    history = fit(model, data, 2, callbacks=[dash], progress=False, verbose=False)
    assert dash.history is history and dash.redraws == 1 + 2
    assert list(dash.figure.axes[3].lines[0].get_ydata()) == history.test_acc


def test_run_comparison_follows_the_check_boxes(tmp_path):
    for i, name in enumerate(["a", "b", "c"]):
        h = History(name=name, train_loss=[1.0, 0.5], test_loss=[1.0, 0.4], train_acc=[90, 95 + i],
                    test_acc=[91, 96 + i])
        h.save(tmp_path / f"{name}.json")
    (tmp_path / "notes.json").write_text("[1, 2]")
    app = widgets.run_comparison(tmp_path)
    assert list(app.controls) == ["a", "b", "c"] and "notes.json" in app.message.value
    assert all(len(ax.lines) == 3 for ax in app.figure.axes)
    app.controls["b"].value = False
    assert [line.get_label() for line in app.figure.axes[3].lines] == ["a", "c"]
    History(name="d", test_acc=[99.0]).save(tmp_path / "d.json")
    app.refresh()
    assert app.selected == ["a", "c", "d"]  # the unticked run stays unticked, the new one is ticked
    for box in app.controls.values():
        box.value = False
    assert len(app.figure.axes[0].lines) == 0 and "no run selected" in app.figure._suptitle.get_text()
    assert "no *.json" in widgets.run_comparison(tmp_path / "empty").figure._suptitle.get_text()


def test_lr_schedule_explorer_redraws_each_scheduler():
    app = widgets.lr_schedule_explorer(epochs=10, steps_per_epoch=20)
    line = app.figure.axes[0].lines[0].get_ydata()
    assert len(line) == 200 and max(line) == pytest.approx(0.1)
    c = app.controls
    assert c["pct_start"].layout.display is None and c["step_size"].layout.display == "none"
    c["scheduler"].value = "StepLR"
    c["step_size"].value = 3
    c["gamma"].value = 0.5
    line = app.figure.axes[0].lines[0].get_ydata()
    assert line[0] == pytest.approx(0.1) and line[3 * 20] == pytest.approx(0.05) and line[-1] == pytest.approx(0.0125)
    assert c["step_size"].layout.display is None and c["pct_start"].layout.display == "none"
    assert "StepLR(optimizer, step_size=3, gamma=0.5)" in app.code.value
    c["epochs"].value = 4
    assert len(app.figure.axes[0].lines[0].get_ydata()) == 80
    c["scheduler"].value = "ReduceLROnPlateau"
    c["patience"].value = 0
    line = app.figure.axes[0].lines[0].get_ydata()
    assert [line[20 * e] for e in range(4)] == pytest.approx([0.1, 0.1, 0.05, 0.025])  # epoch 1 sets the best


def test_apps_display_as_a_widget_with_a_static_png_fallback(images):
    app = widgets.rf_explorer(get_model("final"), images[:2])
    bundle = app._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == app.widget.model_id
    assert base64.b64decode(bundle["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "text/plain" in bundle
