"""Robustness transforms applied to the image before every step (jitter, random scale, random rotation),
as one random affine warp per image, so the output keeps the model's input size."""

from __future__ import annotations

import math

from ..backends.torch_import import import_torch


def random_affine(images, engine, jitter: int = 0, scale: tuple[float, float] = (1.0, 1.0),
                  rotate: float = 0.0):
    """Each image shifted by up to `jitter` pixels, scaled by a factor in `scale`, rotated by up to `rotate`
    degrees (border pixels repeat). Identity when all are off."""
    if not jitter and scale == (1.0, 1.0) and not rotate:
        return images
    torch = import_torch()
    b, _, h, w = images.shape
    u = engine.random(b, 4)
    angle = (u[:, 0] * 2 - 1) * math.radians(rotate)
    factor = scale[0] + u[:, 1] * (scale[1] - scale[0])
    shift_x = (u[:, 2] * 2 - 1) * jitter * 2 / w
    shift_y = (u[:, 3] * 2 - 1) * jitter * 2 / h
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, padding_mode="border", align_corners=False)
