"""Figures for the notebooks: each function returns a matplotlib ``Figure``; none prints or calls ``show``.

Figures are built with ``Figure()``, not ``pyplot``: nothing is registered with pyplot, so a notebook shows
each one exactly once (the cell's value, as a PNG, with or without ``%matplotlib inline``) and nothing has
to be closed. Save one with ``fig.savefig("name.png")``. Digits are drawn with one colour map everywhere
(``gray_r``: dark ink on white); a run name keeps its colour in every figure of a session (:func:`run_color`).
``images`` are the uint8 tensor of :func:`~mnist_course.mnist_files.load_mnist` or normalised floats (N, 1, 28, 28).
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Mapping, Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from . import schedule, train
from .history import SPLIT_NAMES, History
from .report import TARGET

__all__ = ["plot_confusion_matrix", "plot_frontier", "plot_histories", "plot_lr_schedule", "plot_misclassified", "run_color",
           "to_png"]

DIGIT_CMAP = "gray_r"
HISTORY_SIZE = (10.0, 6.5)
_COLORS: dict[str, str] = {}
Histories = History | Sequence[History] | Mapping[str, History]


def to_png(fig: Figure, dpi: float = 100) -> bytes:
    """The figure as PNG bytes, exactly ``figsize × dpi`` pixels (no tight bounding box)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


class CourseFigure(Figure):
    """A Figure that shows itself as a PNG in any notebook, even before ``matplotlib.pyplot`` is imported."""

    def _repr_png_(self) -> bytes:
        return to_png(self)


def run_color(name: str) -> str:
    """The colour of run ``name``: the next unused one of the ten ``C0``…``C9`` the first time a name is
    seen, then always the same, so a run keeps its colour from one figure to the next."""
    return _COLORS.setdefault(name, f"C{len(_COLORS) % 10}")


def _figure(nrows: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    fig = CourseFigure(figsize=size, layout="constrained")
    return fig, list(fig.subplots(nrows, ncols, squeeze=False).flat)


def _show_digit(ax: Axes, image: torch.Tensor) -> None:
    ax.imshow(image.detach().cpu().float().reshape(image.shape[-2:]).numpy(), cmap=DIGIT_CMAP)
    ax.set_xticks([])
    ax.set_yticks([])


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _named(histories: Histories) -> list[tuple[str, History]]:
    if isinstance(histories, History):
        return [(histories.name or "run", histories)]
    if isinstance(histories, Mapping):
        return list(histories.items())
    return [(h.name or f"run {i + 1}", h) for i, h in enumerate(histories)]


def plot_histories(histories: Histories, title: str | None = None,
                   zoom: tuple[float, float] | None = None) -> Figure:
    """Loss and accuracy per epoch on a 2×2 grid, one curve per run: training (eval mode when measured) on
    the left, the held-out split (validation when the runs have it, else test) on the right.

    ``histories``: one :class:`History`, a list (labelled by ``name``), or a dict name → History. A single
    run is titled with its name; several get a legend. ``zoom=(98.5, 99.7)`` limits the accuracy axes to
    that band and draws the 99.4 % target. The figure size never changes (live plots rely on it).
    """
    named = _named(histories)
    first = named[0][1] if named else History()
    panels = [(first.train_split, "loss"), (first.held_out, "loss"), (first.train_split, "acc"), (first.held_out, "acc")]
    fig, axes = _figure(2, 2, HISTORY_SIZE)
    for ax, (split, what) in zip(axes, panels):
        for name, h in named:
            values = getattr(h, f"{split}_{what}")
            ax.plot(range(1, len(values) + 1), values, marker="o" if len(values) < 30 else None, markersize=3,
                    label=name, color=run_color(name))
        label = SPLIT_NAMES.get(split, "train").capitalize()
        ax.set(title=f"{label} {'loss' if what == 'loss' else 'accuracy (%)'}", xlabel="epoch")
        if what == "acc" and zoom:
            ax.set_ylim(*zoom)
            ax.axhline(TARGET, color="gray", linestyle="--", linewidth=1, label=f"{TARGET}% target")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if len(named) > 1:
        axes[0].legend(fontsize="small")
    if zoom:
        axes[3].legend(fontsize="small")
    title = title if title is not None else (named[0][0] if len(named) == 1 else "")
    if title:
        fig.suptitle(title)
    return fig


def plot_misclassified(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, n: int = 20,
                       ncols: int = 10) -> Figure:
    """The first ``n`` images the model gets wrong, each titled "true → predicted"."""
    labels = torch.as_tensor(labels).cpu()
    preds = train.predict(model, images)
    wrong = (preds != labels).nonzero().flatten()
    if not len(wrong):
        fig, (ax,) = _figure(1, 1, (4, 1.5))
        _note(ax, f"no mistakes on these {len(labels)} images")
        return fig
    shown = wrong[:n].tolist()
    cols = min(ncols, len(shown))
    rows = -(-len(shown) // cols)
    fig, axes = _figure(rows, cols, (1.2 * cols, 1.4 * rows + 0.4))
    for ax in axes[len(shown):]:
        ax.set_axis_off()
    for ax, i in zip(axes, shown):
        _show_digit(ax, images[i])
        ax.set_title(f"{labels[i].item()} → {preds[i].item()}", fontsize=9, color="crimson")
    fig.suptitle(f"Misclassified: {len(wrong)} of {len(labels)} (true → predicted)")
    return fig


def plot_confusion_matrix(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                          num_classes: int = 10) -> Figure:
    """Confusion matrix of the model on ``images``: rows are true classes, columns predictions. Only the
    mistakes are coloured (the diagonal stays white), so the confusions stand out; every count is written."""
    labels = torch.as_tensor(labels).cpu().long()
    cm = torch.bincount(labels * num_classes + train.predict(model, images), minlength=num_classes ** 2)
    cm = cm.reshape(num_classes, num_classes)
    mistakes = cm.float().fill_diagonal_(float("nan"))
    fig, (ax,) = _figure(1, 1, (6.4, 5.4))
    im = ax.imshow(mistakes.numpy(), cmap="Reds", vmin=0)
    fig.colorbar(im, ax=ax, shrink=0.8, label="mistakes")
    dark = 0.6 * torch.nan_to_num(mistakes, nan=0.0).max().item()
    for (t, p), count in ((divmod(i, num_classes), n) for i, n in enumerate(cm.flatten().tolist()) if n):
        ax.text(p, t, str(count), ha="center", va="center", fontsize=7, fontweight="bold" if t == p else None,
                color="white" if t != p and count > dark else "black")
    ax.set(xticks=range(num_classes), yticks=range(num_classes), xlabel="predicted", ylabel="true")
    correct, total = cm.diagonal().sum().item(), cm.sum().item()
    ax.set_title(f"Confusion matrix: {correct}/{total} correct ({100 * correct / max(total, 1):.2f}%)")
    return fig


def plot_lr_schedule(optimizer: torch.optim.Optimizer | tuple, scheduler: object = None, *,
                     steps_per_epoch: int, epochs: int, losses: Sequence[float] | float = 1.0,
                     title: str = "") -> Figure:
    """The learning rate of every optimizer step, stepped exactly as ``fit`` steps it
    (:func:`mnist_course.schedule.lr_schedule`); the x axis is in epochs. ``optimizer`` may also be an
    ``(optimizer, scheduler)`` pair. Their state is left as it was."""
    if isinstance(optimizer, tuple):
        optimizer, scheduler = optimizer
    lrs = schedule.lr_schedule(optimizer, scheduler, steps_per_epoch, epochs, losses)
    fig, (ax,) = _figure(1, 1, (7, 3.2))
    ax.plot([i / steps_per_epoch for i in range(len(lrs))], lrs, color="C0")
    ax.set(xlabel="epoch", ylabel="learning rate", xlim=(0, epochs), ylim=(0, 1.05 * max(lrs, default=1.0)))
    ax.grid(alpha=0.3)
    summary = f"{len(lrs)} steps: max {max(lrs):.3g}, last {lrs[-1]:.3g}" if lrs else "no steps"
    ax.set_title(f"{title}: {summary}" if title else summary)
    return fig


FRONTIER_STYLE = {"course": ("s", "C1", "the course's models"), "published": ("o", "C0", "published designs, rebuilt"),
                  "yours": ("*", "C3", "yours")}


def plot_frontier(points: Sequence[Mapping], budget: int | None = None) -> Figure:
    """Parameters (log scale) against the lowest test accuracy of the last three epochs: one marker per model
    at the mean over its seeds, one standard deviation as a bar. ``points`` as in ``reference_runs/frontier.json``
    (``name``, ``parameters``, ``min_last3``, ``seeds``, ``kind``: course, published or yours)."""
    fig, (ax,) = _figure(1, 1, (8, 4.8))
    shown = set()
    means = [(p["parameters"], statistics.fmean(p["min_last3"])) for p in points]
    for p, (x, mean) in zip(points, means):
        values = p["min_last3"]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        marker, color, label = FRONTIER_STYLE[p.get("kind", "course")]
        ax.errorbar(x, mean, yerr=std or None, fmt=marker, color=color, capsize=3,
                    markersize=14 if marker == "*" else 6, label=None if label in shown else label)
        shown.add(label)
        # the label goes above the marker if it is higher than its nearest neighbour (on the log axis), else below
        near = min((m for m in means if m != (x, mean)), key=lambda m: abs(math.log(m[0] / x)), default=(x, mean))
        ax.annotate(f"{p['name']} ({len(values)})", (x, mean), textcoords="offset points",
                    xytext=(6, 5 if mean >= near[1] else -13), fontsize=9)
    ax.axhline(TARGET, color="grey", linestyle="--", linewidth=1, label=f"target: {TARGET} %")
    if budget:
        ax.axvline(budget, color="grey", linestyle=":", linewidth=1, label=f"your budget: {budget:,} parameters")
    counts = [p["parameters"] for p in points] + ([budget] if budget else [])
    low, high = min(counts) / 1.3, max(counts) * 1.3
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ticks = [t for t in (1_000, 2_000, 3_000, 4_000, 6_000, 8_000, 10_000, 15_000, 20_000) if low <= t <= high]
    ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
    ax.minorticks_off()
    ax.set(xlabel="parameters (log scale)", ylabel="test accuracy, min of the last 3 epochs (%)",
           title="parameters vs accuracy (in brackets: seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return fig
