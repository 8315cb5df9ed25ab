"""Looking inside a model: find a layer by name, and catch its output with one forward hook."""

import torch
from torch import nn


class _Stop(Exception):
    """Raised by the hook to end the forward pass once the layer has run."""


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (as in ``named_modules``); a KeyError lists the names."""
    modules = dict(model.named_modules())
    if name not in modules:
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(n for n in modules if n)}")
    return modules[name]


def layer_output(model: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """Output of layer ``name`` for the model input ``x`` (N, C, H, W), in eval mode; the forward pass stops
    there. Gradients flow when ``x`` requires them. The model's train/eval modes are restored."""
    layer, captured = find_layer(model, name), []

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        captured.append(output)
        raise _Stop

    modes = {m: m.training for m in model.modules()}
    handle = layer.register_forward_hook(hook)
    try:
        model.eval()
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
        for m, training in modes.items():
            m.training = training
    if not captured:
        raise RuntimeError(f"layer {name!r} was not called in the forward pass")
    return captured[0]
