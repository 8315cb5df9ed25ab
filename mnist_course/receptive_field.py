"""Receptive fields: the theoretical table of a real model, and the effective field from gradients.

:func:`receptive_field_table` runs one dummy forward pass with hooks on every *leaf* module and
applies, layer by layer, the textbook recurrences (Dumoulin & Visin 2016; Araujo et al. 2019)::

    k_eff = dilation * (kernel - 1) + 1
    jump  = jump_in * stride                      # input pixels between neighbouring units
    rf    = rf_in + (k_eff - 1) * jump_in         # side of the field, in input pixels
    start = start_in + ((k_eff - 1) / 2 - padding) * jump_in

``start`` is the centre of the first output unit's field in 0-based input-pixel coordinates (the centre
of the top-left input pixel is 0; it can be negative, or end in .5 for even kernels). Unit ``(i, j)``
of a layer sees the input box ``start + i * jump ± (rf - 1) / 2`` (rows) by the same in columns.

What the tracer sees, and what it does not:

* Only **modules** are traced. Functional calls inside ``forward`` (``F.relu``, ``F.max_pool2d``,
  ``x.view``) are invisible to hooks: write pools as ``nn.MaxPool2d`` modules. A spatial size that
  changes between two traced modules is reported with a warning, because the table would be wrong.
* ``nn.Conv2d``, ``nn.MaxPool2d`` and ``nn.AvgPool2d`` use their kernel, stride, padding, dilation.
* **Global pools** (``nn.AdaptiveAvgPool2d``/``AdaptiveMaxPool2d`` to 1×1, or an ``AvgPool2d``/
  ``MaxPool2d`` whose window covers the whole map) are treated as a kernel the size of the incoming
  map with stride 1 and no padding, so ``rf`` becomes the whole extent of the previous layer's fields:
  ``rf_in + (size_in - 1) * jump_in``. It can exceed 28: it counts the zero padding around the image,
  as published tables do. A ``Linear`` layer fed by a flattened map larger than 1×1 is global the same
  way.
* Every other layer whose output keeps the spatial size (BatchNorm, ReLU, Dropout, ``Flatten`` and
  ``Linear`` after a global pool, ``log_softmax`` modules) keeps the values of the row before it.
* The model is traced as a chain, in call order; branches (residual additions) are not merged.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

Pair = tuple[int, int]

_CONV = (nn.Conv2d,)
_POOL = (nn.MaxPool2d, nn.AvgPool2d)
_ADAPTIVE = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def _pair(value: int | tuple[int, ...]) -> Pair:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))


def _squash(hw: tuple) -> int | float | tuple:
    """One number when both axes agree (the usual square case), else the (h, w) pair."""
    h, w = hw
    return h if h == w else (h, w)


@dataclass
class RFRow:
    """One traced layer. Geometry fields are one number for square layers, else an (h, w) pair."""

    name: str
    type: str
    kernel: int | Pair | None
    stride: int | Pair | None
    padding: int | Pair | None
    dilation: int | Pair | None
    out_size: Pair
    jump: int | Pair
    rf: int | Pair
    start: float | tuple[float, float]
    channels: int | None = None
    spatial: bool = True
    note: str = ""

    def field_box(self, row: int, col: int) -> tuple[float, float, float, float]:
        """Input box seen by output unit ``(row, col)``: (top, left, bottom, right), inclusive pixel indices.

        Coordinates can fall outside the image (the field then covers zero padding).
        """
        (jh, jw), (rh, rw) = _pair(self.jump), _pair(self.rf)
        sh, sw = self.start if isinstance(self.start, tuple) else (self.start, self.start)
        ch, cw = sh + row * jh, sw + col * jw
        return (ch - (rh - 1) / 2, cw - (rw - 1) / 2, ch + (rh - 1) / 2, cw + (rw - 1) / 2)

    def center(self, row: int, col: int) -> tuple[float, float]:
        """Input-pixel centre (row, col) of unit ``(row, col)``'s field."""
        top, left, bottom, right = self.field_box(row, col)
        return ((top + bottom) / 2, (left + right) / 2)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return "×".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class RFTable:
    """The rows of :func:`receptive_field_table`; prints as text, shows as HTML in Jupyter."""

    columns = ("name", "type", "kernel", "stride", "padding", "dilation", "out_size", "jump", "rf", "start")

    def __init__(self, rows: list[RFRow], input_size: tuple[int, ...]):
        self.rows = rows
        self.input_size = tuple(input_size)

    @property
    def final_rf(self) -> int | Pair:
        """Receptive field of the last traced layer."""
        return self.rows[-1].rf if self.rows else 1

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[RFRow]:
        return iter(self.rows)

    def __getitem__(self, key: int | str) -> RFRow:
        """A row by position, or the last row with that module name."""
        if isinstance(key, str):
            for row in reversed(self.rows):
                if row.name == key:
                    return row
            raise KeyError(f"no layer named {key!r}; layers: {', '.join(r.name for r in self.rows)}")
        return self.rows[key]

    def _columns(self) -> tuple[str, ...]:
        return self.columns + (("note",) if any(r.note for r in self.rows) else ())

    def _cells(self) -> list[list[str]]:
        return [[_fmt(getattr(r, c)) if c != "note" else r.note for c in self._columns()] for r in self.rows]

    def __str__(self) -> str:
        header = [c if c != "out_size" else "out" for c in self._columns()]
        body = self._cells()
        widths = [max(len(x) for x in col) for col in zip(header, *body)]
        numeric = [2 <= i < len(self.columns) for i in range(len(header))]
        lines = []
        for cells in [header, *body]:
            lines.append("  ".join(c.rjust(w) if num else c.ljust(w)
                                   for c, w, num in zip(cells, widths, numeric)).rstrip())
        lines.insert(1, "-" * len(lines[0]))
        h, w = self.input_size[-2:]
        lines.append(f"input {h}×{w}; final receptive field {_fmt(self.final_rf)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)  # the aligned table: what a terminal shows and what nbval compares

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self._columns())
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
                       for cells in self._cells())
        h, w = self.input_size[-2:]
        caption = f"input {h}×{w}; final receptive field {html.escape(_fmt(self.final_rf))}"
        return (f'<table class="rf-table"><caption>{caption}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _model_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    for p in model.parameters():
        return (p.dtype if p.is_floating_point() else torch.float32), p.device
    for b in model.buffers():
        return (b.dtype if b.is_floating_point() else torch.float32), b.device
    return torch.float32, torch.device("cpu")


def _leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    return leaves or [("", model)]


class _Geometry:
    """Per-axis running state: jump, rf, start."""

    def __init__(self) -> None:
        self.jump = [1, 1]
        self.rf = [1, 1]
        self.start = [0.0, 0.0]

    def apply(self, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> None:
        for a in range(2):
            k_eff = dilation[a] * (kernel[a] - 1) + 1
            self.rf[a] += (k_eff - 1) * self.jump[a]
            self.start[a] += ((k_eff - 1) / 2 - padding[a]) * self.jump[a]
            self.jump[a] *= stride[a]


def receptive_field_table(model: nn.Module, input_size: tuple[int, ...] = (1, 28, 28)) -> RFTable:
    """Trace ``model`` on a zero input of ``input_size`` (C, H, W) and tabulate every leaf layer.

    The model's train/eval mode is restored afterwards and BatchNorm statistics are not touched.
    See the module docstring for the formulas and for what counts as a global pool.
    """
    geometry = _Geometry()
    rows: list[RFRow] = []
    problems: list[str] = []
    state = {"size": tuple(input_size[-2:]), "prev": "input", "flat_from": None}

    def hook(name: str, module: nn.Module, inputs: tuple, output: object) -> None:
        x = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        if not isinstance(output, torch.Tensor):
            return
        size_in = state["size"]
        if x is not None and x.dim() == 4 and tuple(x.shape[-2:]) != size_in:
            problems.append(
                f"the spatial size changed from {size_in} to {tuple(x.shape[-2:])} between "
                f"{state['prev']!r} and {name!r} without a traced module: a functional op "
                f"(F.max_pool2d? F.interpolate?) is invisible to hooks, so the receptive field table "
                f"is wrong from here on; use nn.MaxPool2d modules instead")
            size_in = tuple(x.shape[-2:])
        kernel = stride = padding = dilation = None
        note = ""
        spatial_out = output.dim() == 4
        out_size = tuple(output.shape[-2:]) if spatial_out else (1, 1)
        if isinstance(module, _CONV):
            kernel, stride = _pair(module.kernel_size), _pair(module.stride)
            dilation = _pair(module.dilation)
            if isinstance(module.padding, str):  # "same" / "valid"
                if module.padding == "valid":
                    padding = (0, 0)
                else:
                    padding = tuple((dilation[a] * (kernel[a] - 1)) // 2 for a in range(2))
            else:
                padding = _pair(module.padding)
            geometry.apply(kernel, stride, padding, dilation)
        elif isinstance(module, _POOL + _ADAPTIVE):
            if isinstance(module, _ADAPTIVE):
                global_pool = out_size == (1, 1)
            else:
                k = _pair(module.kernel_size)
                s = _pair(module.stride if module.stride is not None else module.kernel_size)
                global_pool = out_size == (1, 1) and all(k[a] >= size_in[a] for a in range(2))
            if global_pool:
                kernel, stride, padding, dilation = size_in, (1, 1), (0, 0), (1, 1)
                note = "global pool"
            elif isinstance(module, _ADAPTIVE):
                # Windows of an adaptive pool are exact only when the size divides evenly.
                stride = tuple(size_in[a] // out_size[a] for a in range(2))
                kernel = tuple(max(math.ceil((i + 1) * size_in[a] / out_size[a]) - (i * size_in[a]) // out_size[a]
                                   for i in range(out_size[a])) for a in range(2))
                padding, dilation = (0, 0), (1, 1)
                if any(size_in[a] % out_size[a] for a in range(2)):
                    note = "approximate: uneven adaptive windows"
            else:
                kernel, stride, padding = k, s, _pair(module.padding)
                dilation = _pair(getattr(module, "dilation", 1))
            geometry.apply(kernel, stride, padding, dilation)
        elif not spatial_out and x is not None and x.dim() == 2 and isinstance(module, nn.Linear) \
                and state["flat_from"] not in (None, (1, 1)):
            hw = state["flat_from"]
            kernel, stride, padding, dilation = hw, (1, 1), (0, 0), (1, 1)
            geometry.apply(kernel, stride, padding, dilation)
            note = f"global: sees the whole flattened {hw[0]}×{hw[1]} map"
            state["flat_from"] = (1, 1)
        elif spatial_out and out_size != size_in:
            raise NotImplementedError(
                f"{name!r} ({type(module).__name__}) changes the spatial size from {size_in} to "
                f"{out_size}; receptive_field_table supports Conv2d, Max/AvgPool2d and adaptive pools")
        if x is not None and x.dim() == 4 and not spatial_out:
            state["flat_from"] = size_in  # e.g. Flatten: the next Linear sees this whole map
        if spatial_out:
            state["size"] = out_size
        else:
            out_size = state["flat_from"] or state["size"]
        state["prev"] = name
        rows.append(RFRow(
            name=name, type=type(module).__name__,
            kernel=_squash(kernel) if kernel else None, stride=_squash(stride) if stride else None,
            padding=_squash(padding) if padding else None, dilation=_squash(dilation) if dilation else None,
            out_size=tuple(out_size), jump=_squash(tuple(geometry.jump)), rf=_squash(tuple(geometry.rf)),
            start=_squash(tuple(geometry.start)),
            channels=int(output.shape[1]) if output.dim() >= 2 else None, spatial=spatial_out, note=note,
        ))

    dtype, device = _model_dtype_device(model)
    modes = {m: m.training for m in model.modules()}
    handles = [m.register_forward_hook(lambda mod, i, o, _n=n: hook(_n, mod, i, o))
               for n, m in _leaf_modules(model)]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_size), dtype=dtype, device=device))
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    for message in problems:
        warnings.warn(message, stacklevel=2)
    return RFTable(rows, input_size)


class _Stop(Exception):
    """Raised inside a hook to end a forward pass early."""


def find_layer(model: nn.Module, layer_name: str) -> nn.Module:
    """The submodule called ``layer_name`` (as in ``named_modules``); a KeyError lists the names."""
    modules = dict(model.named_modules())
    if layer_name not in modules:
        names = ", ".join(n for n in modules if n)
        raise KeyError(f"no layer named {layer_name!r}; layers: {names}")
    return modules[layer_name]


def as_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) → normalised float (N, 1, 28, 28); float images are taken as normalised.

    A float tensor of shape (N, 28, 28) or (28, 28) gets its missing channel/batch axes.
    """
    if images.dtype == torch.uint8:
        from .data import normalize

        return normalize(images if images.dim() == 3 else images.reshape(-1, *images.shape[-2:]))
    x = images
    while x.dim() < 4:
        x = x.unsqueeze(0) if x.dim() == 2 else x.unsqueeze(1)
    return x


def effective_receptive_field(model: nn.Module, layer_name: str, images: torch.Tensor,
                              position: tuple[int, int] | None = None) -> torch.Tensor:
    """|d(unit)/d(input)| for one unit of ``layer_name``, averaged over ``images`` → (H, W) CPU tensor.

    The unit is the channel sum of the layer's output at ``position`` (row, col; default: the centre
    of the output map), as in Luo et al. (2016), "Understanding the effective receptive field".
    ``images`` are uint8 (N, 28, 28) or normalised float (N, 1, 28, 28). The model runs in eval mode
    (restored afterwards); the forward pass stops at the chosen layer.
    """
    module = find_layer(model, layer_name)
    dtype, device = _model_dtype_device(model)
    x = as_model_input(images).to(device=device, dtype=dtype).detach().clone().requires_grad_(True)
    captured: dict[str, torch.Tensor] = {}

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        captured["out"] = output
        raise _Stop

    modes = {m: m.training for m in model.modules()}
    handle = module.register_forward_hook(hook)
    try:
        model.eval()
        with torch.enable_grad():
            try:
                model(x)
            except _Stop:
                pass
            out = captured.get("out")
            if out is None:
                raise RuntimeError(f"layer {layer_name!r} was not called in the forward pass")
            if out.dim() == 4:
                h, w = out.shape[-2:]
                r, c = position if position is not None else (h // 2, w // 2)
                if not (0 <= r < h and 0 <= c < w):
                    raise ValueError(f"position {(r, c)} is outside the {h}×{w} output of {layer_name!r}")
                unit = out[:, :, r, c].sum()
            else:
                unit = out.reshape(len(out), -1).sum()
            (grad,) = torch.autograd.grad(unit, x)
    finally:
        handle.remove()
        for m, training in modes.items():
            m.training = training
    return grad.abs().sum(dim=1).mean(dim=0).detach().cpu()
