"""Parameter counts, the torchsummary table, and the course's 20k-parameter budget."""

import contextlib
import copy
import io

from torch import nn
from torchsummary import summary as _torchsummary

from .errors import BudgetExceededError

INPUT_SIZE = (1, 28, 28)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def summary_text(model: nn.Module, input_size: tuple[int, ...] = INPUT_SIZE) -> str:
    """torchsummary's table as a string, computed on a CPU copy so it works on any machine."""
    cpu_copy = copy.deepcopy(model).cpu()
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        _torchsummary(cpu_copy, input_size, device="cpu")
    return buffer.getvalue()


def summary(model: nn.Module, input_size: tuple[int, ...] = INPUT_SIZE) -> None:
    """Print torchsummary's familiar table (works the same on CPU-only and GPU machines)."""
    print(summary_text(model, input_size), end="")


def check_budget(model: nn.Module, max_params: int = 20_000) -> int:
    """Return the parameter count; raise :class:`BudgetExceededError` unless it is below ``max_params``."""
    n = count_parameters(model)
    if n >= max_params:
        raise BudgetExceededError(
            f"{type(model).__name__} has {n:,} parameters; the budget is fewer than {max_params:,}"
        )
    return n
