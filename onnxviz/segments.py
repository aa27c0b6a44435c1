"""Superpixels: a small SLIC (k-means over colour and position), enough to group pixels for perturbations.

Achanta et al. 2012, https://infoscience.epfl.ch/record/177415
"""

from __future__ import annotations

import numpy as np


def superpixels(image: np.ndarray, n_segments: int, compactness: float = 10.0, iterations: int = 6) -> np.ndarray:
    """(H, W) int labels 0..K-1 for an HWC float image; about `n_segments` regions on a regular grid start."""
    h, w = image.shape[:2]
    step = max(1.0, np.sqrt(h * w / max(1, n_segments)))
    ys, xs = np.mgrid[step / 2 : h : step, step / 2 : w : step]
    centers_yx = np.column_stack([ys.ravel(), xs.ravel()])
    pixels_yx = np.stack(list(np.mgrid[:h, :w]), axis=-1).reshape(-1, 2).astype(np.float64)
    colors = image.reshape(-1, image.shape[-1]).astype(np.float64)
    scale = colors.std() or 1.0
    centers_c = colors[(centers_yx[:, 0].astype(int) * w + centers_yx[:, 1].astype(int))]
    for _ in range(iterations):
        color_d = ((colors[:, None] - centers_c[None]) ** 2).sum(-1) / scale**2
        space_d = ((pixels_yx[:, None] - centers_yx[None]) ** 2).sum(-1) / step**2
        labels = np.argmin(color_d + (compactness / 10.0) ** 2 * space_d, axis=1)
        for k in range(len(centers_yx)):
            members = labels == k
            if members.any():
                centers_yx[k], centers_c[k] = pixels_yx[members].mean(0), colors[members].mean(0)
    _, labels = np.unique(labels, return_inverse=True)  # drop empty clusters: labels are 0..K-1
    return labels.reshape(h, w)
