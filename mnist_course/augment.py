"""Batched augmentation on the device: one random rotation + translation per image, one call per batch.

Each image gets its own angle and shift, but the warp is a single ``affine_grid`` + ``grid_sample``
over the whole batch, so there is no per-image Python. Pixels that come in from outside the image are
0 (black), as with torchvision's ``RandomAffine``.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Random rotation in ±``degrees`` and translation up to ``translate`` × image size on each axis."""

    degrees: float = 7.0
    translate: float = 0.0


def random_affine(x: torch.Tensor, augment: Augment, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate and shift each image of a batch ``x`` (N, C, H, W), values in [0, 1], at random."""
    n = x.shape[0]
    rand = torch.rand(n, 3, device=x.device, generator=generator, dtype=x.dtype) * 2 - 1  # in [-1, 1)
    angle = rand[:, 0] * math.radians(augment.degrees)
    # affine_grid works in [-1, 1] coordinates, so a shift of t image widths is 2t there.
    shift = rand[:, 1:] * 2 * augment.translate
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
