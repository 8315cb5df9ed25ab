"""CUDA graphs: record a training step's forward and backward once, then replay it for every batch.

A replay is one call instead of ~100 tiny kernel launches from Python. A graph needs fixed addresses: batches
are copied into the same tensors, and the gradients live in the graph's memory (never set them to None).
"""

import torch
import torch.nn.functional as F
from torch import nn


class GraphedStep:
    """A drop-in for :func:`mnist_course.train.train_step` for batches of ``batch_size`` images on a GPU:
    ``step(model, x, y, optimizer)`` replays forward, NLL loss and backward, then steps the optimizer."""

    def __init__(self, model: nn.Module, batch_size: int, image_shape: tuple[int, ...] = (1, 28, 28),
                 warmup: int = 3) -> None:
        device = next(model.parameters()).device
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need the model on a CUDA device, not {device}")
        self.model, self.batch_size = model, batch_size
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.x = torch.randn(batch_size, *image_shape, device=device)
        self.y = torch.randint(0, 10, (batch_size,), device=device)
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                model.zero_grad(set_to_none=True)
                F.nll_loss(model(self.x), self.y).backward()
        torch.cuda.current_stream().wait_stream(side)
        model.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = model(self.x)
            self.loss = F.nll_loss(self.out, self.y)
            self.loss.backward()
        self.out, self.loss = self.out.detach(), self.loss.detach()  # same memory, no autograd graph kept
        self.grads = [p.grad for p in self.params]
        model.load_state_dict(saved)  # undo what the warm-up did to BatchNorm's running statistics

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 optimizer: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients of ``(x, y)`` into ``.grad``, then ``optimizer.step()``; returns (output, loss)."""
        if len(y) == self.batch_size:
            self.x.copy_(x)
            self.y.copy_(y)
            self.graph.replay()
            out, loss = self.out, self.loss
        else:  # a smaller last batch: eagerly, into the same gradient tensors
            out = self.model(x)
            loss = F.nll_loss(out, y)
            for grad, new in zip(self.grads, torch.autograd.grad(loss, self.params)):
                grad.copy_(new)
        optimizer.step()
        return out, loss
