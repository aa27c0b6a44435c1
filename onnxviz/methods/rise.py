"""RISE: the score of the input under many random smooth masks, averaged with the masks as weights.

Petsiuk, Das & Saenko 2018, https://arxiv.org/abs/1806.07421
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..method import Method
from ..options import option

BLOCK = 256  # masks drawn at once (the draws, and so the masks, do not depend on --batch-size)


@dataclass(frozen=True)
class RiseOptions:
    n_masks: int = option(2000, "number of random masks")
    grid: int = option(7, "masks are a grid x grid binary pattern, upsampled bilinearly with a random shift")
    p: float = option(0.5, "probability that a grid cell keeps the image")

    def __post_init__(self):
        if self.n_masks < 1 or self.grid < 1 or not 0 < self.p <= 1:
            raise ValueError("n_masks and grid must be positive, p in (0, 1]")
        if self.n_masks > 1_000_000 or self.grid > 1024:
            raise ValueError(f"n_masks must be at most 1,000,000 and grid at most 1024, not {self.n_masks:,} / "
                             f"{self.grid:,}")


def rise_draws(n: int, grid: int, p: float, height: int, width: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The random part of n masks: (n, grid, grid) kept cells and (n, 2) shifts (paper, section 3.2)."""
    cell_h, cell_w = math.ceil(height / grid), math.ceil(width / grid)
    cells = (rng.random((n, grid, grid)) < p).astype(np.float32)
    return cells, rng.integers(0, [cell_h, cell_w], size=(n, 2))


def render_masks(cells: np.ndarray, shifts: np.ndarray, height: int, width: int) -> np.ndarray:
    """(n, height, width) float32 masks in [0, 1]: the cells upsampled bilinearly, then shifted."""
    grid = cells.shape[1]
    cell_h, cell_w = math.ceil(height / grid), math.ceil(width / grid)
    masks = np.empty((len(cells), height, width), np.float32)
    for k in range(len(cells)):
        up = cv2.resize(cells[k], ((grid + 1) * cell_w, (grid + 1) * cell_h), interpolation=cv2.INTER_LINEAR)
        dy, dx = shifts[k]
        masks[k] = up[dy : dy + height, dx : dx + width]
    return masks


def rise_masks(n: int, grid: int, p: float, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(n, height, width) float32 masks in [0, 1]: smooth random occlusion patterns."""
    return render_masks(*rise_draws(n, grid, p, height, width, rng), height, width)


class Rise(Method):
    """Randomized input sampling: sum of score x mask over random masks, divided by n_masks x p."""

    name = "rise"
    family = "perturbation"
    needs_image = True
    requires = "forward"
    output = "map"
    unsigned_display = True  # the maps carry the mean score as an offset: only their ordering is meaningful
    paper = "https://arxiv.org/abs/1806.07421"
    Options = RiseOptions

    def explain(self, ctx, x: np.ndarray, opts: RiseOptions) -> np.ndarray:
        height, width = ctx.input_size(x)
        rng = np.random.default_rng([ctx.seed, 0x52495345])  # one mask set per seed, shared by all images
        saliency = np.zeros((len(x), height, width), np.float64)
        with ctx.progress(len(x) * opts.n_masks, self.name) as bar:
            for start in range(0, opts.n_masks, BLOCK):
                cells, shifts = rise_draws(min(BLOCK, opts.n_masks - start), opts.grid, opts.p, height, width, rng)
                for part in range(0, len(cells), ctx.batch_size):  # memory follows --batch-size, not n_masks
                    masks = render_masks(cells[part : part + ctx.batch_size], shifts[part : part + ctx.batch_size],
                                         height, width)
                    for i in range(len(x)):
                        masked = (x[i] * ctx.over_channels(masks)).astype(x.dtype)
                        scores = self.scores(ctx.for_samples([i] * len(masks)), masked, bar.update)
                        saliency[i] += np.tensordot(scores, masks, axes=1)
        return (saliency / (opts.n_masks * opts.p)).astype(np.float32)

    def scores(self, ctx, masked: np.ndarray, on_chunk) -> np.ndarray:
        """What each masked copy weighs its mask by: the target's score."""
        return ctx.score(masked, on_chunk=on_chunk)
