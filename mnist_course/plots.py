"""Figures for the notebooks: each function returns a :class:`CourseFigure` (never pyplot's, so a notebook
shows it once) and prints nothing. Digits are drawn ``gray_r``; a run keeps its colour (:func:`run_color`)."""

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

_COLORS: dict[str, str] = {}
_FRONTIER_STYLE = {"course": ("s", "C1", "the course's models"), "yours": ("*", "C3", "yours"),
                   "published": ("o", "C0", "published designs, rebuilt")}


class CourseFigure(Figure):
    """A Figure that shows itself as a PNG in any notebook, even before ``matplotlib.pyplot`` is imported."""

    def png(self, dpi: float = 100) -> bytes:
        """The figure as PNG bytes, exactly ``figsize × dpi`` pixels (no tight bounding box)."""
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()

    _repr_png_ = png


def run_color(name: str) -> str:
    """The colour of run ``name``: the next unused of ``C0``…``C9`` the first time, then always the same."""
    return _COLORS.setdefault(name, f"C{len(_COLORS) % 10}")


def _figure(nrows: int, ncols: int, size: tuple[float, float]) -> tuple[CourseFigure, list[Axes]]:
    fig = CourseFigure(figsize=size, layout="constrained")
    return fig, list(fig.subplots(nrows, ncols, squeeze=False).flat)


def _show_digit(ax: Axes, image: torch.Tensor) -> None:
    ax.imshow(image.detach().cpu().float().reshape(image.shape[-2:]).numpy(), cmap="gray_r")
    ax.set(xticks=[], yticks=[])


def plot_histories(histories: History | Sequence[History] | Mapping[str, History], title: str | None = None,
                   zoom: tuple[float, float] | None = None) -> Figure:
    """Loss and accuracy per epoch of a History, a list or a dict name → History, training and held-out split;
    ``zoom=(98.5, 99.7)``: only that accuracy band, and the target."""
    if isinstance(histories, History):
        named = [(histories.name or "run", histories)]
    elif isinstance(histories, Mapping):
        named = list(histories.items())
    else:
        named = [(h.name or f"run {i + 1}", h) for i, h in enumerate(histories)]
    first = named[0][1] if named else History()
    fig, axes = _figure(2, 2, (10, 6.5))  # always this size: live plots rely on it
    panels = [(split, what) for what in ("loss", "acc") for split in (first.train_split, first.held_out)]
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


def plot_misclassified(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, n: int = 20) -> Figure:
    """The first ``n`` images the model gets wrong, ten a row, each titled "true → predicted"."""
    labels = torch.as_tensor(labels).cpu()
    preds = train.predict(model, images)
    wrong = (preds != labels).nonzero().flatten()
    if not len(wrong):
        fig, (ax,) = _figure(1, 1, (4, 1.5))
        ax.text(0.5, 0.5, f"no mistakes on these {len(labels)} images", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    shown = wrong[:n].tolist()
    cols = min(10, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig, axes = _figure(rows, cols, (1.2 * cols, 1.4 * rows + 0.4))
    for ax in axes[len(shown):]:
        ax.set_axis_off()
    for ax, i in zip(axes, shown):
        _show_digit(ax, images[i])
        ax.set_title(f"{labels[i].item()} → {preds[i].item()}", fontsize=9, color="crimson")
    fig.suptitle(f"Misclassified: {len(wrong)} of {len(labels)} (true → predicted)")
    return fig


def plot_confusion_matrix(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> Figure:
    """Rows are true digits, columns predictions; only the mistakes are coloured, every count is written."""
    labels = torch.as_tensor(labels).cpu().long()
    cm = torch.bincount(labels * 10 + train.predict(model, images), minlength=100).reshape(10, 10)
    mistakes = cm.float().fill_diagonal_(float("nan"))
    fig, (ax,) = _figure(1, 1, (6.4, 5.4))
    fig.colorbar(ax.imshow(mistakes.numpy(), cmap="Reds", vmin=0), ax=ax, shrink=0.8, label="mistakes")
    dark = 0.6 * torch.nan_to_num(mistakes, nan=0.0).max().item()
    for (t, p), count in ((divmod(i, 10), n) for i, n in enumerate(cm.flatten().tolist()) if n):
        ax.text(p, t, str(count), ha="center", va="center", fontsize=7, fontweight="bold" if t == p else None,
                color="white" if t != p and count > dark else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true")
    correct, total = cm.diagonal().sum().item(), cm.sum().item()
    ax.set_title(f"Confusion matrix: {correct}/{total} correct ({100 * correct / max(total, 1):.2f}%)")
    return fig


def plot_lr_schedule(optimizer: torch.optim.Optimizer | tuple, scheduler: object = None, *,
                     steps_per_epoch: int, epochs: int, title: str = "") -> Figure:
    """The learning rate of every step as ``fit`` steps it, x in epochs; ``optimizer`` may be an ``(optimizer,
    scheduler)`` pair. Their state is left as it was."""
    if isinstance(optimizer, tuple):
        optimizer, scheduler = optimizer
    lrs = schedule.lr_schedule(optimizer, scheduler, steps_per_epoch, epochs)
    fig, (ax,) = _figure(1, 1, (7, 3.2))
    ax.plot([i / steps_per_epoch for i in range(len(lrs))], lrs, color="C0")
    ax.set(xlabel="epoch", ylabel="learning rate", xlim=(0, epochs), ylim=(0, 1.05 * max(lrs, default=1.0)))
    ax.grid(alpha=0.3)
    summary = f"{len(lrs)} steps: max {max(lrs):.3g}, last {lrs[-1]:.3g}" if lrs else "no steps"
    ax.set_title(f"{title}: {summary}" if title else summary)
    return fig


def plot_frontier(points: Sequence[Mapping], budget: int | None = None) -> Figure:
    """Parameters (log scale) against the test accuracy (min of the last 3 epochs), mean ± std over seeds.
    ``points`` as in ``reference_runs/frontier.json`` (``kind``: course, published or yours)."""
    fig, (ax,) = _figure(1, 1, (8, 4.8))
    shown = set()
    means = [(p["parameters"], statistics.fmean(p["min_last3"])) for p in points]
    for p, (x, mean) in zip(points, means):
        values = p["min_last3"]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        marker, color, label = _FRONTIER_STYLE[p.get("kind", "course")]
        ax.errorbar(x, mean, yerr=std or None, fmt=marker, color=color, capsize=3,
                    markersize=14 if marker == "*" else 6, label=None if label in shown else label)
        shown.add(label)
        # the name goes above the marker if it is higher than its nearest neighbour (log axis), else below
        near = min((m for m in means if m != (x, mean)), key=lambda m: abs(math.log(m[0] / x)),
                   default=(x, mean))
        ax.annotate(f"{p['name']} ({len(values)})", (x, mean), textcoords="offset points",
                    xytext=(6, 5 if mean >= near[1] else -13), fontsize=9)
    ax.axhline(TARGET, color="grey", linestyle="--", linewidth=1, label=f"target: {TARGET} %")
    if budget:
        ax.axvline(budget, color="grey", linestyle=":", linewidth=1,
                   label=f"your budget: {budget:,} parameters")
    counts = [p["parameters"] for p in points] + ([budget] if budget else [])
    low, high = min(counts) / 1.3, max(counts) * 1.3
    ticks = [t for t in (1000, 2000, 3000, 4000, 6000, 8000, 10_000, 15_000, 20_000) if low <= t <= high]
    ax.set(xscale="log", xlim=(low, high), xticks=ticks, xticklabels=[f"{t:,}" for t in ticks],
           xlabel="parameters (log scale)", ylabel="test accuracy, min of the last 3 epochs (%)",
           title="parameters vs accuracy (in brackets: seeds)")
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return fig
