"""Every plot returns a Figure with the expected axes and data, and never touches pyplot."""

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torch.optim import lr_scheduler

from mnist_course import plots
from mnist_course.data import DeviceLoader, MNISTData, load_mnist, normalize
from mnist_course.history import History
from mnist_course.train import fit


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plot function registered a figure with pyplot"


def _history(name: str, epochs: int, offset: float = 0.0) -> History:
    h = History(name=name)
    for e in range(epochs):
        h.train_loss.append(1.0 / (e + 1) + offset)
        h.test_loss.append(0.8 / (e + 1) + offset)
        h.train_acc.append(90 + e + offset)
        h.test_acc.append(91 + e + offset)
        h.lr.append(0.01)
    return h


class Always(nn.Module):
    """Predicts the same class for every image."""

    def __init__(self, cls: int):
        super().__init__()
        self.cls = cls

    def forward(self, x):
        return F.log_softmax(F.one_hot(torch.full((len(x),), self.cls), 10).float() * 5, dim=1)


def test_plot_history_is_a_2x2_grid_of_one_curve_each():
    fig = plots.plot_history(_history("baseline", 5))
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Train loss", "Test loss", "Train accuracy (%)", "Test accuracy (%)"]
    assert all(len(ax.lines) == 1 for ax in fig.axes)
    assert list(fig.axes[3].lines[0].get_ydata()) == [91, 92, 93, 94, 95]
    assert list(fig.axes[0].lines[0].get_xdata()) == [1, 2, 3, 4, 5]


def test_plot_histories_overlays_lists_and_dicts():
    runs = [_history("a", 3), _history("b", 5, 1), _history("c", 4, 2)]
    fig = plots.plot_histories(runs)
    assert len(fig.axes) == 4 and all(len(ax.lines) == 3 for ax in fig.axes)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a", "b", "c"]
    fig = plots.plot_histories({"one": runs[0], "two": runs[1]})
    assert [line.get_label() for line in fig.axes[2].lines] == ["one", "two"]
    assert len(plots.plot_histories({}).axes) == 4


def test_plot_misclassified_titles_true_and_predicted():
    images = torch.randint(0, 256, (30, 28, 28), dtype=torch.uint8)
    labels = torch.arange(30) % 10
    fig = plots.plot_misclassified(Always(3), images, labels, n=8, ncols=4)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 8
    wrong = [i for i in range(30) if labels[i] != 3][:8]
    assert [ax.get_title() for ax in shown] == [f"{labels[i].item()} → 3" for i in wrong]
    assert (shown[0].images[0].get_array() == images[wrong[0]].numpy()).all()  # uint8 shown as given
    assert "27 of 30" in fig._suptitle.get_text()
    # normalised input is accepted as well and gives the same mistakes
    fig = plots.plot_misclassified(Always(3), normalize(images), labels, n=8, ncols=4)
    assert [ax.get_title() for ax in fig.axes if ax.images][:2] == [f"{labels[i].item()} → 3" for i in wrong[:2]]
    fig = plots.plot_misclassified(Always(3), images[:4], torch.full((4,), 3))
    assert len(fig.axes) == 1 and "no mistakes" in fig.axes[0].texts[0].get_text()


def test_plot_confusion_matrix_from_predictions_or_model():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    preds = torch.tensor([0, 1, 1, 1, 2, 2])
    cm = plots.confusion_matrix(preds, labels, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    fig = plots.plot_confusion_matrix(preds, labels, num_classes=3)
    ax = fig.axes[0]
    cells = {(t.get_position()[1], t.get_position()[0]): t.get_text() for t in ax.texts}
    assert cells == {(0, 0): "1", (0, 1): "1", (1, 1): "2", (1, 2): "1", (2, 2): "1"}
    assert "4/6" in ax.get_title()
    images = torch.randint(0, 256, (20, 28, 28), dtype=torch.uint8)
    fig = plots.plot_confusion_matrix(Always(7), images, torch.arange(20) % 10)
    cells = {(t.get_position()[1], t.get_position()[0]): t.get_text() for t in fig.axes[0].texts}
    assert set(cells.values()) == {"2"} and all(col == 7 for _, col in cells)


def test_plot_kernels_one_tile_per_kernel():
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Conv2d(6, 4, 5))
    fig = plots.plot_kernels(model, "0")
    tiles = [ax for ax in fig.axes if ax.images]
    assert len(tiles) == 6
    assert (tiles[2].images[0].get_array() == model[0].weight[2, 0].detach().numpy()).all()
    fig = plots.plot_kernels(model, "2")
    tiles = [ax for ax in fig.axes if ax.images]
    assert len(tiles) == 4 * 6 and tiles[7].get_title() == "1←1"
    assert tiles[0].images[0].get_array().shape == (5, 5)
    with pytest.raises(TypeError, match="not a Conv2d"):
        plots.plot_kernels(model, "1")


def test_plot_feature_maps_shows_the_layer_output():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 5, 3), nn.ReLU(), nn.MaxPool2d(2))
    image = load_mnist(train=False)[0][0]
    fig = plots.plot_feature_maps(model, "2", image)
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == 1 + 5 and maps[0].get_title() == "input"
    expected = model(normalize(image[None]))[0]
    assert torch.allclose(torch.as_tensor(maps[3].images[0].get_array()), expected[2], atol=1e-6)
    assert "13×13" in fig._suptitle.get_text()


def _tiny_data(n_train: int = 64, batch: int = 16) -> MNISTData:
    images, labels = load_mnist(train=False)
    train = DeviceLoader(images[:n_train], labels[:n_train], batch, shuffle=True)
    test = DeviceLoader(images[n_train:n_train + 32], labels[n_train:n_train + 32], 32, shuffle=False)
    return MNISTData(train=train, test=test, device=torch.device("cpu"), pipeline="device",
                     train_images=n_train, test_images=32)


@pytest.mark.parametrize("kind", ["onecycle", "step", "plateau", "none"])
def test_lr_schedule_matches_what_fit_does(kind, monkeypatch):
    monkeypatch.delenv("MNIST_COURSE_SMOKE", raising=False)
    epochs, steps = 4, 4

    def make(model=None):
        model = model or nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.LogSoftmax(1))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        sched = {"onecycle": lambda: lr_scheduler.OneCycleLR(opt, 0.1, epochs=epochs - 1, steps_per_epoch=steps),
                 "step": lambda: lr_scheduler.StepLR(opt, 2, 0.5),
                 "plateau": lambda: lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0),
                 "none": lambda: None}[kind]()
        return model, opt, sched

    torch.manual_seed(0)
    model, opt, sched = make()
    history = fit(model, _tiny_data(), epochs, optimizer=opt, scheduler=sched, progress=False, verbose=False)
    lrs = plots.lr_schedule(lambda: make()[1:], steps, epochs, losses=history.test_loss)
    assert lrs == pytest.approx(history.lr_per_step)
    fig = plots.plot_lr_schedule(lambda: make()[1:], steps, epochs, losses=history.test_loss)
    assert len(fig.axes) == 1 and list(fig.axes[0].lines[0].get_ydata()) == pytest.approx(lrs)
    assert fig.axes[0].lines[0].get_xdata()[-1] == pytest.approx((epochs * steps - 1) / steps)


def test_lr_schedule_leaves_a_given_pair_untouched():
    param = nn.Parameter(torch.ones(3))
    param.grad = torch.ones(3)  # left over from training: must not be applied
    opt = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100)
    before = (opt.param_groups[0]["lr"], sched.last_epoch)
    lrs = plots.lr_schedule((opt, sched), 25, 4)
    assert len(lrs) == 100 and max(lrs) == pytest.approx(0.1)
    assert (opt.param_groups[0]["lr"], sched.last_epoch) == before
    assert torch.equal(param.data, torch.ones(3))
    # a constant loss makes ReduceLROnPlateau cut after every `patience + 1` epochs
    opt = torch.optim.SGD([param], lr=1.0)
    lrs = plots.lr_schedule((opt, lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)), 1, 6)
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]
