"""How concentrated a map is: sparseness as the Gini index of |map| (Chalasani et al. 2020,
https://arxiv.org/abs/1810.06583) and complexity as the entropy of each pixel's share of |map| (Bhatt et al. 2020,
https://arxiv.org/abs/2005.00631), per image, as Quantus computes them."""

from __future__ import annotations

import numpy as np


def sparseness(maps: np.ndarray) -> np.ndarray:
    """Gini index of each |map| (plus 1e-7, as Quantus): 0 when every pixel counts the same, near 1 for one pixel."""
    flat = np.sort(np.abs(maps.reshape(len(maps), -1).astype(np.float64)) + 1e-7, axis=1)
    n = flat.shape[1]
    ranks = 2 * np.arange(1, n + 1) - n - 1
    return (flat * ranks).sum(axis=1) / (n * flat.sum(axis=1))


def complexity(maps: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each pixel's share of |map|: log(pixels) when uniform, 0 for one pixel."""
    flat = np.abs(maps.reshape(len(maps), -1).astype(np.float64))
    total = flat.sum(axis=1, keepdims=True)
    share = np.divide(flat, total, out=np.full_like(flat, 1.0 / flat.shape[1]), where=total > 0)
    logs = np.log(share, out=np.zeros_like(share), where=share > 0)
    return -(share * logs).sum(axis=1)
