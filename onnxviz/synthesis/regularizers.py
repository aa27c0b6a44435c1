"""Image priors on (B, C, H, W) [0, 1] images, one value per image (torch or numpy arrays alike):
  l1 = mean |x|                     (the "no ink" prior: every bright pixel costs)
  l2 = mean x^2
  tv = mean |x[h+1] - x[h]| + mean |x[w+1] - x[w]|     (anisotropic total variation)
"""

from __future__ import annotations


def _mean(a):
    return a.reshape(a.shape[0], -1).mean(1) if hasattr(a, "dim") else a.reshape(a.shape[0], -1).mean(axis=1)


def l1(x):
    return _mean(abs(x))


def l2(x):
    return _mean(x * x)


def tv(x):
    return _mean(abs(x[:, :, 1:, :] - x[:, :, :-1, :])) + _mean(abs(x[:, :, :, 1:] - x[:, :, :, :-1]))


def penalty(x, l1_weight: float = 0.0, l2_weight: float = 0.0, tv_weight: float = 0.0):
    """The weighted sum of the priors (per image)."""
    total = 0.0
    for weight, term in ((l1_weight, l1), (l2_weight, l2), (tv_weight, tv)):
        if weight:
            total = total + weight * term(x)
    return total
