"""Figures for the course. Every function returns a :class:`matplotlib.figure.Figure` and never calls
``plt.show()``.

The figures are built with ``Figure()`` directly, not through ``pyplot``: nothing is registered with
pyplot, so a notebook shows each figure exactly once (the returned value of the cell, as a PNG, with
or without ``%matplotlib inline``), and nothing has to be closed. Save one with ``fig.savefig("name.png")``.

Images: functions that take ``images`` accept either the raw ``uint8`` tensor from
:func:`mnist_course.data.load_mnist` (N, 28, 28), which is normalised before it reaches the model, or
an already normalised float tensor (N, 1, 28, 28), which is given to the model unchanged.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable, Mapping, Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from .history import History
from .receptive_field import as_model_input, find_layer

Histories = Sequence[History] | Mapping[str, History]
_METRICS = (("train_loss", "Train loss"), ("test_loss", "Test loss"),
            ("train_acc", "Train accuracy (%)"), ("test_acc", "Test accuracy (%)"))


class CourseFigure(Figure):
    """A matplotlib Figure that shows itself as a PNG in any notebook.

    A bare ``Figure()`` is drawn by IPython only once matplotlib's inline backend is active (after
    ``import matplotlib.pyplot``); ``_repr_png_`` makes the returned figure display regardless.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def _grid(nrows: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    fig = CourseFigure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def _named(histories: Histories) -> list[tuple[str, History]]:
    if isinstance(histories, History):
        histories = [histories]
    if isinstance(histories, Mapping):
        return list(histories.items())
    return [(h.name or f"run {i + 1}", h) for i, h in enumerate(histories)]


def plot_histories(histories: Histories, title: str = "") -> Figure:
    """Overlay several runs on one 2×2 grid (train/test loss, train/test accuracy).

    ``histories`` is a list of :class:`History` (labelled by ``name``) or a dict name → History.
    """
    fig, axes = _grid(2, 2, (10, 7))
    named = _named(histories)
    for ax, (key, label) in zip(axes, _METRICS):
        for name, h in named:
            values = getattr(h, key)
            ax.plot(range(1, len(values) + 1), values, marker="o" if len(values) < 30 else None,
                    markersize=3, label=name)
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if any(name for name, _ in named):
        for ax in axes:
            if ax.lines:
                ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def plot_history(history: History) -> Figure:
    """One run on a 2×2 grid: train loss, test loss, train accuracy, test accuracy."""
    fig = plot_histories({history.name or "run": history}, title=history.name)
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
    return fig


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes (CPU int64) for uint8 or normalised images; eval mode, restored afterwards."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    was_training = model.training
    model.eval()
    try:
        preds = [model(as_model_input(images[i:i + batch_size]).to(device)).argmax(1).cpu()
                 for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def _show_digit(ax: Axes, image: torch.Tensor) -> None:
    ax.imshow(image.detach().cpu().float().reshape(image.shape[-2:]).numpy(), cmap="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_misclassified(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, n: int = 20,
                       ncols: int = 10) -> Figure:
    """The first ``n`` images the model gets wrong, titled "true → predicted"."""
    labels = torch.as_tensor(labels).cpu()
    preds = predict(model, images)
    wrong = (preds != labels).nonzero().flatten()[:n].tolist()
    if not wrong:
        fig, axes = _grid(1, 1, (4, 2))
        axes[0].text(0.5, 0.5, f"no mistakes on these {len(labels)} images", ha="center", va="center")
        axes[0].set_axis_off()
        return fig
    cols = min(ncols, len(wrong))
    rows = -(-len(wrong) // cols)
    fig, axes = _grid(rows, cols, (1.3 * cols, 1.5 * rows))
    for ax in axes[len(wrong):]:
        ax.set_axis_off()
    for ax, i in zip(axes, wrong):
        _show_digit(ax, images[i])
        ax.set_title(f"{labels[i].item()} → {preds[i].item()}", fontsize=9, color="crimson")
    fig.suptitle(f"Misclassified: {(preds != labels).sum().item()} of {len(labels)} (true → predicted)")
    return fig


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """Counts (num_classes × num_classes): row = true class, column = predicted class."""
    preds, labels = torch.as_tensor(preds).cpu().long(), torch.as_tensor(labels).cpu().long()
    return torch.bincount(labels * num_classes + preds, minlength=num_classes ** 2).reshape(num_classes, -1)


def plot_confusion_matrix(model_or_preds: nn.Module | torch.Tensor | Sequence[int],
                          images_or_labels: torch.Tensor | Sequence[int],
                          labels: torch.Tensor | Sequence[int] | None = None,
                          num_classes: int = 10) -> Figure:
    """Confusion matrix: ``plot_confusion_matrix(model, images, labels)`` or ``(preds, labels)``.

    Rows are true classes, columns predictions; the diagonal is left uncoloured so mistakes stand out.
    """
    if isinstance(model_or_preds, nn.Module):
        if labels is None:
            raise TypeError("plot_confusion_matrix(model, images, labels): labels are missing")
        preds = predict(model_or_preds, images_or_labels)
    else:
        preds, labels = torch.as_tensor(model_or_preds), images_or_labels
    cm = confusion_matrix(preds, labels, num_classes)
    off = cm.clone().float()
    off.fill_diagonal_(float("nan"))
    fig, (ax,) = _grid(1, 1, (6, 5.2))
    im = ax.imshow(off.numpy(), cmap="Reds")
    fig.colorbar(im, ax=ax, shrink=0.8, label="mistakes")
    for t in range(num_classes):
        for p in range(num_classes):
            count = cm[t, p].item()
            if count:
                dark = t != p and count > 0.6 * torch.nan_to_num(off, nan=0.0).max().item()
                ax.text(p, t, str(count), ha="center", va="center", fontsize=7,
                        fontweight="bold" if t == p else "normal", color="white" if dark else "black")
    ax.set_xticks(range(num_classes))
    ax.set_yticks(range(num_classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    correct = cm.diagonal().sum().item()
    ax.set_title(f"Confusion matrix: {correct}/{cm.sum().item()} correct "
                 f"({100 * correct / max(cm.sum().item(), 1):.2f}%)")
    return fig


def plot_kernels(model: nn.Module, layer_name: str, max_out: int = 16, max_in: int = 8) -> Figure:
    """The weights of a Conv2d layer, one tile per (output, input) channel pair, blue < 0 < red.

    A layer with one input channel is laid out as a grid of its output channels; otherwise rows are
    output channels (at most ``max_out``) and columns input channels (at most ``max_in``).
    """
    layer = find_layer(model, layer_name)
    if not isinstance(layer, nn.Conv2d):
        raise TypeError(f"{layer_name!r} is a {type(layer).__name__}, not a Conv2d: it has no kernels")
    w = layer.weight.detach().cpu().float()
    n_out, n_in = min(w.shape[0], max_out), min(w.shape[1], max_in)
    if w.shape[1] == 1:
        tiles = [(o, 0) for o in range(min(w.shape[0], max_out * max_in))]
        cols = min(8, len(tiles))
        rows = -(-len(tiles) // cols)
    else:
        tiles = [(o, i) for o in range(n_out) for i in range(n_in)]
        rows, cols = n_out, n_in
    vmax = w.abs().max().item() or 1.0
    fig, axes = _grid(rows, cols, (1.1 * cols + 0.8, 1.1 * rows + 0.6))
    for ax in axes[len(tiles):]:
        ax.set_axis_off()
    for ax, (o, i) in zip(axes, tiles):
        im = ax.imshow(w[o, i].numpy(), cmap="bwr", vmin=-vmax, vmax=vmax)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{o}" if w.shape[1] == 1 else f"{o}←{i}", fontsize=7)
    fig.colorbar(im, ax=axes, shrink=0.6)
    shown = "" if len(tiles) == w.shape[0] * w.shape[1] else f", first {len(tiles)} shown"
    fig.suptitle(f"{layer_name}: {w.shape[0]}×{w.shape[1]} kernels of {w.shape[2]}×{w.shape[3]}{shown}")
    return fig


@torch.no_grad()
def layer_output(model: nn.Module, layer_name: str, image: torch.Tensor) -> torch.Tensor:
    """Output of ``layer_name`` for one image (uint8 (28, 28) or normalised float), batch axis removed."""
    layer = find_layer(model, layer_name)
    x = as_model_input(image)[:1]
    captured: dict[str, torch.Tensor] = {}

    class _Stop(Exception):
        pass

    def hook(_m: nn.Module, _i: tuple, out: torch.Tensor) -> None:
        captured["out"] = out.detach().cpu()
        raise _Stop

    device = next(iter(model.parameters()), torch.empty(0)).device
    was_training = model.training
    handle = layer.register_forward_hook(hook)
    try:
        model.eval()
        model(x.to(device))
    except _Stop:
        pass
    finally:
        handle.remove()
        model.train(was_training)
    if "out" not in captured:
        raise RuntimeError(f"layer {layer_name!r} was not called in the forward pass")
    return captured["out"][0]


def plot_feature_maps(model: nn.Module, layer_name: str, image: torch.Tensor, max_channels: int = 32,
                      ncols: int = 8) -> Figure:
    """The input digit, then the output channels of ``layer_name`` for it (at most ``max_channels``)."""
    maps = layer_output(model, layer_name, image)
    if maps.dim() != 3:
        raise ValueError(f"{layer_name!r} outputs shape {tuple(maps.shape)}, not feature maps (C, H, W)")
    n = min(maps.shape[0], max_channels)
    cols = min(ncols, n + 1)
    rows = -(-(n + 1) // cols)
    fig, axes = _grid(rows, cols, (1.4 * cols, 1.5 * rows + 0.4))
    _show_digit(axes[0], as_model_input(image)[0, 0])
    axes[0].set_title("input", fontsize=8)
    for c, ax in enumerate(axes[1:n + 1]):
        ax.imshow(maps[c].numpy(), cmap="viridis")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"ch {c}", fontsize=8)
    for ax in axes[n + 1:]:
        ax.set_axis_off()
    h, w = maps.shape[-2:]
    fig.suptitle(f"{layer_name}: {maps.shape[0]} channels of {h}×{w}"
                 + ("" if n == maps.shape[0] else f", first {n} shown"))
    return fig


SchedulerSource = Callable[[], tuple[torch.optim.Optimizer, object]] | tuple[torch.optim.Optimizer, object]


def lr_schedule(source: SchedulerSource, steps_per_epoch: int, epochs: int,
                losses: Sequence[float] | float = 1.0) -> list[float]:
    """The learning rate of every optimizer step, stepping the scheduler exactly as ``fit`` does.

    ``source`` is a function returning ``(optimizer, scheduler)``, or such a pair, whose learning
    rates and scheduler state are put back afterwards (parameters are never touched). OneCycleLR/CyclicLR
    step every batch, others once per epoch; ReduceLROnPlateau gets ``losses`` (one per epoch, or a
    constant), so a constant loss shows when patience runs out.
    """
    from .train import step_after_batch, steps_per_batch

    optimizer, scheduler = source() if callable(source) else source
    saved_groups = [copy.deepcopy({k: v for k, v in g.items() if k != "params"}) for g in optimizer.param_groups]
    saved_scheduler = copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None
    per_batch = scheduler is not None and steps_per_batch(scheduler)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    lrs: list[float] = []
    try:
        with warnings.catch_warnings():
            # optimizer.step() is not called (it would move parameters that still hold gradients),
            # so silence torch's "lr_scheduler.step() before optimizer.step()" reminder.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
            for epoch in range(epochs):
                for _ in range(steps_per_epoch):
                    lrs.append(optimizer.param_groups[0]["lr"])
                    if per_batch:
                        step_after_batch(scheduler)
                if scheduler is not None and not per_batch:
                    if plateau:
                        scheduler.step(losses if isinstance(losses, (int, float)) else losses[epoch])
                    else:
                        scheduler.step()
    finally:
        if not callable(source):
            for group, saved in zip(optimizer.param_groups, saved_groups):
                group.update(saved)
            if scheduler is not None:
                scheduler.load_state_dict(saved_scheduler)
    return lrs


def plot_lr_schedule(source: SchedulerSource, steps_per_epoch: int, epochs: int,
                     losses: Sequence[float] | float = 1.0, title: str = "") -> Figure:
    """Learning rate per optimizer step (x axis in epochs); see :func:`lr_schedule` for ``source``."""
    lrs = lr_schedule(source, steps_per_epoch, epochs, losses)
    fig, (ax,) = _grid(1, 1, (7, 3.2))
    ax.plot([i / steps_per_epoch for i in range(len(lrs))], lrs)
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    ax.set_title(title or f"{len(lrs)} steps: max {max(lrs):.3g}, last {lrs[-1]:.3g}")
    return fig
