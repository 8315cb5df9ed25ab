"""Receptive fields: the exact table of a model's layers, and the effective field from input gradients.

Per axis and layer (Dumoulin & Visin 2016; a global pool is a kernel as large as the map)::

    k_eff = dilation * (kernel - 1) + 1
    jump  = jump_in * stride                      # input pixels between neighbouring units
    rf    = rf_in + (k_eff - 1) * jump_in         # side of the field, in input pixels
    start = start_in + ((k_eff - 1) / 2 - padding) * jump_in   # centre of unit 0's field (0-based)
"""

import html
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from torch import nn

from .data import to_model_input
from .layers import layer_output

Pair = tuple[int, int]
_GLOBAL = ((1, 1), (0, 0), (1, 1))  # stride, padding, dilation of a kernel as large as the whole map
_COLUMNS = ("name", "type", "kernel", "stride", "padding", "dilation", "out_size", "jump", "rf", "start")


def _pair(value: object) -> tuple:
    return (value[0], value[-1]) if isinstance(value, (tuple, list)) else (value, value)


def _squash(hw: tuple) -> int | float | tuple:
    return hw[0] if hw[0] == hw[1] else tuple(hw)  # one number for square layers


def _fmt(value: object) -> str:
    if isinstance(value, tuple):
        return "×".join(map(_fmt, value))
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


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
    spatial: bool = True
    note: str = ""

    def field_box(self, row: int, col: int) -> tuple[float, float, float, float]:
        """Unit ``(row, col)`` sees the input pixels ``start + (row, col) * jump ± (rf - 1) / 2``: this box
        as (top, left, bottom, right), inclusive; it can reach past the image, into the zero padding."""
        (sh, sw), (jh, jw), (rh, rw) = _pair(self.start), _pair(self.jump), _pair(self.rf)
        ch, cw = sh + row * jh, sw + col * jw
        return (ch - (rh - 1) / 2, cw - (rw - 1) / 2, ch + (rh - 1) / 2, cw + (rw - 1) / 2)


@dataclass(eq=False)  # compared and hashed by identity, as any object
class RFTable(Sequence):
    """The rows of :func:`receptive_field_table`; prints as an aligned text table, shows as HTML."""

    rows: list[RFRow]
    input_size: tuple[int, ...]

    @property
    def final_rf(self) -> int | Pair:
        return self.rows[-1].rf if self.rows else 1  # the last traced layer's

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | str) -> RFRow:
        """A row by position, or the last row with that layer name."""
        rows = [r for r in self.rows if r.name == key] if isinstance(key, str) else [self.rows[key]]
        if not rows:
            raise KeyError(f"no layer named {key!r}; layers: {', '.join(r.name for r in self.rows)}")
        return rows[-1]

    def _cells(self) -> tuple[list[str], list[list[str]], str]:
        columns = [*_COLUMNS, *(["note"] if any(r.note for r in self.rows) else [])]
        h, w = self.input_size[-2:]
        return (columns, [[_fmt(getattr(r, c)) for c in columns] for r in self.rows],
                f"input {h}×{w}; final receptive field {_fmt(self.final_rf)}")

    def __str__(self) -> str:
        columns, body, caption = self._cells()
        table = [["out" if c == "out_size" else c for c in columns], *body]
        widths = [max(map(len, column)) for column in zip(*table)]
        lines = ["  ".join(c.rjust(w) if 2 <= i < len(_COLUMNS) else c.ljust(w)
                           for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in table]
        return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:], caption])

    __repr__ = __str__  # the aligned table: what a terminal shows and what nbval compares

    def _repr_html_(self) -> str:
        columns, body, caption = self._cells()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
        return (f'<table class="rf-table"><caption>{html.escape(caption)}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def _window(layer: nn.Module, size_in: Pair, out_size: Pair) -> tuple[tuple | None, str]:
    """(kernel, stride, padding, dilation) pairs of a Conv2d or a pool, and a note; None for other layers."""
    if isinstance(layer, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        axes = list(zip(size_in, out_size))  # the windows are exact only when the sizes divide evenly
        kernel = tuple(max(math.ceil((i + 1) * n / o) - (i * n) // o for i in range(o)) for n, o in axes)
        geometry = (kernel, tuple(n // o for n, o in axes), (0, 0), (1, 1))
        note = "approximate: uneven adaptive windows" if any(n % o for n, o in axes) else ""
    elif isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        kernel, dilation = _pair(layer.kernel_size), _pair(getattr(layer, "dilation", 1))
        same = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))  # Conv2d(padding="same")
        padding = same if layer.padding == "same" else 0 if layer.padding == "valid" else layer.padding
        geometry, note = (kernel, _pair(layer.stride), _pair(padding), dilation), ""
    else:
        return None, ""
    is_pool = not isinstance(layer, nn.Conv2d)
    if is_pool and out_size == (1, 1) and all(k >= n for k, n in zip(geometry[0], size_in)):
        return (size_in, *_GLOBAL), "global pool"
    return geometry, note


def _rows(calls: list[tuple], size: Pair) -> Iterator[RFRow]:
    """One row per traced call (name, module, inputs, output), by the module docstring's recurrences."""
    axes, prev, flat_from = [(1, 1, 0.0)] * 2, "input", None  # (jump, rf, start) per axis
    for name, module, inputs, out in calls:
        x = inputs[0].shape if inputs and isinstance(inputs[0], torch.Tensor) else ()
        spatial, size_in = out.dim() == 4, tuple(x[-2:]) if len(x) == 4 else size
        out_size = tuple(out.shape[-2:]) if spatial else (1, 1)
        if size_in != size:
            warnings.warn(f"the spatial size changed from {size} to {size_in} between {prev!r} and {name!r}: "
                          "functional ops (F.max_pool2d? F.interpolate?) are invisible to hooks, so the "
                          "table is wrong from here on; use nn.MaxPool2d modules instead", stacklevel=3)
        geometry, note = _window(module, size_in, out_size)  # None: the layer keeps the geometry
        if isinstance(module, nn.Linear) and len(x) == 2 and flat_from not in (None, (1, 1)):
            geometry = (flat_from, *_GLOBAL)
            note, flat_from = "global: sees the whole flattened {}×{} map".format(*flat_from), (1, 1)
        elif geometry is None and spatial and out_size != size_in:
            raise NotImplementedError(f"{name!r} ({type(module).__name__}) changes the size from {size_in} "
                                      f"to {out_size}; only Conv2d, Max/AvgPool2d and adaptive pools can")
        for a, (k, s, p, d) in enumerate(zip(*geometry or ())):
            (jump, rf, start), k_eff = axes[a], d * (k - 1) + 1
            axes[a] = (jump * s, rf + (k_eff - 1) * jump, start + ((k_eff - 1) / 2 - p) * jump)
        if len(x) == 4 and not spatial:
            flat_from = size_in  # e.g. Flatten: the next Linear sees this whole map
        size, prev = out_size if spatial else size, name
        yield RFRow(name, type(module).__name__, *(map(_squash, geometry) if geometry else [None] * 4),
                    size if spatial else flat_from or size, *(_squash(v) for v in zip(*axes)), spatial, note)


def like_model(model: nn.Module, x: torch.Tensor) -> torch.Tensor:  # on the model's device, in its dtype
    t = next(iter([*model.parameters(), *model.buffers()]), torch.zeros(()))
    return x.to(device=t.device, dtype=t.dtype if t.is_floating_point() else torch.float32)


def receptive_field_table(model: nn.Module, input_size: tuple[int, ...] = (1, 28, 28)) -> RFTable:
    """Trace ``model`` on zeros of ``input_size`` (C, H, W): a row per leaf-layer call, as one chain
    (functional ops are invisible, branches are not merged). Train/eval modes are kept."""
    calls, leaves = [], [(n, m) for n, m in model.named_modules() if not list(m.children())]
    with ExitStack() as hooks, torch.no_grad():
        for n, m in leaves:
            hooks.enter_context(m.register_forward_hook(lambda m, i, o, n=n: calls.append((n, m, i, o))))
        layer_output(model, "", like_model(model, torch.zeros((1, *input_size))))  # "": the whole model
    calls = [c for c in calls if isinstance(c[3], torch.Tensor)]
    return RFTable(list(_rows(calls, tuple(input_size[-2:]))), tuple(input_size))


def effective_receptive_field(model: nn.Module, layer_name: str, images: torch.Tensor,
                              position: tuple[int, int] | None = None) -> torch.Tensor:
    """|d(unit)/d(input)| averaged over ``images`` (uint8, or normalised float) → (H, W) CPU tensor; the
    unit is the channel sum of the layer's output at ``position`` (row, col; default: the centre), as in
    Luo et al. (2016), "Understanding the effective receptive field"."""
    x = like_model(model, to_model_input(images)).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = layer_output(model, layer_name, x)
        if out.dim() == 4:
            h, w = out.shape[-2:]
            r, c = position if position is not None else (h // 2, w // 2)
            if not (0 <= r < h and 0 <= c < w):
                raise ValueError(f"position {(r, c)} is outside the {h}×{w} output of {layer_name!r}")
            out = out[:, :, r, c]
        (grad,) = torch.autograd.grad(out.sum(), x)
    return grad.abs().sum(dim=1).mean(dim=0).detach().cpu()
