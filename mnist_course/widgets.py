"""Interactive explorers for ipywidgets 7.7.1 (Colab) and 8: each draws PNGs into an ``ipywidgets.Image``,
never an ``Output`` widget (Notebook 6 cannot create one, Colab stacks their plots)."""

import base64
import html
import math
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets
import torch
from IPython import get_ipython
from IPython.display import display, update_display
from matplotlib.patches import Rectangle
from torch import nn
from torch.optim import lr_scheduler
from torchvision.utils import make_grid

from mnist_course_jupyter import MARK, VIEW

from .data import to_model_input
from .errors import CourseError
from .history import SPLIT_NAMES, History
from .layers import layer_output
from .plots import CourseFigure, _figure, _show_digit, plot_histories, plot_lr_schedule
from .receptive_field import effective_receptive_field, receptive_field_table

DPI = 80
_PARAMS = {"constant": (), "StepLR": ("step_size", "gamma"), "OneCycleLR": ("pct_start",),
           "ReduceLROnPlateau": ("factor", "patience")}  # lr_schedule_explorer: scheduler → its sliders


def _control(description: str, value: object, low: float | None = None, high: float | None = None,
             **kwargs: object) -> widgets.Widget:
    """A drop-down (``options``), or a slider from ``low`` to ``high`` that reports where it stops."""
    kind = widgets.Dropdown
    if low is not None:
        kind = widgets.FloatSlider if isinstance(value, float) else widgets.IntSlider
        kwargs.update(min=low, max=high, continuous_update=False)
    return kind(description=description, value=value, style={"description_width": "initial"},
                layout=widgets.Layout(min_width="260px"), **kwargs)


def _set_range(slider: widgets.IntSlider, top: int, value: int) -> None:
    """For another layer: the slider ends at ``top`` and starts at ``value``; unchanged if it ends there."""
    if slider.max != top:
        slider.max = max(slider.max, top)  # first widen, so that the value never leaves the range
        slider.value, slider.max = value, top


class App:
    """``.widget``: an Image of ``.figure`` (``draw(app)``), a wrapping ``row`` of ``.controls`` (name →
    widget), an HTML ``status``. A moved control or ``app(history, model)`` (a ``fit`` callback) redraws."""

    def __init__(self, controls: dict, draw: Callable[["App"], CourseFigure]):
        self.controls, self._draw, self._drawing, self.history, self._id = controls, draw, False, None, None
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.row = widgets.HBox([self.watch(control) for control in controls.values()],
                                layout=widgets.Layout(flex_flow="row wrap"))
        self.status = widgets.HTML()
        self.widget = widgets.VBox([self.image, self.row, self.status])

    def watch(self, control: widgets.Widget) -> widgets.Widget:
        control.observe(lambda _change: self._drawing or self.redraw(), names="value")
        return control

    def redraw(self) -> "App":
        """Draw again into the Image; controls that ``draw`` adjusts (a slider's range) do not redraw."""
        self._drawing = True
        try:
            self.figure = self._draw(self)
        finally:
            self._drawing = False
        self.image.value = self.figure.png(DPI)  # always one size per app: the picture never jumps
        self.image.layout.width = f"{round(self.figure.get_figwidth() * DPI)}px"
        return self

    def __call__(self, history: History | None, model: nn.Module | None = None) -> "App":
        self.history, shell = history, get_ipython()
        if self._id and shell and self._store not in shell.events.callbacks["post_run_cell"]:
            shell.events.register("post_run_cell", self._store)  # once the calling cell (``fit``) has run
        return self.redraw()

    def _store(self, *_result: object) -> None:  # the PNG shows the last curves; the view is drawn anew
        get_ipython().events.unregister("post_run_cell", self._store)
        update_display(self._repr_mimebundle_(), raw=True, metadata=MARK, display_id=self._id)

    def _ipython_display_(self) -> None:  # one output; ``self._id``: its display id, the same each time
        shown = display(self._repr_mimebundle_(), raw=True, metadata=MARK, display_id=self._id or True)
        self._id = shown.display_id

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict:
        view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
        return {VIEW: view, "text/plain": "<an interactive figure>",
                "image/png": base64.b64encode(self.image.value).decode("ascii")}


def rf_explorer(model: nn.Module, images: torch.Tensor, layer: str | None = None, index: int = 0) -> App:
    """A unit's receptive field on a digit: the theoretical one as a box, the effective one as red heat."""
    table = receptive_field_table(model, tuple(to_model_input(images[:1]).shape[1:]))
    names = list(dict.fromkeys(r.name for r in table.rows if r.kernel is not None and r.spatial))
    if not names:
        raise CourseError("rf_explorer: the model has no Conv2d or pooling layer")
    layer = layer or next((n for n in reversed(names) if table[n].out_size != (1, 1)), names[-1])
    labels = [(f"{n} ({table[n].type}, RF {table[n].rf})", n) for n in names]
    c = {"layer": _control("layer", layer, options=labels),
         "image": _control("image", index, 0, len(images) - 1),
         "row": _control("row", 0, 0, 0), "col": _control("col", 0, 0, 0),  # ranges: set by draw
         "erf": widgets.Checkbox(value=True, description="effective RF", indent=False)}

    def draw(app: App) -> CourseFigure:
        info = table[c["layer"].value]
        for key, size in zip(("row", "col"), info.out_size):  # start from the unit in the middle of the map
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
    labels = [(f"{n} ({m.in_channels}→{m.out_channels} channels)", n) for n, m in convs.items()]
    c = {"layer": _control("layer", layer or next(iter(convs)), options=labels),
         "image": _control("image", 0, 0, len(images) - 1),
         "channel": _control("channel", 0, 0, 0)}  # its range: set by draw

    def draw(app: App) -> CourseFigure:
        conv = convs[c["layer"].value]
        _set_range(c["channel"], conv.out_channels - 1, 0)
        name, i, channel = (c[k].value for k in ("layer", "image", "channel"))
        x = to_model_input(images[i:i + 1]).to(next(model.parameters()).device)
        with torch.no_grad():
            fmap = layer_output(model, name, x)[0, channel].float().cpu()
        kernels = conv.weight.detach().float().cpu()[channel, :16, None]  # the first 16 inputs
        grid = make_grid(kernels, nrow=math.ceil(len(kernels) ** 0.5), padding=1, pad_value=math.nan)[0]
        mosaic = grid[1:-1, 1:-1] if len(kernels) > 1 else grid  # one kernel: make_grid adds no border
        vmax = kernels.abs().max().item() or 1.0
        fig, axes = _figure(1, 3, (10, 3.6))
        _show_digit(axes[0], x)
        fig.colorbar(axes[1].imshow(mosaic.numpy(), cmap="bwr", vmin=-vmax, vmax=vmax), ax=axes[1])  # 0 white
        fig.colorbar(axes[2].imshow(fmap.numpy(), cmap="viridis"), ax=axes[2])
        shown = f"channel {channel}: kernels ({len(kernels)} of {conv.in_channels} inputs)"
        for ax, title in zip(axes, (f"image {i}", shown, f"{name} channel {channel}")):
            ax.set(title=title, xticks=[], yticks=[])
        return fig

    return App(c, draw).redraw()


def live_dashboard(history: History | None = None) -> App:
    """Loss and accuracy curves redrawn by each ``dash(history, model)``, touching nothing else in the output:
    ``dash = live_dashboard(); display(dash)``, then ``fit(…, callbacks=[dash])``."""

    def draw(app: App) -> CourseFigure:
        h = app.history
        if h is None or not h.epochs:
            app.status.value = "Waiting for the first epoch: pass it to <code>fit(…, callbacks=[…])</code>."
            return plot_histories([], title="no epoch finished yet")
        now = f"epoch {h.epochs}, {SPLIT_NAMES[h.held_out]} accuracy {h.acc()[-1]:.2f}%"
        best = f"best {h.best_acc:.2f}% at epoch {h.best_epoch}"
        app.status.value = html.escape(f"{h.name or 'run'}: {now} ({best})")
        return plot_histories(h)

    return App({}, draw)(history)


def run_comparison(folder: str | Path = "runs") -> App:
    """The curves of the ticked ``History`` files in ``folder``; "refresh" adds new runs, ticked."""
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
        skipped = f"; not histories: {', '.join(skipped)}" if skipped else ""
        app.status.value = html.escape(f"{len(runs)} run(s) in {folder}{skipped}")
        app.redraw()

    def draw(app: App) -> CourseFigure:
        chosen = {n: runs[n] for n, box in app.controls.items() if box.value}
        return plot_histories(chosen, title="" if chosen else "no run ticked" if runs else "no run saved yet")

    app = App({}, draw)
    button.on_click(refresh)
    refresh()
    return app


def lr_schedule_explorer(scheduler: str = "OneCycleLR", epochs: int = 15, steps_per_epoch: int = 469) -> App:
    """A scheduler and its parameters (the others hidden) → the learning rate of every step from 0.1, as
    ``fit`` steps it (ReduceLROnPlateau: for a validation loss that never improves)."""
    c = {"scheduler": _control("scheduler", scheduler, options=list(_PARAMS)),
         "epochs": _control("epochs", epochs, 1, 40), "step_size": _control("step_size", 5, 1, 20),
         "patience": _control("patience", 2, 0, 10), "gamma": _control("gamma", 0.5, 0.05, 0.95, step=0.05),
         "factor": _control("factor", 0.5, 0.05, 0.95, step=0.05),
         "pct_start": _control("pct_start", 0.3, 0.05, 0.95, step=0.05)}

    def draw(app: App) -> CourseFigure:
        kind, n = c["scheduler"].value, c["epochs"].value
        for name in ("step_size", "gamma", "factor", "pct_start", "patience"):
            c[name].layout.display = None if name in _PARAMS[kind] else "none"
        kwargs = {k: round(c[k].value, 2) for k in _PARAMS[kind]}  # the shown parameters, named as in torch
        if kind == "OneCycleLR":
            kwargs.update(max_lr=0.1, epochs=n, steps_per_epoch=steps_per_epoch)
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
        scheduler = None if kind == "constant" else getattr(lr_scheduler, kind)(optimizer, **kwargs)
        args = "".join(f", {k}={v}" for k, v in kwargs.items())
        app.status.value = f"<code>{kind}(optimizer{args})</code>" if scheduler else "no scheduler: constant"
        return plot_lr_schedule(optimizer, scheduler, steps_per_epoch=steps_per_epoch, epochs=n, title=kind)

    return App(c, draw).redraw()
