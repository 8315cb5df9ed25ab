"""Parameter counts, torchsummary's table, and the course's 20k-parameter budget."""

import contextlib
import copy
import io

from torch import nn
from torchsummary import summary as _torchsummary

from .errors import CourseError


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def summary_text(model: nn.Module, input_size: tuple[int, ...] = (1, 28, 28)) -> str:
    """torchsummary's table as a string, computed on a CPU copy so it works on any machine."""
    with contextlib.redirect_stdout(io.StringIO()) as buffer:
        _torchsummary(copy.deepcopy(model).cpu(), input_size, device="cpu")
    return buffer.getvalue()


def summary(model: nn.Module, input_size: tuple[int, ...] = (1, 28, 28)) -> None:
    """Print torchsummary's table (the same on any machine)."""
    print(summary_text(model, input_size), end="")


def check_budget(model: nn.Module, max_params: int = 20_000) -> int:
    """The parameter count; :class:`CourseError` unless it is below ``max_params``."""
    n = count_parameters(model)
    if n >= max_params:
        raise CourseError(f"{type(model).__name__} has {n:,} parameters; "
                          f"the budget is fewer than {max_params:,}")
    return n
