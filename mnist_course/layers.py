"""Looking inside a model: catch a layer's output with one forward hook."""

import contextlib

import torch
from torch import nn


class _Stop(Exception):
    """Raised by the hook to end the forward pass once the layer has run."""


def layer_output(model: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """Output of layer ``name`` (as in ``named_modules``; a KeyError lists them) for the model input ``x``
    (N, C, H, W), in eval mode; the forward pass stops there. Gradients flow when ``x`` requires them. The
    model's train/eval modes are restored."""
    modules, captured = dict(model.named_modules()), []
    if name not in modules:
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(n for n in modules if n)}")

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        captured.append(output)
        raise _Stop

    modes = {m: m.training for m in model.modules()}
    handle = modules[name].register_forward_hook(hook)
    try:
        with contextlib.suppress(_Stop):
            model.eval()(x)
    finally:
        handle.remove()
        for m, training in modes.items():
            m.training = training
    if not captured:
        raise RuntimeError(f"layer {name!r} was not called in the forward pass")
    return captured[0]
