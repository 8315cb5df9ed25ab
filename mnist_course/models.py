"""The course's blocks and models: images (N, 1, 28, 28) → log-probabilities (N, 10). Comments give each
layer's output size and receptive field (rf, in input pixels)."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Order = Literal["conv-bn-relu", "conv-relu-bn"]


class ConvBlock(nn.Module):
    """Convolution → BatchNorm → ReLU → Dropout. ``order="conv-relu-bn"`` normalises after the ReLU. The
    convolution has a bias only without BatchNorm (by default): BatchNorm subtracts the mean, and any bias with
    it. ``F.relu`` is no module, so torchsummary shows no row for it."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, padding: int = 0, dropout: float = 0.0,
                 bn: bool = True, order: Order = "conv-bn-relu", bias: bool | None = None) -> None:
        super().__init__()
        if order not in ("conv-bn-relu", "conv-relu-bn"):
            raise ValueError(f"order must be 'conv-bn-relu' or 'conv-relu-bn', not {order!r}")
        self.order = order
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=padding, bias=not bn if bias is None else bias)
        self.bn = nn.BatchNorm2d(out_ch) if bn else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        norm = self.bn or (lambda t: t)
        x = norm(F.relu(x)) if self.order == "conv-relu-bn" else F.relu(norm(x))
        return x if self.dropout is None else self.dropout(x)


class TransitionBlock(nn.Module):
    """2×2 max-pool and a 1×1 convolution that squeezes the channels; ``pool_first=False`` squeezes first."""

    def __init__(self, in_ch: int, out_ch: int, pool_first: bool = True, bias: bool = False) -> None:
        super().__init__()
        self.pool_first = pool_first
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=bias)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x)) if self.pool_first else self.pool(self.conv(x))


class GAPHead(nn.Module):
    """Global average pooling, then a 1×1 convolution to the 10 class scores: ``in_ch * 10`` weights."""

    def __init__(self, in_ch: int, num_classes: int = 10, bias: bool = False) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(in_ch, num_classes, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x)).flatten(1)


class Classifier(nn.Module):
    """Base class: a subclass puts its layers (images → 10 scores) in ``self.layers``."""

    layers: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.layers(x), dim=1)


class Baseline(Classifier):
    """Step 1: a heavy network with no tricks, weight in a dense head; its convolutions have biases."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            ConvBlock(1, 8, bn=False),  # 26×26, rf 3
            ConvBlock(8, 16, bn=False),  # 24×24, rf 5
            TransitionBlock(16, 8, bias=True),  # 12×12, rf 6
            ConvBlock(8, 16, bn=False),  # 10×10, rf 10
            ConvBlock(16, 32, bn=False),  # 8×8, rf 14
            nn.MaxPool2d(2),  # 4×4, rf 16
            nn.Flatten(),  # 32 × 4 × 4 = 512 numbers
            nn.Linear(512, 360),  # 184,680 parameters: the heavy part
            nn.ReLU(),
            nn.Linear(360, 10),
        )


class Net(Classifier):
    """The course's family: 3×3 blocks ``front``, a transition to ``squeeze`` channels (None: the max-pool alone,
    no 1×1), 3×3 blocks ``back``, and a head: ``"gap"`` (:class:`GAPHead`) or ``"conv"`` (one convolution as big
    as the last map). ``order`` places BatchNorm before or after the ReLU. Defaults: step 2."""

    def __init__(self, front: tuple[int, ...] = (8, 12), squeeze: int | None = 8,
                 back: tuple[int, ...] = (12, 12, 12, 12), bn: bool = False, dropout: float = 0.0,
                 head: Literal["gap", "conv"] = "conv", order: Order = "conv-bn-relu") -> None:
        super().__init__()
        if head not in ("gap", "conv"):
            raise ValueError(f"head must be 'gap' or 'conv', not {head!r}")
        layers, channels, size = [], 1, 28
        for i, width in enumerate((*front, *back)):
            layers.append(ConvBlock(channels, width, bn=bn, dropout=dropout, order=order))  # 3×3: size − 2
            channels, size = width, size - 2
            if i == len(front) - 1:  # size / 2
                layers.append(nn.MaxPool2d(2) if squeeze is None else TransitionBlock(channels, squeeze, bias=not bn))
                channels, size = squeeze or channels, size // 2
        if head == "gap":
            layers.append(GAPHead(channels))
        else:
            layers += [nn.Conv2d(channels, 10, kernel_size=size, bias=False), nn.Flatten()]
        self.layers = nn.Sequential(*layers)


class PaddedNet(Classifier):
    """The smallest networks' family: ``stages`` of padded 3×3 blocks (the size is kept), a 2×2 max-pool between
    stages, a GAP head. ``bias``: convolutions and head with biases (redundant before BatchNorm)."""

    def __init__(self, stages: tuple[tuple[int, ...], ...] = ((4, 4, 4), (8, 8, 8), (8, 8, 8)), dropout: float = 0.0,
                 bias: bool = False) -> None:
        super().__init__()
        layers, channels = [], 1
        for i, stage in enumerate(stages):
            layers += [nn.MaxPool2d(2)] if i else []  # 28 → 14 → 7
            for width in stage:
                layers.append(ConvBlock(channels, width, padding=1, dropout=dropout, bias=bias))
                channels = width
        self.layers = nn.Sequential(*layers, GAPHead(channels, bias=bias))


def final(dropout: float = 0.0) -> Net:
    """Step 6, the course's answer (7,952 parameters): wider blocks, BatchNorm and a GAP head."""
    return Net(front=(8, 16), back=(14, 14, 14, 14), bn=True, dropout=dropout, head="gap")


def tiny() -> Net:
    """Below the smallest public design (3,668 parameters): ``final``'s layout, narrower (notebook 08)."""
    return Net(front=(6, 8), back=(9, 9, 9, 10), bn=True, head="gap")


COURSE_MODELS = {  # name → (factory, one line for `python -m mnist_course models`)
    "baseline": (Baseline, "step 1: a heavy network with no tricks (dense head)"),
    "skeleton": (Net, "step 2: the light skeleton, no BatchNorm"),
    "batchnorm": (lambda: Net(bn=True), "step 3: the skeleton + BatchNorm"),
    "dropout": (lambda: Net(bn=True, dropout=0.1), "step 4: + dropout 0.1"),
    "gap": (lambda: Net(bn=True, dropout=0.1, head="gap"), "step 5: + global average pooling head"),
    "final": (final, "step 6: the course's final model"),
    "tiny": (tiny, "after the steps: under 3,762 parameters, with the 3,762 design's recipe (notebook 08)"),
}
