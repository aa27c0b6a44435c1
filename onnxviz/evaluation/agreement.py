"""How alike two attribution maps are: Spearman rank correlation, top-k% pixel IoU, and SSIM of the heatmaps
(Wang et al. 2004, https://doi.org/10.1109/TIP.2003.819861: 7x7 uniform window, the usual constants)."""

from __future__ import annotations

import cv2
import numpy as np

from ..io import resize


def same_size(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two (H, W) maps at the first one's size (b untouched when it already has it: no float32 round trip)."""
    if b.shape != a.shape:
        b = resize(b.astype(np.float32), *a.shape)
    return a.astype(np.float64), b.astype(np.float64)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of the pixel values (1 when both are constant and equal, 0 when one is constant)."""
    from scipy.stats import spearmanr  # scipy.stats is slow to import: only when needed

    a, b = same_size(a, b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


def top_iou(a: np.ndarray, b: np.ndarray, percent: float = 10.0) -> float:
    """IoU of the `percent`% highest pixels of each map (ties broken by position)."""
    a, b = same_size(a, b)
    k = max(1, round(a.size * percent / 100))
    top_a = set(np.argsort(-a.ravel(), kind="stable")[:k].tolist())
    top_b = set(np.argsort(-b.ravel(), kind="stable")[:k].tolist())
    return len(top_a & top_b) / len(top_a | top_b)


def unit(m: np.ndarray) -> np.ndarray:
    """Min..max to [0, 1] (a constant map becomes 0)."""
    span = np.ptp(m)
    return (m - m.min()) / span if span > 0 else np.zeros_like(m)


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> float:
    """Mean SSIM of the two maps scaled to [0, 1] each (data range 1)."""
    a, b = same_size(a, b)
    x, y = unit(a), unit(b)
    c1, c2 = 0.01**2, 0.03**2

    def mean(z):
        return cv2.blur(z, (window, window), borderType=cv2.BORDER_REFLECT)

    n = window * window
    mx, my = mean(x), mean(y)
    vx = (mean(x * x) - mx * mx) * n / (n - 1)  # sample (co)variances, as the reference implementation
    vy = (mean(y * y) - my * my) * n / (n - 1)
    cxy = (mean(x * y) - mx * my) * n / (n - 1)
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    pad = window // 2  # the border, where the window leaves the map, is left out
    return float(s[pad:-pad, pad:-pad].mean()) if min(s.shape) > 2 * pad else float(s.mean())
