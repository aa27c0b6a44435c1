"""Perturbation budgets in image space: projection onto the eps-ball of a norm, and the norms themselves."""

from __future__ import annotations

from typing import Literal

import numpy as np

Norm = Literal["linf", "l2"]


def norms(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L-inf, L2) of each perturbation in a batch."""
    flat = delta.reshape(len(delta), -1).astype(np.float64)
    return np.abs(flat).max(axis=1, initial=0.0), np.sqrt((flat**2).sum(axis=1))


def project(images: np.ndarray, adv: np.ndarray, eps: float | None, norm: Norm) -> np.ndarray:
    """`adv` moved into the eps-ball around `images` and into the pixel range [0, 1] (clipping the pixel
    range after the ball keeps both: the ball is convex and contains `images`)."""
    delta = adv.astype(np.float32) - images
    if eps is not None:
        if norm == "linf":
            delta = np.clip(delta, -eps, eps)
        else:
            length = np.sqrt((delta.reshape(len(delta), -1).astype(np.float64) ** 2).sum(axis=1))
            scale = np.minimum(1.0, eps / np.maximum(length, 1e-12)).astype(np.float32)
            delta = delta * scale.reshape(-1, *[1] * (delta.ndim - 1))
    return np.clip(images + delta, 0.0, 1.0).astype(np.float32)
