"""Every plot returns a Figure with the expected axes and data, prints nothing and never touches pyplot."""

import math

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.optim import lr_scheduler

from mnist_course import plots
from mnist_course.data import normalize
from mnist_course.history import History
from mnist_course.mnist_files import load_mnist
from mnist_course.schedule import lr_schedule
from mnist_course.train import predict


@pytest.fixture(autouse=True)
def quiet_and_without_pyplot(capsys):
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plot function registered a figure with pyplot"
    assert capsys.readouterr() == ("", ""), "a plot function printed"


@pytest.fixture(scope="module")
def test_set() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_mnist(train=False)
    return images[:300], labels[:300]


def _history(name: str, epochs: int, offset: float = 0.0) -> History:
    h = History(name=name)
    for e in range(epochs):
        h.train_loss.append(1.0 / (e + 1) + offset)
        h.test_loss.append(0.8 / (e + 1) + offset)
        h.train_acc.append(90 + e + offset)
        h.test_acc.append(91 + e + offset)
    return h


def test_figures_show_as_png_in_any_notebook():
    fig = plots.plot_histories(_history("a", 2))
    assert isinstance(fig, Figure) and fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.png(dpi=50)[16:24] == (500).to_bytes(4, "big") + (325).to_bytes(4, "big")  # figsize × dpi
    gone = ("plot_history", "plot_kernels", "plot_feature_maps", "predict", "layer_output", "lr_schedule")
    assert [name for name in gone if hasattr(plots, name)] == [], "these should have moved or gone"


def test_plot_histories_of_one_run_is_titled_by_its_name():
    fig = plots.plot_histories(_history("baseline", 5))
    assert [ax.get_title() for ax in fig.axes] == ["Train loss", "Test loss", "Train accuracy (%)",
                                                   "Test accuracy (%)"]
    assert all(len(ax.lines) == 1 for ax in fig.axes) and fig.get_suptitle() == "baseline"
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert list(fig.axes[3].lines[0].get_ydata()) == [91, 92, 93, 94, 95]
    assert list(fig.axes[0].lines[0].get_xdata()) == [1, 2, 3, 4, 5]
    assert tuple(fig.get_size_inches()) == (10, 6.5)


def test_plot_histories_overlays_lists_and_dicts_with_one_colour_per_name():
    runs = [_history("a", 3), _history("b", 5, 1), _history("c", 4, 2)]
    fig = plots.plot_histories(runs, title="three")
    assert fig.get_suptitle() == "three" and all(len(ax.lines) == 3 for ax in fig.axes)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a", "b", "c"]
    colours = {line.get_label(): line.get_color() for line in fig.axes[0].lines}
    assert len(set(colours.values())) == 3
    fig = plots.plot_histories({"c": runs[2], "new": runs[0], "a": runs[1]})  # another order, another figure
    for ax in fig.axes:
        assert {line.get_label(): line.get_color() for line in ax.lines if line.get_label() != "new"} == {
            "c": colours["c"], "a": colours["a"]}
    assert plots.run_color("new") not in colours.values()
    assert [len(ax.lines) for ax in plots.plot_histories({}).axes] == [0, 0, 0, 0]
    assert tuple(plots.plot_histories([]).get_size_inches()) == (10, 6.5)  # live plots rely on it


def test_plot_misclassified_titles_true_and_predicted(tiny_net, test_set):
    images, labels = test_set
    preds = predict(tiny_net, images)
    wrong = (preds != labels).nonzero().flatten().tolist()
    assert len(wrong) > 8
    fig = plots.plot_misclassified(tiny_net, images, labels, n=8)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 8 and len(fig.axes) == 8
    assert [ax.get_title() for ax in shown] == [f"{labels[i].item()} → {preds[i].item()}" for i in wrong[:8]]
    assert (shown[0].images[0].get_array() == images[wrong[0]].numpy()).all()  # uint8 shown as given
    assert all(ax.images[0].get_cmap().name == "gray_r" for ax in shown)
    assert f"{len(wrong)} of 300" in fig.get_suptitle()
    fig = plots.plot_misclassified(tiny_net, normalize(images), labels, n=3)  # normalised: same mistakes
    assert [ax.get_title() for ax in fig.axes if ax.images] == [ax.get_title() for ax in shown[:3]]
    fig = plots.plot_misclassified(tiny_net, images[:20], preds[:20])
    assert len(fig.axes) == 1 and "no mistakes on these 20 images" in fig.axes[0].texts[0].get_text()


def test_plot_confusion_matrix_counts_the_predictions(tiny_net, test_set):
    images, labels = test_set
    preds = predict(tiny_net, images)
    fig = plots.plot_confusion_matrix(tiny_net, images, labels)
    ax = fig.axes[0]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
    expected = {}
    for t, p in zip(labels.tolist(), preds.tolist()):
        expected[(t, p)] = expected.get((t, p), 0) + 1
    assert cells == expected
    shown = ax.images[0].get_array()
    assert shown.mask.diagonal().all() and not shown.mask.all()  # only mistakes are coloured
    correct = (preds == labels).sum().item()
    assert f"{correct}/300 correct ({100 * correct / 300:.2f}%)" in ax.get_title()
    assert len(fig.axes) == 2  # the matrix and its colour bar


@pytest.mark.parametrize("kind", ["onecycle", "step", "plateau", "none"])
def test_plot_lr_schedule_draws_schedule_lr_schedule(kind):
    param = nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([param], lr=0.05, momentum=0.9)
    sched = {"onecycle": lambda: lr_scheduler.OneCycleLR(opt, 0.1, epochs=3, steps_per_epoch=5),
             "step": lambda: lr_scheduler.StepLR(opt, 2, 0.5),
             "plateau": lambda: lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0),
             "none": lambda: None}[kind]()
    before = (opt.param_groups[0]["lr"], sched.state_dict() if sched else None)
    expected = lr_schedule(opt, sched, 5, 4)
    fig = plots.plot_lr_schedule(opt, sched, steps_per_epoch=5, epochs=4, title=kind)
    (line,) = fig.axes[0].lines
    assert list(line.get_ydata()) == pytest.approx(expected) and len(expected) == 20
    assert list(line.get_xdata()) == pytest.approx([i / 5 for i in range(20)])  # x in epochs
    assert fig.axes[0].get_title().startswith(f"{kind}: 20 steps")
    assert (opt.param_groups[0]["lr"], sched.state_dict() if sched else None) == before
    fig = plots.plot_lr_schedule((opt, sched), steps_per_epoch=5, epochs=4)
    assert list(fig.axes[0].lines[0].get_ydata()) == pytest.approx(expected)  # an (optimizer, scheduler) pair


def test_plot_lr_schedule_of_a_cycle_shorter_than_the_run():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=10)
    lrs = list(plots.plot_lr_schedule(opt, sched, steps_per_epoch=10, epochs=3).axes[0].lines[0].get_ydata())
    assert max(lrs) == pytest.approx(0.1) and lrs[20:] == [lrs[19]] * 10  # the lowest rate is held
    assert not math.isclose(lrs[0], lrs[19])


def test_plot_frontier_marks_each_model_at_its_mean_with_one_std_and_its_seed_count():
    points = [{"name": "a", "parameters": 3000, "min_last3": [99.0, 99.2], "seeds": [1, 2], "kind": "course"},
              {"name": "b", "parameters": 9000, "min_last3": [99.5], "seeds": [1], "kind": "published"}]
    fig = plots.plot_frontier(points, budget=4_000)
    ax = fig.axes[0]
    markers = [line for line in ax.lines if line.get_marker() in ("s", "o")]
    centres = [(tuple(m.get_xdata()), tuple(m.get_ydata())) for m in markers]
    assert centres == [((3000,), (99.1,)), ((9000,), (99.5,))]
    bars = [c for c in ax.collections if len(c.get_segments())]
    assert len(bars) == 1
    assert bars[0].get_segments()[0][:, 1] == pytest.approx([99.1 - 0.1414, 99.1 + 0.1414], abs=1e-3)
    assert [t.get_text() for t in ax.texts] == ["a (2)", "b (1)"]
    assert {99.4} == {line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"}
    assert ax.get_xscale() == "log" and fig._repr_png_()[:4] == b"\x89PNG"
