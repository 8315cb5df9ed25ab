"""The course's models: three building blocks, one class per step, the four reproductions, a registry.

Every model maps images ``(N, 1, 28, 28)`` to log-probabilities ``(N, 10)``: its ``forward`` ends in
``F.log_softmax(x, dim=1)``. Why log-probabilities and not raw scores (logits)?

- ``log_softmax(z)_k = z_k - log(sum_j exp(z_j))``; ``NLLLoss`` picks ``-log_softmax(z)_y`` for the true
  class ``y``. That is exactly the cross-entropy ``-log(softmax(z)_y)``, so
  ``F.nll_loss(F.log_softmax(z, 1), y) == F.cross_entropy(z, y)``: same loss, same gradients.
- ``log_softmax`` is computed stably (log-sum-exp), unlike ``torch.log(F.softmax(z))``, which underflows
  to ``log(0) = -inf`` for a very confident wrong answer.
- The prediction is the same either way (``argmax``), and ``output.exp()`` gives probabilities that sum
  to 1, which the course plots.

Receptive fields in the comments ("rf") are those of a pixel of the layer's output, in input pixels.
"""

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UnknownModelError

Order = Literal["conv-bn-relu", "conv-relu-bn"]


# --- building blocks -------------------------------------------------------------------------------


class ConvBlock(nn.Module):
    """Convolution → BatchNorm → ReLU → Dropout: the brick every model is built from.

    - ``order="conv-relu-bn"`` normalises after the ReLU instead (the order 001, 002 and 004 use).
    - ``bn=False`` leaves BatchNorm out; a ``Dropout`` module exists only when ``dropout > 0``.
    - The ReLU is the function ``F.relu``, not a module, so it never gets a row in torchsummary's
      table: that is how 003 lists its blocks (``Conv2d, BatchNorm2d, Dropout, ConvBlock``).
    - ``bias=False`` by default: BatchNorm subtracts the mean right after, which cancels any bias.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        padding: int = 0,
        dropout: float = 0.0,
        bn: bool = True,
        order: Order = "conv-bn-relu",
        bias: bool = False,
    ) -> None:
        super().__init__()
        if order not in ("conv-bn-relu", "conv-relu-bn"):
            raise ValueError(f"order must be 'conv-bn-relu' or 'conv-relu-bn', not {order!r}")
        self.order = order
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=padding, bias=bias)
        self.bn = nn.BatchNorm2d(out_ch) if bn else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.bn is None else self.bn(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = F.relu(self._norm(x)) if self.order == "conv-bn-relu" else self._norm(F.relu(x))
        return x if self.dropout is None else self.dropout(x)


class TransitionBlock(nn.Module):
    """2×2 max-pool (halves the image) + 1×1 convolution (squeezes the channels); no BN, no ReLU.

    ``pool_first=True`` pools, then squeezes: the 1×1 convolution runs on a quarter of the pixels.
    ``pool_first=False`` squeezes, then pools (001, 003 and 004 do that). Same parameters either way:
    ``in_ch * out_ch`` (+ ``out_ch`` with ``bias``).
    """

    def __init__(self, in_ch: int, out_ch: int, pool_first: bool = True, bias: bool = False) -> None:
        super().__init__()
        self.pool_first = pool_first
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=bias)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x)) if self.pool_first else self.pool(self.conv(x))


class GAPHead(nn.Module):
    """Global average pooling + 1×1 convolution to the class scores, flattened to ``(N, 10)``.

    It replaces a big last convolution (or a dense layer) by ``in_ch * 10`` weights, whatever the
    image size. Averaging and a 1×1 convolution are both linear, so pooling before or after the
    convolution gives the same numbers; pooling first is cheaper.
    """

    def __init__(self, in_ch: int, num_classes: int = 10) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(in_ch, num_classes, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x)).flatten(1)


class Classifier(nn.Module):
    """Base class: a subclass puts its layers (images → 10 scores) in ``self.layers``."""

    layers: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.layers(x), dim=1)


# --- the course, one step at a time -----------------------------------------------------------------


class Baseline(Classifier):
    """Step 1, baseline: a heavy network with no tricks (195,402 parameters; like 004's Model1, "194k").

    **Target:** get the pipeline right (data, loop, loss, accuracy) with a network that surely learns;
    no BatchNorm, no dropout, no padding. (004's Model1: 99.15%, over-fitting.)

    The weight sits where most classic tutorials put it, in a dense head: 95% of the parameters are
    the two ``Linear`` layers, which cost little compute. The convolutional body is the skeleton's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            ConvBlock(1, 8, bn=False),  # 26×26, rf 3
            ConvBlock(8, 16, bn=False),  # 24×24, rf 5
            TransitionBlock(16, 8),  # 12×12, rf 6
            ConvBlock(8, 16, bn=False),  # 10×10, rf 10
            ConvBlock(16, 32, bn=False),  # 8×8, rf 14
            nn.MaxPool2d(2),  # 4×4, rf 16
            nn.Flatten(),  # 32 × 4 × 4 = 512 numbers
            nn.Linear(512, 360),  # 184,680 parameters: the heavy part
            nn.ReLU(),
            nn.Linear(360, 10),  # every output sees the whole image
        )


class Skeleton(Classifier):
    """Step 2, skeleton: the final shape of the network at a light budget (7,704 parameters).

    **Target:** under 8,000 parameters, receptive field 28 at the end; no BatchNorm, no dropout yet.
    (004's similar Model2, 5,784 parameters: 88.7%, under-fitting.)

    The switches are the next steps, one change each: ``bn`` (step 3), ``dropout`` (step 4) and
    ``gap`` (step 5: a GAP head instead of the big 4×4 last convolution).
    """

    def __init__(self, bn: bool = False, dropout: float = 0.0, gap: bool = False) -> None:
        super().__init__()

        def block(in_ch: int, out_ch: int) -> ConvBlock:
            return ConvBlock(in_ch, out_ch, bn=bn, dropout=dropout)

        if gap:
            head = [GAPHead(12)]  # rf 22 + global average
        else:
            head = [nn.Conv2d(12, 10, kernel_size=4, bias=False), nn.Flatten()]  # 1×1, rf 28
        self.layers = nn.Sequential(
            block(1, 8),  # 26×26, rf 3
            block(8, 12),  # 24×24, rf 5
            TransitionBlock(12, 8),  # 12×12, rf 6
            block(8, 12),  # 10×10, rf 10
            block(12, 12),  # 8×8, rf 14
            block(12, 12),  # 6×6, rf 18
            block(12, 12),  # 4×4, rf 22
            *head,
        )


class WithBatchNorm(Skeleton):
    """Step 3, the skeleton + BatchNorm after every 3×3 convolution (7,840 parameters).

    **Target:** train faster and reach higher accuracy by normalising every layer's output; the price
    is 2 parameters per channel. (004's Model2 with BN: better, but over-fitting.)
    """

    def __init__(self) -> None:
        super().__init__(bn=True)


class WithDropout(Skeleton):
    """Step 4, the skeleton + BatchNorm + dropout 0.1 after every 3×3 block (7,840 parameters).

    **Target:** close the gap between train and test accuracy (regularisation); no new parameters.
    """

    def __init__(self) -> None:
        super().__init__(bn=True, dropout=0.1)


class WithGAP(Skeleton):
    """Step 5, global average pooling replaces the big 4×4 last convolution (6,040 parameters).

    **Target:** a head that works for any image size and costs 120 parameters instead of 1,920.
    Fewer parameters means less capacity; step 6 spends the savings.
    (004's Model3 is this network with the 1×1 squeeze before the pooling: see ``Ref004``.)
    """

    def __init__(self) -> None:
        super().__init__(bn=True, dropout=0.1, gap=True)


class Final(Classifier):
    """Step 6, final: the course's answer, 99.4% under 8,000 parameters (7,952 parameters).

    **Target:** ≥ 99.4% test accuracy in each of the last three of 15 epochs, for any seed, under
    8,000 parameters. The skeleton's front (8 and 16 channels, then max-pool and a 1×1 squeeze to 8),
    then **four** 3×3 blocks of 14 channels: the receptive field reaches 22 pixels on a 4×4 map before
    the GAP head. Trained with SGD and weight decay 5e-4, OneCycleLR and ±7° rotation
    (``recipes.RECIPES["final"]``).

    No dropout by default: with augmentation this network is short of capacity (train accuracy stays
    close to test accuracy), so dropout only takes capacity away; on a CPU it also costs more time than
    the convolutions (``benchmarks/design_search.py`` and ``results/final_design.md`` show both).
    """

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            ConvBlock(1, 8, dropout=dropout),  # 26×26, rf 3
            ConvBlock(8, 16, dropout=dropout),  # 24×24, rf 5
            TransitionBlock(16, 8),  # 12×12, rf 6
            ConvBlock(8, 14, dropout=dropout),  # 10×10, rf 10
            ConvBlock(14, 14, dropout=dropout),  # 8×8, rf 14
            ConvBlock(14, 14, dropout=dropout),  # 6×6, rf 18
            ConvBlock(14, 14, dropout=dropout),  # 4×4, rf 22
            GAPHead(14),
        )


# --- reproductions of the design documents ---------------------------------------------------------


class Ref001(Classifier):
    """Reproduction of ``001_ad5756a4684e3034.txt``: 9,962 parameters.

    **Target:** 99.4% in 15 epochs with SGD (published: "over 99.4%").

    001's rows do not add up to its own total (they sum to 10,062): each convolution is written
    ``weights + bias`` but most results are the weights alone (``14*30*3*3 + 30 = 3780``), 10→14 says
    1,414 (it is 1,260 + 14), and BatchNorm is given C parameters. The one reading that gives its
    total 9,962 exactly: **no convolution has a bias** (9,756 weights) and **BatchNorm has its usual
    scale and shift, 2×C** (2 × 103 channels = 206).

    Layer order as in 001's table: Conv → ReLU → BN → Dropout in the body, Conv → BN → ReLU → Dropout
    in the 1×1 block after the average pool; the 30→10 1×1 convolution before the max-pool has no
    ReLU or BN. Inferred: dropout 0.05 (001 does not give the rate).
    """

    def __init__(self, dropout: float = 0.05) -> None:
        super().__init__()

        def block(in_ch: int, out_ch: int) -> ConvBlock:
            return ConvBlock(in_ch, out_ch, dropout=dropout, order="conv-relu-bn")

        self.layers = nn.Sequential(
            block(1, 14),  # 26×26, rf 3
            block(14, 30),  # 24×24, rf 5
            TransitionBlock(30, 10, pool_first=False),  # 12×12, rf 6
            block(10, 14),  # 10×10, rf 10
            block(14, 15),  # 8×8, rf 14
            block(15, 15),  # 6×6, rf 18
            nn.AvgPool2d(6),  # 1×1
            ConvBlock(15, 15, kernel_size=1, dropout=dropout),
            nn.Conv2d(15, 10, kernel_size=1, bias=False),
            nn.Flatten(),
        )


class Ref002(Classifier):
    """Reproduction of ``002_dceba906c798af8d.txt``, its 25-layer list: 18,520 parameters.

    **Target:** 99.4% in under 20 epochs (published: 99.44%).

    Three blocks of 3×3 convolutions (8 → 16 → 32 channels, padding 1, no bias), each followed by a
    2×2 max-pool and a 1×1 "antman" convolution back to 8 channels (10 at the end), then GAP.
    BatchNorm after every convolution except the last 1×1 ("post ReLU": Conv → ReLU → BN), dropout 0.1
    after the first two transitions. Receptive field 3, 5, 7, 8, 12, 16, 18, 26, 34, 38.

    - 002 says "padding 1" for its 1×1 convolutions but gives unchanged sizes (14 → 14, 7 → 7, 3 → 3):
      the sizes are followed, i.e. padding 0.
    - The ReLU after the 1×1 transition convolutions is inferred (002 lists no ReLU at all, and says BN
      comes after ReLU). Its text also mentions a final dropout of 0.01; its layer list says 0.1: 0.1.
    - The last 1×1 convolution runs after GAP (``GAPHead``) instead of before: same result, same count.
    """

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()

        def block(in_ch: int, out_ch: int) -> ConvBlock:
            return ConvBlock(in_ch, out_ch, padding=1, order="conv-relu-bn")

        def squeeze(in_ch: int, out_ch: int) -> ConvBlock:
            return ConvBlock(in_ch, out_ch, kernel_size=1, dropout=dropout, order="conv-relu-bn")

        self.layers = nn.Sequential(
            block(1, 8),  # 28×28, rf 3
            block(8, 16),  # 28×28, rf 5
            block(16, 32),  # 28×28, rf 7
            nn.MaxPool2d(2),  # 14×14, rf 8
            squeeze(32, 8),
            block(8, 16),  # 14×14, rf 12
            block(16, 32),  # 14×14, rf 16
            nn.MaxPool2d(2),  # 7×7, rf 18
            squeeze(32, 8),
            block(8, 16),  # 7×7, rf 26
            block(16, 32),  # 7×7, rf 34
            nn.MaxPool2d(2),  # 3×3, rf 38
            GAPHead(32),
        )


class MaxPoolingBlock(TransitionBlock):
    """003's transition: 1×1 convolution with bias, then max-pool. Named as in 003 for torchsummary."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(in_ch, out_ch, pool_first=False, bias=True)


class Ref003(nn.Module):
    """Reproduction of ``003_f587a0499b10d646.txt``, ``Net(in_channels=1, n_channels=32)``: 19,866 parameters.

    **Target:** 99.4% in under 20 epochs (published: 99.51% at epoch 16).

    Matches 003's torchsummary table row for row: ``ConvBlock`` (Conv2d with bias → BN → ``F.relu`` →
    Dropout), ``MaxPoolingBlock`` (1×1 conv, then pool), ``AvgPool2d(4)`` and ``Linear(32, 10)``.
    The flattening is ``.flatten(1)`` in ``forward``, not an ``nn.Flatten`` that would add a row.
    Inferred: the dropout rates, 0.05 before the pool and 0.1 after ("slightly increased"); every
    block has a Dropout row, so none is 0.
    """

    def __init__(self, in_channels: int = 1, n_channels: int = 32) -> None:
        super().__init__()
        half = n_channels // 2

        def block(in_ch: int, out_ch: int, dropout: float) -> ConvBlock:
            return ConvBlock(in_ch, out_ch, dropout=dropout, bias=True)

        self.layers = nn.Sequential(
            block(in_channels, half, 0.05),  # 26×26, rf 3
            block(half, half, 0.05),  # 24×24, rf 5
            block(half, half, 0.05),  # 22×22, rf 7
            block(half, n_channels, 0.05),  # 20×20, rf 9
            MaxPoolingBlock(n_channels, half),  # 10×10, rf 10
            block(half, half, 0.1),  # 8×8, rf 14
            block(half, half, 0.1),  # 6×6, rf 18
            block(half, n_channels, 0.1),  # 4×4, rf 22
            nn.AvgPool2d(4),  # 1×1
        )
        self.fc = nn.Linear(n_channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(self.layers(x).flatten(1))
        return F.log_softmax(x, dim=1)


class Ref004(Classifier):
    """Reproduction of ``004_a84e6332818a40b7.txt``, Model3, from its receptive-field table: 6,040 parameters.

    **Target:** 004 adds ReduceLROnPlateau to the BN + dropout + GAP model (published: 5,920
    parameters, 99.27% at epoch 12).

    The table gives the convolutions: 3×3 1→8, 8→12, 1×1 12→8, max-pool, four 3×3 12→12 (the first
    8→12), GAP on 4×4×12; receptive field 3, 5, 5, 6, 10, 14, 18, 22. Inferred:

    - no bias: the seven convolutions have 5,784 weights, exactly 004's Model2 count (no BN yet);
    - BatchNorm after the six 3×3 convolutions, not after the 1×1 squeeze: 5,784 + 136 = 5,920, the
      published Model3 count (Model2 + BN on all seven gives 004's 5,936; Model3 has 16 fewer);
    - the 10 classes: the table ends with 12 channels and the published count has no room for a
      classifier, so a 1×1 convolution 12→10 after GAP is added (``GAPHead``, +120): 6,040 in all;
    - Conv → ReLU → BN → Dropout, dropout 0.1 (004: "Model3 … Dropout (0.1)") in every 3×3 block.
    """

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()

        def block(in_ch: int, out_ch: int) -> ConvBlock:
            return ConvBlock(in_ch, out_ch, dropout=dropout, order="conv-relu-bn")

        self.layers = nn.Sequential(
            block(1, 8),  # 26×26, rf 3
            block(8, 12),  # 24×24, rf 5
            TransitionBlock(12, 8, pool_first=False),  # 12×12, rf 6
            block(8, 12),  # 10×10, rf 10
            block(12, 12),  # 8×8, rf 14
            block(12, 12),  # 6×6, rf 18
            block(12, 12),  # 4×4, rf 22
            GAPHead(12),
        )


# --- registry --------------------------------------------------------------------------------------

MODELS: dict[str, Callable[[], nn.Module]] = {
    "baseline": Baseline,
    "skeleton": Skeleton,
    "batchnorm": WithBatchNorm,
    "dropout": WithDropout,
    "gap": WithGAP,
    "final": Final,
    "ref001": Ref001,
    "ref002": Ref002,
    "ref003": Ref003,
    "ref004": Ref004,
}


def model_names() -> list[str]:
    """The registry's names, in course order."""
    return list(MODELS)


def get_model(name: str) -> nn.Module:
    """A new, untrained model; :class:`UnknownModelError` for a name that is not in the registry."""
    try:
        factory = MODELS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None
    return factory()
