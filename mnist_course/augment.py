"""Batched augmentation on the device: each image gets its own random rotation, shift, zoom and
brightness/contrast, in one ``grid_sample`` over the whole batch (no per-image Python)."""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Random rotation in ±``degrees``, translation up to ``translate`` × image size on each axis, zoom by a
    factor in 1 ± ``scale``, and brightness and contrast each by a factor in 1 ± ``jitter``."""

    degrees: float = 7.0
    translate: float = 0.0
    scale: float = 0.0
    jitter: float = 0.0


def random_affine(x: torch.Tensor, augment: Augment,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate, shift, zoom and jitter each image of ``x`` (N, C, H, W), values in [0, 1], at random.
    Pixels coming in from outside the image are 0 (black), as with torchvision's ``RandomAffine``."""
    n, _, h, w = x.shape
    rand = torch.rand(n, 3, device=x.device, generator=generator, dtype=x.dtype) * 2 - 1  # in [-1, 1)
    # grid_sample works in [-1, 1] coordinates, so a shift of t image widths is 2t there.
    angle, shift = rand[:, 0] * math.radians(augment.degrees), rand[:, 1:] * 2 * augment.translate
    grid = rotation_grid(angle, shift, h, w)
    if augment.scale or augment.jitter:  # drawn only when asked for: rotation and shift alone draw as before
        more = torch.rand(n, 3, device=x.device, generator=generator, dtype=x.dtype) * 2 - 1
        grid = grid / (1 + more[:, 0] * augment.scale)[:, None, None, None]  # > 1 enlarges: samples closer in
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if not augment.jitter:
        return x
    brightness, contrast = (1 + more[:, 1:] * augment.jitter).unbind(1)
    x = x * brightness[:, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast[:, None, None, None] + mean).clamp(0, 1)


def rotation_grid(angle: torch.Tensor, shift: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid`` (align_corners=False) for a rotation by ``angle`` (N,) and a ``shift`` (N, 2),
    written out because on a CPU ``affine_grid`` was most of the cost of augmenting. Returns (N, H, W, 2)."""
    xs = (torch.arange(w, device=angle.device, dtype=angle.dtype) * 2 + 1) / w - 1  # pixel centres in [-1, 1]
    ys = ((torch.arange(h, device=angle.device, dtype=angle.dtype) * 2 + 1) / h - 1)[:, None]
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    grid_x = cos * xs - sin * ys + shift[:, 0, None, None]
    grid_y = sin * xs + cos * ys + shift[:, 1, None, None]
    return torch.stack([grid_x, grid_y], dim=-1)
