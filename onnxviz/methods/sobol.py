"""Sobol attribution: total-order Sobol indices of a grid of continuous masks over the image, from a quasi-Monte
Carlo design (Saltelli's A, B and A_B^i matrices) and Jansen's estimator: how much of the score's variance each cell
explains, alone and with the others.

Fel et al. 2021, https://arxiv.org/abs/2111.04138
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..baselines import check_baseline, make_baseline
from ..method import Method
from ..options import option

BLOCK = 64


@dataclass(frozen=True)
class SobolOptions:
    grid: int = option(8, "the masks are grid x grid cells of values in [0, 1], upsampled (nearest) to the image")
    n_design: int = option(32, "quasi-Monte Carlo design size N (a power of 2): N (grid^2 + 2) passes per image")
    baselines: float | str | np.ndarray = option(
        0.0, "what a masked cell fades to: a value in the model's input space, mean, blur, an image path, an array")
    blur_sigma: float = option(10.0, "Gaussian sigma in pixels for baselines=blur")

    def __post_init__(self):
        if not 1 <= self.grid <= 64:
            raise ValueError("grid must be between 1 and 64")
        if self.n_design < 2 or self.n_design & (self.n_design - 1):
            raise ValueError("n_design must be a power of 2 (a balanced Sobol sequence), at least 2")
        check_baseline(self.baselines)


def design(rng: np.random.Generator, cells: int, n: int) -> np.ndarray:
    """Saltelli's design, (N (cells + 2), cells): A, B, then A with column i from B, for each cell i."""
    from scipy.stats import qmc  # scipy.stats costs 0.3 s to import: only when sampling

    points = qmc.Sobol(2 * cells, scramble=True, seed=rng).random(n)
    a, b = points[:, :cells], points[:, cells:]
    mixed = np.repeat(a[None], cells, axis=0)
    mixed[np.arange(cells), :, np.arange(cells)] = b.T
    return np.concatenate([a, b, mixed.reshape(-1, cells)])


def jansen(values: np.ndarray, n: int, cells: int) -> np.ndarray:
    """Total-order indices: mean((f(A) - f(A_B^i))^2) / 2 over the variance of f(A) and f(B) together."""
    a, b, mixed = values[:n], values[n : 2 * n], values[2 * n :].reshape(cells, n)
    variance = np.var(np.concatenate([a, b]))
    return ((a[None] - mixed) ** 2).mean(axis=1) / 2 / max(variance, 1e-30)


class Sobol(Method):
    """Total-order Sobol indices of mask cells over a quasi-Monte Carlo design (onnxruntime only)."""

    name = "sobol"
    family = "perturbation"
    needs_image = True
    requires = "forward"
    output = "map"
    unsigned_display = True
    paper = "https://arxiv.org/abs/2111.04138"
    Options = SobolOptions

    def explain(self, ctx, x: np.ndarray, opts: SobolOptions) -> np.ndarray:
        height, width = ctx.input_size(x)
        cells = opts.grid**2
        fill = make_baseline(opts.baselines, x, ctx.layout, ctx.sample_rng, opts.blur_sigma, ctx.image)
        maps = np.zeros((len(x), opts.grid, opts.grid), np.float32)
        passes = opts.n_design * (cells + 2)
        with ctx.progress(len(x) * passes, self.name) as bar:
            for i in range(len(x)):
                masks = design(ctx.sample_rng(x[i]), cells, opts.n_design)
                values = np.empty(passes)
                for start in range(0, passes, BLOCK):
                    block = masks[start : start + BLOCK].reshape(-1, opts.grid, opts.grid).astype(np.float32)
                    up = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST) for m in block])
                    keep = ctx.over_channels(up)
                    batch = (x[i] * keep + fill[i] * (1 - keep)).astype(x.dtype)
                    values[start : start + len(block)] = ctx.for_samples([i] * len(block)).score(
                        batch, on_chunk=bar.update)
                maps[i] = jansen(values, opts.n_design, cells).reshape(opts.grid, opts.grid)
        return maps
