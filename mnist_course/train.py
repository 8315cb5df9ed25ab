"""The training engine: ``fit`` runs epochs, tests after each, and returns a :class:`History`.

The loop is the one every MNIST tutorial writes (``train`` then ``test``), with the chores that make
runs comparable: seeding, the right scheduler step, the best checkpoint, Ctrl-C that keeps what was
learnt so far, and output in the familiar form::

    Train: Loss=0.0431 Batch_id=117 Accuracy=99.30: 100%|██████████| 118/118
    Test set: Average loss: 0.0166, Accuracy: 9949/10000 (99.49%)
"""

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import lr_scheduler
from tqdm.auto import tqdm

from . import smoke
from .cuda_graph import GraphedStep
from .data import MNISTData, pick_device
from .environment import environment_line
from .history import History
from .summary import count_parameters

PER_BATCH_SCHEDULERS = (lr_scheduler.OneCycleLR, lr_scheduler.CyclicLR)
BAR_EVERY = 10  # batches between progress-bar updates (each one reads the GPU back)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy (if present) and torch (CPU and CUDA) so a CPU run repeats exactly."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np
        np.random.seed(seed)
    except ImportError:
        pass


def steps_per_batch(scheduler: object) -> bool:
    """True for schedulers that move every batch (OneCycleLR, CyclicLR); False for per-epoch ones."""
    return isinstance(scheduler, PER_BATCH_SCHEDULERS)


def step_after_batch(scheduler) -> None:
    """Step a per-batch scheduler after a batch. A OneCycleLR whose cycle is over keeps its last, lowest
    rate instead of raising: a cycle may end before the run does (``epochs`` of the scheduler < of ``fit``)."""
    total = getattr(scheduler, "total_steps", None)
    if total is None or scheduler.last_epoch < total - 1:
        scheduler.step()


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """Learning rate of the optimizer's first parameter group."""
    return optimizer.param_groups[0]["lr"]


def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, device: torch.device,
                scheduler=None, progress: bool = True, lr_log: list[float] | None = None,
                graph: GraphedStep | None = None) -> tuple[float, float]:
    """One pass over the training batches; returns (mean loss, accuracy %).

    Loss and correct answers are summed on the device, so a GPU never waits for the host: the only
    reads back are the progress bar's (every ``BAR_EVERY`` batches, and only when it is shown) and the
    totals at the end. With a ``graph`` (:class:`GraphedStep`), forward and backward are its replays.
    """
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen, last = 0, len(loader) - 1
    bar = tqdm(loader, disable=not progress, leave=True)
    for batch_id, (x, y) in enumerate(bar):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if graph is None:
            optimizer.zero_grad(set_to_none=True)
            out = model(x)
            loss = F.nll_loss(out, y)
            loss.backward()
        else:
            out, loss = graph.step(x, y)
        optimizer.step()
        if lr_log is not None:
            lr_log.append(current_lr(optimizer))
        if scheduler is not None and steps_per_batch(scheduler):
            step_after_batch(scheduler)
        total_loss += loss.detach() * len(y)
        correct += (out.argmax(1) == y).sum()
        seen += len(y)
        if progress and (batch_id % BAR_EVERY == 0 or batch_id == last):
            bar.set_description(f"Train: Loss={loss.item():.4f} Batch_id={batch_id} "
                                f"Accuracy={100 * correct.item() / seen:.2f}", refresh=False)
    return total_loss.item() / seen, 100 * correct.item() / seen


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device) -> tuple[float, int, int]:
    """Returns (mean loss, correct, total) on ``loader`` with the model in eval mode."""
    model.eval()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = model(x)
        total_loss += F.nll_loss(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
        seen += len(y)
    return total_loss.item() / seen, int(correct.item()), seen


def fit(model: nn.Module, data: MNISTData, epochs: int, optimizer: torch.optim.Optimizer | None = None,
        scheduler=None, device: str | torch.device = "auto", seed: int | None = None,
        progress: bool = True, verbose: bool = True, checkpoint: str | Path | None = None,
        callbacks: Sequence[Callable[[History], None]] = (), name: str = "", cuda_graph: bool = False) -> History:
    """Train ``model`` on ``data.train`` for ``epochs``, testing on ``data.test`` after each epoch.

    * ``optimizer`` defaults to SGD(lr=0.01, momentum=0.9). Create a ``scheduler`` on that optimizer
      yourself: OneCycleLR/CyclicLR are stepped every batch, ReduceLROnPlateau after each epoch on the
      test loss, every other scheduler once per epoch. A OneCycleLR shorter than the run holds its
      lowest rate once its cycle is over.
    * ``seed`` seeds everything first (same seed on CPU → identical history).
    * ``progress=False`` hides the tqdm bar; ``verbose=False`` also hides the per-epoch test line.
    * ``checkpoint`` is a path where the best-by-test-accuracy ``state_dict`` is saved.
    * ``callbacks`` are called as ``callback(history)`` after every epoch (live plots).
    * Ctrl-C stops training cleanly: the history so far is returned with ``interrupted=True``.
    * ``cuda_graph=True`` replays each step's forward and backward as a CUDA graph (on a CUDA device;
      ignored elsewhere): the same training, several times faster for a small network.
    In smoke mode (``MNIST_COURSE_SMOKE=1``) ``epochs`` is capped at 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, not {epochs}")
    epochs = smoke.cap(epochs, smoke.SMOKE_EPOCHS)
    if seed is not None:
        seed_everything(seed)
    device = data.device if str(device) == "auto" else pick_device(device)
    model.to(device)
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    graph = GraphedStep(model, data.train.batch_size) if cuda_graph and device.type == "cuda" else None
    history = History(name=name, meta={
        "model": type(model).__name__, "parameters": count_parameters(model), "device": str(device),
        "seed": seed, "torch": torch.__version__, "pipeline": data.pipeline,
        "train_images": data.train_images,
        "optimizer": type(optimizer).__name__, "scheduler": type(scheduler).__name__ if scheduler else None,
        "cuda_graph": graph is not None, "environment": environment_line(str(device)),
    })
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            lr = current_lr(optimizer)
            if verbose:
                print(f"Epoch {epoch}")
            train_loss, train_acc = train_epoch(model, data.train, optimizer, device, scheduler,
                                                progress, history.lr_per_step, graph)
            test_loss, correct, total = evaluate(model, data.test, device)
            if scheduler is not None and not steps_per_batch(scheduler):
                if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(test_loss)
                else:
                    scheduler.step()
            test_acc = 100 * correct / total
            if checkpoint is not None and test_acc > history.best_test_acc:
                save_checkpoint(model, checkpoint)
            for key, value in (("train_loss", train_loss), ("train_acc", train_acc), ("test_loss", test_loss),
                               ("test_acc", test_acc), ("lr", lr), ("seconds", time.perf_counter() - start)):
                getattr(history, key).append(value)
            if verbose:
                print(f"Test set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{total} "
                      f"({test_acc:.2f}%)")
            for callback in callbacks:
                callback(history)
    except KeyboardInterrupt:
        history.interrupted = True
        if verbose:
            print(f"Interrupted: returning the {history.epochs} finished epoch(s).")
    return history


def save_checkpoint(model: nn.Module, path: str | Path) -> Path:
    """``torch.save`` of the model's ``state_dict`` (written to a temporary file, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return path


def load_checkpoint(model: nn.Module, path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Load a ``state_dict`` saved by :func:`save_checkpoint` (``weights_only=True``: tensors only)."""
    model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
    return model
