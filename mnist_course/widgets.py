"""Interactive explorers (ipywidgets 7.7.1 as in Colab, and 8), each an :class:`App` that draws into an
``ipywidgets.Image``, never an ``Output`` widget (Notebook 6 cannot create one; Colab stacks their plots)."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets
import torch
import torch.nn.functional as F
from IPython import get_ipython
from IPython.display import display, update_display
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn
from torch.optim import lr_scheduler
from torchvision.utils import make_grid

from mnist_course_jupyter import MARK, VIEW

from .data import to_model_input
from .errors import CourseError
from .history import SPLIT_NAMES, History
from .layers import layer_output
from .plots import _figure, _show_digit, plot_histories, plot_lr_schedule, to_png
from .receptive_field import effective_receptive_field, receptive_field_table

__all__ = ["feature_browser", "live_dashboard", "lr_schedule_explorer", "rf_explorer", "run_comparison"]
DPI = 80
_INT, _FLOAT = widgets.IntSlider, widgets.FloatSlider
_PARAMS = {"constant": (), "StepLR": ("step_size", "gamma"), "OneCycleLR": ("pct_start",),
           "ReduceLROnPlateau": ("factor", "patience")}  # lr_schedule_explorer: scheduler → its sliders


def _control(kind: type, description: str, value: object, low: float | None = None, high: float | None = None,
             **kwargs: object) -> widgets.Widget:
    """A drop-down, or a slider (``low`` to ``high``) that reports where it stops; it keeps its width."""
    if low is not None:
        kwargs.update(min=low, max=high, continuous_update=False)
    return kind(description=description, value=value, style={"description_width": "initial"},
                layout=widgets.Layout(min_width="260px"), **kwargs)


def _set_range(slider: widgets.IntSlider, top: int, value: int) -> None:
    slider.max = max(slider.max, top)  # first widen, so that the value never leaves the range
    slider.value, slider.max = value, top


class App:
    """``.widget``: an Image of ``.figure`` (from ``draw(app)``; on top, so it never moves), a wrapping
    ``row`` of ``.controls`` (name → widget) and an HTML ``status``. New control values and ``app(history,
    model)`` (a ``fit`` callback) redraw. Displayed, it adds a PNG, marked so that a saved notebook keeps only
    the PNG (``mnist_course_jupyter``)."""

    def __init__(self, controls: dict, draw: Callable[[App], Figure]):
        self.controls, self._draw, self._drawing, self.history, self._id = controls, draw, False, None, None
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.row = widgets.HBox([self.watch(control) for control in controls.values()],
                                layout=widgets.Layout(flex_flow="row wrap"))
        self.status = widgets.HTML()
        self.widget = widgets.VBox([self.image, self.row, self.status])

    def watch(self, control: widgets.Widget) -> widgets.Widget:
        control.observe(lambda _change: self._drawing or self.redraw(), names="value")
        return control

    def redraw(self) -> App:
        """Draw again into the Image; controls that ``draw`` adjusts (a slider's range) do not redraw."""
        self._drawing = True
        try:
            self.figure = self._draw(self)
        finally:
            self._drawing = False
        self.image.value = to_png(self.figure, DPI)  # always one size per app: the picture never jumps
        self.image.layout.width = f"{round(self.figure.get_figwidth() * DPI)}px"
        return self

    def __call__(self, history: History | None, model: nn.Module | None = None) -> App:
        self.history, shell = history, get_ipython()
        if self._id and shell and self._store not in shell.events.callbacks["post_run_cell"]:
            shell.events.register("post_run_cell", self._store)  # once the calling cell (``fit``) has run
        return self.redraw()

    def _store(self, *_result: object) -> None:  # the PNG shows the last curves; the view is drawn anew
        get_ipython().events.unregister("post_run_cell", self._store)
        update_display(self._repr_mimebundle_(), raw=True, metadata=MARK, display_id=self._id)

    def _ipython_display_(self) -> None:  # one output; ``self._id``: its display id, the same each time
        self._id = display(self._repr_mimebundle_(), raw=True, metadata=MARK, display_id=self._id or True).display_id

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict:
        view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
        return {VIEW: view, "text/plain": "<an interactive figure>",
                "image/png": base64.b64encode(self.image.value).decode("ascii")}


def rf_explorer(model: nn.Module, images: torch.Tensor, layer: str | None = None, index: int = 0) -> App:
    """A unit's receptive field on a digit: the theoretical field as a box (it may reach into the zero
    padding), the effective field (the unit's input gradient) as red heat. ``images``: a few dozen."""
    table = receptive_field_table(model, tuple(to_model_input(images[:1]).shape[1:]))
    names = list(dict.fromkeys(r.name for r in table.rows if r.kernel is not None and r.spatial))
    if not names:
        raise CourseError("rf_explorer: the model has no Conv2d or pooling layer")
    layer = layer or next((n for n in reversed(names) if table[n].out_size != (1, 1)), names[-1])
    (h, w), labels = table[layer].out_size, [(f"{n} ({table[n].type}, RF {table[n].rf})", n) for n in names]
    c = {"layer": _control(widgets.Dropdown, "layer", layer, options=labels),
         "image": _control(_INT, "image", index, 0, len(images) - 1),
         "row": _control(_INT, "row", h // 2, 0, h - 1), "col": _control(_INT, "col", w // 2, 0, w - 1),
         "erf": widgets.Checkbox(value=True, description="effective RF", indent=False)}

    def draw(app: App) -> Figure:
        info = table[c["layer"].value]
        for key, size in zip(("row", "col"), info.out_size):
            if c[key].max != size - 1:  # another layer: start from the unit in the middle of its map
                _set_range(c[key], size - 1, size // 2)
        name, i, r, col, erf = (c[k].value for k in ("layer", "image", "row", "col", "erf"))
        top, left, bottom, right = info.field_box(r, col)
        fig, (ax,) = _figure(1, 1, (5, 5.4))
        _show_digit(ax, to_model_input(images[i:i + 1]))
        if erf:
            heat = effective_receptive_field(model, name, images[i:i + 1], position=(r, col))
            heat = heat / heat.max() if heat.max() > 0 else heat
            ax.imshow(heat.numpy(), cmap="Reds", vmin=0, vmax=1, alpha=(0.85 * heat.sqrt()).numpy())
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False,
                               edgecolor="deepskyblue", linewidth=2, clip_on=False))
        ax.set(facecolor="0.8", xlim=(min(-0.5, left - 0.5), max(27.5, right + 0.5)),  # grey: zero padding
               ylim=(max(27.5, bottom + 0.5), min(-0.5, top - 0.5)))
        ax.set_title(f"{name}: unit ({r}, {col}) of {info.out_size[0]}×{info.out_size[1]}\nreceptive field "
                     f"{info.rf} (box), jump {info.jump}" + (", red: effective" if erf else ""), fontsize=10)
        return fig

    return App(c, draw).redraw()


def feature_browser(model: nn.Module, images: torch.Tensor, layer: str | None = None) -> App:
    """A Conv2d output channel: its kernels (one per input channel, as a mosaic) and its feature map."""
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if not convs:
        raise CourseError("feature_browser: the model has no Conv2d layer")
    layer = layer or next(iter(convs))
    labels = [(f"{n} ({m.in_channels}→{m.out_channels} channels)", n) for n, m in convs.items()]
    c = {"layer": _control(widgets.Dropdown, "layer", layer, options=labels),
         "image": _control(_INT, "image", 0, 0, len(images) - 1),
         "channel": _control(_INT, "channel", 0, 0, convs[layer].out_channels - 1)}

    def draw(app: App) -> Figure:
        conv = convs[c["layer"].value]
        if c["channel"].max != conv.out_channels - 1:  # another layer: start from its first channel
            _set_range(c["channel"], conv.out_channels - 1, 0)
        name, i, channel = (c[k].value for k in ("layer", "image", "channel"))
        x = to_model_input(images[i:i + 1]).to(next(model.parameters()).device)
        with torch.no_grad():
            fmap = layer_output(model, name, x)[0, channel].float().cpu()
        kernels = conv.weight.detach().float().cpu()[channel, :16, None]  # the first 16 inputs
        grid = make_grid(kernels, nrow=math.ceil(len(kernels) ** 0.5), padding=1, pad_value=math.nan)
        grid = grid if len(kernels) > 1 else F.pad(grid, (1, 1, 1, 1), value=math.nan)  # one kernel: no border
        vmax = kernels.abs().max().item() or 1.0
        fig, axes = _figure(1, 3, (10, 3.6))
        _show_digit(axes[0], x)
        mosaic = axes[1].imshow(grid[0, 1:-1, 1:-1].numpy(), cmap="bwr", vmin=-vmax, vmax=vmax)  # 0 is white
        fig.colorbar(mosaic, ax=axes[1])
        fig.colorbar(axes[2].imshow(fmap.numpy(), cmap="viridis"), ax=axes[2])
        shown = f"channel {channel}: kernels ({len(kernels)} of {conv.in_channels} inputs)"
        for ax, title in zip(axes, (f"image {i}", shown, f"{name} channel {channel}")):
            ax.set(title=title, xticks=[], yticks=[])
        return fig

    return App(c, draw).redraw()


def live_dashboard(history: History | None = None) -> App:
    """Loss and accuracy curves, redrawn by every call ``dash(history, model)``, touching nothing else in the
    cell's output: ``dash = live_dashboard(); display(dash)``, then ``fit(..., callbacks=[dash])``."""

    def draw(app: App) -> Figure:
        h = app.history
        if h is None or not h.epochs:
            app.status.value = "Waiting for the first epoch: pass it to <code>fit(…, callbacks=[…])</code>."
            return plot_histories([], title="no epoch finished yet")
        held = SPLIT_NAMES[h.held_out]
        best = f"best {h.best_acc:.2f}% at epoch {h.best_epoch}"
        now = f"epoch {h.epochs}, {held} accuracy {h.acc()[-1]:.2f}%"
        app.status.value = html.escape(f"{h.name or 'run'}: {now} ({best})")
        return plot_histories(h)

    return App({}, draw)(history)


def run_comparison(folder: str | Path = "runs") -> App:
    """Tick boxes over the ``History`` JSON files in ``folder``; the ticked runs' curves overlaid. The refresh
    button reads the folder again: new runs appear ticked, unticked ones stay unticked."""
    folder, runs, button = Path(folder), {}, widgets.Button(description="refresh", icon="refresh")

    def refresh(_button: object = None) -> None:
        ticked, skipped = {n: box.value for n, box in app.controls.items()}, []
        runs.clear()
        for path in sorted(folder.glob("*.json")):
            try:
                runs[path.stem] = History.load(path)
            except CourseError:
                skipped.append(path.name)
        app.controls = {n: app.watch(widgets.Checkbox(value=ticked.get(n, True), description=n, indent=False,
                                                      layout=widgets.Layout(width="auto"))) for n in runs}
        app.row.children = (button, *app.controls.values())
        app.status.value = html.escape(f"{len(runs)} run(s) in {folder}" + "; not histories: " * bool(skipped)
                                       + ", ".join(skipped))
        app.redraw()

    def draw(app: App) -> Figure:
        chosen = {n: runs[n] for n, box in app.controls.items() if box.value}
        return plot_histories(chosen, title="" if chosen else "no run ticked" if runs else "no run saved yet")

    app = App({}, draw)
    button.on_click(refresh)
    refresh()
    return app


def lr_schedule_explorer(scheduler: str = "OneCycleLR", epochs: int = 15, steps_per_epoch: int = 469) -> App:
    """A scheduler and the parameters it takes (the others are hidden) → the learning rate of every step
    from 0.1, exactly as ``fit`` steps it (ReduceLROnPlateau: for a validation loss that never improves)."""
    c = {"scheduler": _control(widgets.Dropdown, "scheduler", scheduler, options=list(_PARAMS)),
         "epochs": _control(_INT, "epochs", epochs, 1, 40),
         "step_size": _control(_INT, "step_size", 5, 1, 20), "patience": _control(_INT, "patience", 2, 0, 10),
         "gamma": _control(_FLOAT, "gamma", 0.5, 0.05, 0.95, step=0.05),
         "factor": _control(_FLOAT, "factor", 0.5, 0.05, 0.95, step=0.05),
         "pct_start": _control(_FLOAT, "pct_start", 0.3, 0.05, 0.95, step=0.05)}

    def draw(app: App) -> Figure:
        kind, n = c["scheduler"].value, c["epochs"].value
        for name in ("step_size", "gamma", "factor", "pct_start", "patience"):
            c[name].layout.display = None if name in _PARAMS[kind] else "none"
        kwargs = {k: round(c[k].value, 2) for k in _PARAMS[kind]}  # the shown parameters, named as in torch
        if kind == "OneCycleLR":
            kwargs.update(max_lr=0.1, epochs=n, steps_per_epoch=steps_per_epoch)
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
        scheduler = getattr(lr_scheduler, kind)(optimizer, **kwargs) if kind != "constant" else None
        args = "".join(f", {k}={v}" for k, v in kwargs.items())
        app.status.value = f"<code>{kind}(optimizer{args})</code>" if scheduler else "no scheduler: constant"
        return plot_lr_schedule(optimizer, scheduler, steps_per_epoch=steps_per_epoch, epochs=n, title=kind)

    return App(c, draw).redraw()
