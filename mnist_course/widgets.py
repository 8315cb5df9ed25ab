"""Interactive explorers for notebooks (ipywidgets 7.7 as in Colab, and 8).

Every function returns a :class:`FigureApp`: ``.widget`` is the ipywidgets box, ``.figure`` the
matplotlib Figure currently shown, ``.controls`` a dict of the sliders and drop-downs. Setting a
control's ``.value`` from Python redraws ``.figure`` at once, with or without a browser.

Display: make the app the last expression of a cell (or call ``display(app)``). The output then holds
*two* representations of the same thing: the live widget and a PNG of the figure as it was when the
cell ran. Jupyter, JupyterLab and VS Code show the widget; GitHub and nbviewer, which cannot run
widgets, fall back to the PNG, so a saved notebook still shows a picture there. (Under Colab only the
widget is sent, since Colab's choice between the two is not documented.)

Only widgets common to ipywidgets 7.7 and 8 are used (Dropdown, IntSlider, FloatSlider,
FloatLogSlider, Checkbox, Button, HTML, VBox/HBox, Output); figures are PNGs displayed inside an
``Output`` widget, so no matplotlib backend (ipympl, widget) is needed.
"""

from __future__ import annotations

import base64
import html
import io
import math
import sys
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn
from torch.optim import lr_scheduler

from .history import History
from .plots import _grid, _show_digit, layer_output, plot_histories, plot_history, plot_lr_schedule
from .receptive_field import as_model_input, effective_receptive_field, receptive_field_table

__all__ = ["FigureApp", "feature_browser", "live_dashboard", "lr_schedule_explorer", "rf_explorer",
           "run_comparison"]

_WIDE = {"description_width": "initial"}


def _png(fig: Figure, dpi: int = 80) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipywidgets depends on IPython
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


class FigureApp:
    """A widget box, its controls, and the Figure it currently shows."""

    def __init__(self, controls: dict[str, widgets.Widget], header: list[widgets.Widget] | None = None,
                 dpi: int = 80):
        self.controls = controls
        self.output = widgets.Output()
        self.figure: Figure | None = None
        self.dpi = dpi
        self.redraws = 0
        self._hold = False
        rows = [widgets.HBox(list(controls.values())[i:i + 3]) for i in range(0, len(controls), 3)]
        self.widget = widgets.VBox([*(header or []), *rows, self.output])

    def show(self, fig: Figure) -> None:
        """Make ``fig`` the current figure and draw it into the output area (inside a kernel)."""
        self.figure = fig
        self.redraws += 1
        if not _in_kernel():
            return
        from IPython.display import Image, clear_output, display

        with self.output:
            clear_output(wait=True)
            display(Image(data=_png(fig, self.dpi), format="png"))

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict:
        bundle = {
            "text/plain": f"<{type(self).__name__}: run this notebook in Jupyter to use the widget>",
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": self.widget.model_id},
        }
        if self.figure is not None and "google.colab" not in sys.modules:
            bundle["image/png"] = base64.b64encode(_png(self.figure, self.dpi)).decode("ascii")
        return bundle

    def _observe(self, callback: Callable[[], None], *names: str) -> None:
        def handler(_change: dict) -> None:
            if not self._hold:
                callback()

        for name in names:
            self.controls[name].observe(handler, names="value")


def _digit(images: torch.Tensor, index: int) -> torch.Tensor:
    return as_model_input(images[index:index + 1])[0, 0].detach().cpu().float()


class RFExplorer(FigureApp):
    """See :func:`rf_explorer`."""

    def __init__(self, model: nn.Module, images: torch.Tensor, layer: str | None = None, index: int = 0):
        self.model, self.images = model, images
        self.table = receptive_field_table(model, tuple(as_model_input(images[:1]).shape[1:]))
        options, seen = [], set()
        for row in self.table.rows:
            if row.kernel is not None and row.spatial and row.name not in seen:
                seen.add(row.name)
                options.append((f"{row.name} ({row.type}, RF {row.rf})", row.name))
        if not options:
            raise ValueError("the model has no Conv2d or pooling module to explore")
        if layer is None:  # the deepest layer that still has more than one unit to choose from
            layer = next((n for _, n in reversed(options) if self.table[n].out_size != (1, 1)), options[-1][1])
        h, w = self.table[layer].out_size
        controls = {
            "layer": widgets.Dropdown(options=options, value=layer, description="layer", style=_WIDE),
            "image": widgets.IntSlider(value=index, min=0, max=len(images) - 1, description="image"),
            "erf": widgets.Checkbox(value=True, description="effective RF"),
            "row": widgets.IntSlider(value=h // 2, min=0, max=h - 1, description="row"),
            "col": widgets.IntSlider(value=w // 2, min=0, max=w - 1, description="col"),
        }
        super().__init__(controls)
        self._observe(self._layer_changed, "layer")
        self._observe(self.redraw, "image", "erf", "row", "col")
        self.redraw()

    def _layer_changed(self) -> None:
        h, w = self.table[self.controls["layer"].value].out_size
        self._hold = True
        try:
            for name, size in (("row", h), ("col", w)):
                slider = self.controls[name]
                if size - 1 > slider.max:
                    slider.max = size - 1
                    slider.value = size // 2
                else:
                    slider.value = size // 2
                    slider.max = size - 1
        finally:
            self._hold = False
        self.redraw()

    def redraw(self) -> None:
        """Draw the digit, the theoretical field of the chosen unit, and its effective field."""
        c = {k: w.value for k, w in self.controls.items()}
        row = self.table[c["layer"]]
        digit = _digit(self.images, c["image"])
        top, left, bottom, right = row.field_box(c["row"], c["col"])
        self.box = (top, left, bottom, right)
        fig, (ax,) = _grid(1, 1, (5, 5.4))
        _show_digit(ax, digit)
        if c["erf"]:
            erf = effective_receptive_field(self.model, c["layer"], self.images[c["image"]:c["image"] + 1],
                                            position=(c["row"], c["col"]))
            self.erf = erf
            scaled = erf / erf.max() if erf.max() > 0 else erf
            rgba = torch.zeros(*scaled.shape, 4)
            rgba[..., 0] = 1.0
            rgba[..., 1] = 0.6 * (1 - scaled)
            rgba[..., 3] = 0.85 * scaled.sqrt()
            ax.imshow(rgba.numpy())
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1,
                               fill=False, edgecolor="deepskyblue", linewidth=2, clip_on=False))
        cy, cx = (top + bottom) / 2, (left + right) / 2
        ax.plot([cx], [cy], marker="+", color="deepskyblue", markersize=10)
        img_h, img_w = digit.shape
        ax.set_facecolor("0.85")  # shows where a field reaches beyond the image, into the zero padding
        ax.set_xlim(min(-0.5, left - 0.5), max(img_w - 0.5, right + 0.5))
        ax.set_ylim(max(img_h - 0.5, bottom + 0.5), min(-0.5, top - 0.5))
        h, w = row.out_size
        ax.set_title(f"{row.name}: unit ({c['row']}, {c['col']}) of {h}×{w}\n"
                     f"receptive field {row.rf}×{row.rf} (box), jump {row.jump}"
                     + (", heat = effective RF" if c["erf"] else ""), fontsize=10)
        self.show(fig)


def rf_explorer(model: nn.Module, images: torch.Tensor, layer: str | None = None,
                index: int = 0) -> RFExplorer:
    """Pick a layer and an output unit (row, col): see its receptive field on a real digit.

    The box is the theoretical field from :func:`~mnist_course.receptive_field.receptive_field_table`
    (it may reach beyond the image, into the zero padding); the red heat map is the effective field,
    the input-gradient magnitude of that unit for the shown image. ``images`` are uint8 (N, 28, 28) or
    normalised (N, 1, 28, 28); keep a few dozen at most.
    """
    return RFExplorer(model, images, layer, index)


def _kernel_mosaic(weight: torch.Tensor, limit: int = 16) -> torch.Tensor:
    """(in, kh, kw) → one image: the first ``limit`` input channels' kernels in a near-square grid,
    separated by one blank (NaN) pixel."""
    n, kh, kw = min(len(weight), limit), weight.shape[1], weight.shape[2]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    mosaic = torch.full((rows * (kh + 1) - 1, cols * (kw + 1) - 1), float("nan"))
    for i in range(n):
        r, c = divmod(i, cols)
        mosaic[r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = weight[i]
    return mosaic


class FeatureBrowser(FigureApp):
    """See :func:`feature_browser`."""

    def __init__(self, model: nn.Module, images: torch.Tensor, layer: str | None = None):
        self.model, self.images = model, images
        table = receptive_field_table(model, tuple(as_model_input(images[:1]).shape[1:]))
        self.channels = {}
        for row in table.rows:
            if row.spatial and row.name not in self.channels:
                self.channels[row.name] = row.channels
        self.layers = dict(model.named_modules())
        options = [(f"{n} ({type(self.layers[n]).__name__}, {ch} ch)", n) for n, ch in self.channels.items()]
        layer = layer if layer is not None else next(
            (n for n in self.channels if isinstance(self.layers[n], nn.Conv2d)), options[0][1])
        controls = {
            "layer": widgets.Dropdown(options=options, value=layer, description="layer", style=_WIDE),
            "image": widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="image"),
            "channel": widgets.IntSlider(value=0, min=0, max=self.channels[layer] - 1, description="channel"),
        }
        super().__init__(controls)
        self._observe(self._layer_changed, "layer")
        self._observe(self.redraw, "image", "channel")
        self.redraw()

    def _layer_changed(self) -> None:
        self._hold = True
        try:
            self.controls["channel"].value = 0
            self.controls["channel"].max = self.channels[self.controls["layer"].value] - 1
        finally:
            self._hold = False
        self.redraw()

    def redraw(self) -> None:
        """Draw the input digit, the channel's kernel (Conv2d only) and its feature map."""
        name, index, channel = (self.controls[k].value for k in ("layer", "image", "channel"))
        layer = self.layers[name]
        fmap = layer_output(self.model, name, self.images[index:index + 1])[channel]
        self.feature_map = fmap
        fig, axes = _grid(1, 3, (10, 3.6))
        _show_digit(axes[0], _digit(self.images, index))
        axes[0].set_title(f"image {index}")
        if isinstance(layer, nn.Conv2d):
            w = layer.weight.detach().cpu().float()[channel]
            vmax = w.abs().max().item() or 1.0
            axes[1].imshow(_kernel_mosaic(w).numpy(), cmap="bwr", vmin=-vmax, vmax=vmax)
            more = f", first 16 of {w.shape[0]}" if w.shape[0] > 16 else ""
            axes[1].set_title(f"kernel {channel}: {w.shape[0]} input ch{more}", fontsize=10)
        else:
            axes[1].text(0.5, 0.5, f"{type(layer).__name__}\nhas no kernel", ha="center", va="center")
        axes[1].set_xticks([])
        axes[1].set_yticks([])
        im = axes[2].imshow(fmap.numpy(), cmap="viridis")
        fig.colorbar(im, ax=axes[2], shrink=0.8)
        axes[2].set_xticks([])
        axes[2].set_yticks([])
        axes[2].set_title(f"{name} channel {channel}: {fmap.shape[0]}×{fmap.shape[1]}")
        self.show(fig)


def feature_browser(model: nn.Module, images: torch.Tensor, layer: str | None = None) -> FeatureBrowser:
    """Pick a layer, an image and a channel: see that channel's kernel and its feature map."""
    return FeatureBrowser(model, images, layer)


class LiveDashboard(FigureApp):
    """See :func:`live_dashboard`. Call it with a :class:`History` to redraw."""

    def __init__(self) -> None:
        self.status = widgets.HTML(value="waiting for the first epoch…")
        super().__init__({}, header=[self.status])
        self.history: History | None = None
        self.show(plot_history(History(name="waiting for the first epoch")))

    def __call__(self, history: History) -> None:
        """The ``fit`` callback: redraw the 2×2 curves with every epoch so far."""
        self.history = history
        if history.epochs:
            self.status.value = html.escape(
                f"epoch {history.epochs}: test accuracy {history.test_acc[-1]:.2f}% "
                f"(best {history.best_test_acc:.2f}% at epoch {history.best_epoch})")
        self.show(plot_history(history))


def live_dashboard() -> LiveDashboard:
    """Curves that redraw after every epoch: ``dash = live_dashboard(); display(dash)``, then
    ``fit(model, data, epochs, callbacks=[dash])``."""
    return LiveDashboard()


class RunComparison(FigureApp):
    """See :func:`run_comparison`."""

    def __init__(self, folder: str | Path = "runs"):
        self.folder = Path(folder)
        self.refresh_button = widgets.Button(description="refresh")
        self.message = widgets.HTML()
        self.checks = widgets.VBox()
        super().__init__({}, header=[widgets.HBox([self.refresh_button, self.message]), self.checks])
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        """Scan the folder again for ``*.json`` histories (new runs appear ticked)."""
        old = {name: box.value for name, box in self.controls.items()}
        self.runs: dict[str, History] = {}
        skipped = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                self.runs[path.stem] = History.load(path)
            except (ValueError, TypeError, OSError):
                skipped.append(path.name)
        self.controls = {name: widgets.Checkbox(value=old.get(name, True), description=name)
                         for name in self.runs}
        for box in self.controls.values():
            box.observe(lambda _change: self.redraw(), names="value")
        self.checks.children = [widgets.HBox(list(self.controls.values())[i:i + 4])
                                for i in range(0, len(self.controls), 4)]
        text = f"{len(self.runs)} run(s) in {self.folder}"
        if skipped:
            text += f"; not histories: {', '.join(skipped)}"
        self.message.value = html.escape(text)
        self.redraw()

    @property
    def selected(self) -> list[str]:
        """Names of the ticked runs."""
        return [name for name, box in self.controls.items() if box.value]

    def redraw(self) -> None:
        """Overlay the ticked runs."""
        chosen = {name: self.runs[name] for name in self.selected}
        title = "" if chosen else ("no run selected" if self.runs else f"no *.json histories in {self.folder}")
        self.show(plot_histories(chosen, title=title))


def run_comparison(folder: str | Path = "runs") -> RunComparison:
    """Tick boxes over the ``History`` JSON files saved in ``folder`` → their curves overlaid."""
    return RunComparison(folder)


SCHEDULERS = ("constant", "StepLR", "ExponentialLR", "CosineAnnealingLR", "OneCycleLR", "ReduceLROnPlateau")
_PARAMS = {"constant": (), "StepLR": ("step_size", "gamma"), "ExponentialLR": ("gamma",),
           "CosineAnnealingLR": (), "OneCycleLR": ("pct_start",), "ReduceLROnPlateau": ("gamma", "patience")}


class LRScheduleExplorer(FigureApp):
    """See :func:`lr_schedule_explorer`."""

    def __init__(self, scheduler: str = "OneCycleLR", epochs: int = 15, steps_per_epoch: int = 469):
        controls = {
            "scheduler": widgets.Dropdown(options=list(SCHEDULERS), value=scheduler, description="scheduler"),
            "lr": widgets.FloatLogSlider(value=0.1, base=10, min=-4, max=0, step=0.1,
                                         description="lr / max_lr", style=_WIDE),
            "epochs": widgets.IntSlider(value=epochs, min=1, max=40, description="epochs"),
            "steps_per_epoch": widgets.IntSlider(value=steps_per_epoch, min=1, max=1000,
                                                 description="steps/epoch", style=_WIDE),
            "step_size": widgets.IntSlider(value=5, min=1, max=20, description="step_size", style=_WIDE),
            "gamma": widgets.FloatSlider(value=0.5, min=0.05, max=0.99, step=0.01,
                                         description="gamma/factor", style=_WIDE),
            "pct_start": widgets.FloatSlider(value=0.3, min=0.05, max=0.95, step=0.05,
                                             description="pct_start", style=_WIDE),
            "patience": widgets.IntSlider(value=2, min=0, max=10, description="patience"),
        }
        self.code = widgets.HTML()
        super().__init__(controls)
        self.widget.children = (*self.widget.children[:-1], self.code, self.output)
        self._observe(self.redraw, *controls)
        self.redraw()

    def _factory(self) -> tuple[Callable[[], tuple], str]:
        c = {k: w.value for k, w in self.controls.items()}
        kind, lr, epochs, spe = c["scheduler"], c["lr"], c["epochs"], c["steps_per_epoch"]
        kwargs = {
            "constant": {},
            "StepLR": {"step_size": c["step_size"], "gamma": round(c["gamma"], 2)},
            "ExponentialLR": {"gamma": round(c["gamma"], 2)},
            "CosineAnnealingLR": {"T_max": epochs},
            "OneCycleLR": {"max_lr": float(f"{lr:.3g}"), "epochs": epochs, "steps_per_epoch": spe,
                           "pct_start": round(c["pct_start"], 2)},
            "ReduceLROnPlateau": {"factor": round(c["gamma"], 2), "patience": c["patience"]},
        }[kind]
        lr = float(f"{lr:.3g}")

        def factory() -> tuple:
            opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
            return opt, (None if kind == "constant" else getattr(lr_scheduler, kind)(opt, **kwargs))

        args = "".join(f", {k}={v}" for k, v in kwargs.items())
        code = f"optimizer = SGD(model.parameters(), lr={lr}, momentum=0.9)\n"
        code += "scheduler = None" if kind == "constant" else f"scheduler = {kind}(optimizer{args})"
        if kind == "ReduceLROnPlateau":
            code += "  # drawn for a test loss that never improves"
        return factory, code

    def redraw(self) -> None:
        """Show the controls that matter for the chosen scheduler and draw its learning rate per step."""
        kind = self.controls["scheduler"].value
        for name in ("step_size", "gamma", "pct_start", "patience"):
            self.controls[name].layout.display = None if name in _PARAMS[kind] else "none"
        factory, code = self._factory()
        self.code.value = f"<pre>{html.escape(code)}</pre>"
        self.show(plot_lr_schedule(factory, self.controls["steps_per_epoch"].value,
                                   self.controls["epochs"].value, title=kind))


def lr_schedule_explorer(scheduler: str = "OneCycleLR", epochs: int = 15,
                         steps_per_epoch: int = 469) -> LRScheduleExplorer:
    """Choose a scheduler and its parameters → the learning rate at every step, as ``fit`` applies it."""
    return LRScheduleExplorer(scheduler, epochs, steps_per_epoch)
