"""Training: one step, one epoch, ``fit`` over epochs, evaluation, prediction and checkpoints; progress in
the familiar ``Train: Loss=… Batch_id=… Accuracy=…`` form, on a tqdm bar or as text lines."""

import io
import random
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .cuda_graph import GraphedStep
from .data import MNISTData, to_model_input
from .errors import CourseError
from .history import History
from .paths import write_atomically
from .quick import quick_mode
from .report import environment_line
from .schedule import scheduler_step
from .summary import count_parameters

Step = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.optim.Optimizer], tuple[torch.Tensor, torch.Tensor]]


def seed_everything(seed: int) -> None:
    """Seed Python and torch (CPU and CUDA): the same seed and thread count on a CPU repeat a run exactly."""
    random.seed(seed)
    torch.manual_seed(seed)


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               optimizer: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the batch ``(x, y)``, as every tutorial writes it; returns (output, loss)."""
    optimizer.zero_grad()
    out = model(x)
    loss = F.nll_loss(out, y)
    loss.backward()
    optimizer.step()
    return out, loss


def train_epoch(model: nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer, scheduler: object = None,
                step: Step = train_step, progress: str = "bar", lr_log: list[float] | None = None) -> tuple[float, float]:
    """One pass over the training batches; returns (mean loss, running accuracy %). Sums stay on the device."""
    model.train()
    device = next(model.parameters()).device
    total_loss, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
    bar = tqdm(batches, disable=progress != "bar")
    last = len(batches) - 1 if hasattr(batches, "__len__") else -1  # a generator has no last batch to mark
    for batch_id, (x, y) in enumerate(bar):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out, loss = step(model, x, y, optimizer)
        if lr_log is not None:
            lr_log.append(optimizer.param_groups[0]["lr"])
        scheduler_step(scheduler, "batch")
        total_loss += loss.detach() * len(y)
        correct += (out.argmax(1) == y).sum()
        seen += len(y)
        if progress == "bar" and (batch_id % 10 == 0 or batch_id == last):
            bar.set_description(f"Train: Loss={loss.item():.4f} Batch_id={batch_id} "
                                f"Accuracy={100 * correct.item() / seen:.2f}", refresh=False)
    if progress == "lines":
        print(f"Train: Loss={loss.item():.4f} Batch_id={batch_id} Accuracy={100 * correct.item() / seen:.2f}")
    return total_loss.item() / seen, 100 * correct.item() / seen


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable) -> tuple[float, int, int]:
    """(mean loss, correct, total) over ``batches`` with the model in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = model(x)
        total_loss += F.nll_loss(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
        seen += len(y)
    return total_loss.item() / seen, int(correct.item()), seen


def fit(model: nn.Module, data: MNISTData, epochs: int, optimizer: torch.optim.Optimizer | None = None,
        scheduler: object = None, step: Step = train_step, callbacks: Sequence[Callable] = (),
        progress: str = "bar", name: str = "") -> History:
    """Train for ``epochs``, measuring after each; returns the :class:`History` (``interrupted`` after Ctrl-C).

    After each epoch: training accuracy in eval mode (``data.train_eval``), then the validation split and the
    test set when ``data`` has them. ``optimizer`` defaults to SGD(lr=0.01, momentum=0.9); the scheduler
    steps as :mod:`.schedule` says, on the validation loss (without one: the training loss, never the test);
    ``callbacks`` run as ``callback(history, model)`` after each epoch; ``progress``: "bar", "lines", "off".
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, not {epochs}")
    model.to(data.device)
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    history = History(name=name, meta=run_facts(model, data, optimizer, scheduler, step, epochs))
    try:
        for epoch in range(1, epochs + 1):
            start, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
            if progress != "off":
                print(f"Epoch {epoch}")
            train_loss, train_acc = train_epoch(model, data.train, optimizer, scheduler, step, progress,
                                                history.lr_per_step)
            measured = measure(model, data, show=progress != "off")
            scheduler_step(scheduler, "epoch", measured.get("val_loss", measured["train_eval_loss"]))
            history.add(train_loss=train_loss, train_acc=train_acc, lr=lr, seconds=time.perf_counter() - start,
                        **measured)
            for callback in callbacks:
                callback(history, model)
    except KeyboardInterrupt:
        history.interrupted = True
        print(f"Interrupted: kept the {history.epochs} finished epoch(s) of {epochs}.")
    return history


def measure(model: nn.Module, data: MNISTData, show: bool = False) -> dict[str, float]:
    """Loss and accuracy % (eval mode) on each split ``data`` has; ``show`` prints the familiar line for each."""
    measured = {}
    for split, title in (("train_eval", "Train set (eval mode)"), ("val", "Validation set"), ("test", "Test set")):
        if (batches := getattr(data, split)) is not None:
            loss, correct, total = evaluate(model, batches)
            measured[f"{split}_loss"], measured[f"{split}_acc"] = loss, 100 * correct / total
            if show:
                print(f"{title}: Average loss: {loss:.4f}, Accuracy: {correct}/{total} ({100 * correct / total:.2f}%)")
    return measured


def run_facts(model: nn.Module, data: MNISTData, optimizer: torch.optim.Optimizer, scheduler: object,
              step: Step, epochs: int) -> dict:
    """What a History records about its run (``quick``: a check that things run, never a result)."""
    return {"model": type(model).__name__, "parameters": count_parameters(model), "device": str(data.device),
            "torch": torch.__version__, "pipeline": data.pipeline, "train_images": data.train_images,
            "val_images": data.val_images, "test_images": data.test_images, "epochs": epochs, "optimizer": type(optimizer).__name__,
            "scheduler": type(scheduler).__name__ if scheduler else None, "cuda_graph": isinstance(step, GraphedStep),
            "environment": environment_line(str(data.device)), "quick": quick_mode()}


class BestCheckpoint:
    """A ``fit`` callback: save the ``state_dict`` whenever validation accuracy reaches a new best. Without a
    validation split it keeps the latest epoch: choosing by test accuracy would be a decision on the test set."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __call__(self, history: History, model: nn.Module) -> None:
        if not history.val_acc or history.val_acc[-1] > max(history.val_acc[:-1], default=-1.0):
            save_checkpoint(model, self.path)


def save_checkpoint(model: nn.Module, path: str | Path) -> Path:
    """``torch.save`` of the ``state_dict``, written to a temporary file and renamed (none left behind)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return write_atomically(path, buffer.getvalue())


def load_checkpoint(model: nn.Module, path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Load a ``state_dict`` saved by :func:`save_checkpoint` (``weights_only=True``: tensors only)."""
    try:
        model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
    except FileNotFoundError:
        raise CourseError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for truncated, empty or foreign files
        reason = "not a state_dict of tensors" if "weights_only" in str(exc) else (str(exc).splitlines() or [""])[0]
        raise CourseError(f"{path} is not a checkpoint of this model ({reason or type(exc).__name__})") from None
    return model


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes (CPU int64) for uint8 or normalised images, in eval mode (restored afterwards)."""
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    try:
        preds = [model(to_model_input(images[i:i + batch_size]).to(device)).argmax(1).cpu()
                 for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
