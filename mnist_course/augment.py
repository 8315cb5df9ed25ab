"""Batched augmentation on the device: one random rotation + translation per image, one call for many images.

Each image gets its own angle and shift, but the warp is a single sampling grid + ``grid_sample``
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
    n, _, h, w = x.shape
    rand = torch.rand(n, 3, device=x.device, generator=generator, dtype=x.dtype) * 2 - 1  # in [-1, 1)
    angle = rand[:, 0] * math.radians(augment.degrees)
    # grid_sample works in [-1, 1] coordinates, so a shift of t image widths is 2t there.
    shift = rand[:, 1:] * 2 * augment.translate
    return F.grid_sample(x, rotation_grid(angle, shift, h, w), mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def rotation_grid(angle: torch.Tensor, shift: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Where each output pixel samples the input: ``F.affine_grid`` for a rotation by ``angle`` (N,) and a
    shift (N, 2), written out for this one case (on a CPU, ``F.affine_grid`` was most of the cost of
    augmenting an epoch).

    For pixel centres (x, y) in [-1, 1] (``align_corners=False``) it is
    (cos·x − sin·y + shift_x, sin·x + cos·y + shift_y). Returns (N, H, W, 2).
    """
    xs = (torch.arange(w, device=angle.device, dtype=angle.dtype) * 2 + 1) / w - 1
    ys = ((torch.arange(h, device=angle.device, dtype=angle.dtype) * 2 + 1) / h - 1)[:, None]
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    grid_x = cos * xs - sin * ys + shift[:, 0, None, None]
    grid_y = sin * xs + cos * ys + shift[:, 1, None, None]
    return torch.stack([grid_x, grid_y], dim=-1)
