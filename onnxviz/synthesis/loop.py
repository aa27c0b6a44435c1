"""The optimization loop shared by activation maximization and feature inversion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..backends.torch_import import import_torch
from .param import FourierImage, PixelImage
from .regularizers import penalty
from .transforms import random_affine


@dataclass(frozen=True)
class Schedule:
    steps: int
    lr: float
    param: str  # "pixel" or "fourier"
    l1: float = 0.0
    l2: float = 0.0
    tv: float = 0.0
    jitter: int = 0
    scale: tuple[float, float] = (1.0, 1.0)
    rotate: float = 0.0
    blur_every: int = 0
    blur_sigma: float = 0.5
    frames: int = 0  # snapshots kept for a GIF


def to_numpy(images) -> np.ndarray:
    """(B, C, H, W) tensor -> (B, H, W, C) float32 array."""
    return images.detach().cpu().permute(0, 2, 3, 1).numpy().astype(np.float32)


def ascend(engine, batch: int, objective: Callable, schedule: Schedule, desc: str, init=None):
    """Maximize objective(transformed image) - priors(image) per image; returns (images, history, frames)."""
    torch = import_torch()
    image = (FourierImage(engine, batch) if schedule.param == "fourier" and init is None
             else PixelImage(engine, batch, init))
    optimizer = torch.optim.Adam(image.parameters(), lr=schedule.lr)
    history = np.zeros((batch, schedule.steps), np.float32)
    every = max(1, schedule.steps // schedule.frames) if schedule.frames else 0
    frames = []
    with torch.enable_grad(), engine.progress(schedule.steps, desc) as bar:
        for step in range(schedule.steps):
            optimizer.zero_grad()
            current = image()
            seen = random_affine(current, engine, schedule.jitter, schedule.scale, schedule.rotate)
            value = objective(seen)
            loss = (penalty(current, schedule.l1, schedule.l2, schedule.tv) - value).sum()
            loss.backward()
            optimizer.step()
            history[:, step] = value.detach().cpu().numpy()
            if schedule.blur_every and isinstance(image, PixelImage) and (step + 1) % schedule.blur_every == 0:
                image.blur(schedule.blur_sigma)
            if every and step % every == 0:
                frames.append(to_numpy(current))
            bar.set_postfix(objective=f"{float(history[:, step].mean()):.4g}", refresh=False)
            bar.update()
    with torch.no_grad():
        final = to_numpy(image())
    return final, history, (np.stack([*frames, final]) if frames else None)
