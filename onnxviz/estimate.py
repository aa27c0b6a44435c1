"""Black-box gradient estimates through onnxruntime, for graphs torch cannot run (or when asked).

NES: Wierstra et al. 2014 / Ilyas et al. 2018, https://arxiv.org/abs/1804.08598 (antithetic Gaussian
directions). SPSA: Spall 1992, https://www.jhuapl.edu/SPSA/ (antithetic Rademacher directions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import OptionError

BLOCK = 64  # directions evaluated at once (2 x BLOCK inputs)


GOOD = 0.5  # an expected cosine below this is more noise than gradient: the estimate is flagged


@dataclass(frozen=True)
class Estimator:
    """`queries` forward passes per input and gradient (an even number: +/- pairs), step `sigma`; `cells`: the side in
    pixels of the square cells the directions are drawn on (1: every value; "auto": the smallest cell for which the
    expected cosine with the gradient reaches 0.5 at this budget). With cells, the estimate is the gradient averaged
    over each cell (a lower-resolution gradient, drawn at every pixel)."""

    kind: Literal["nes", "spsa"] = "nes"
    queries: int = 200
    sigma: float = 1e-2
    cells: int | str = "auto"

    def __post_init__(self):
        if self.kind not in ("nes", "spsa"):
            raise OptionError(f"gradient estimator must be nes or spsa, not {self.kind!r}")
        if self.queries < 2 or self.queries % 2:
            raise OptionError(f"queries must be an even number >= 2 (pairs of +/- probes), not {self.queries}")
        if self.sigma <= 0:
            raise OptionError("sigma must be positive")
        if self.cells != "auto" and (isinstance(self.cells, bool) or not isinstance(self.cells, int) or self.cells < 1):
            raise OptionError(f"cells must be a whole number of pixels >= 1, or auto, not {self.cells!r}")

    def cell(self, shape: tuple[int, ...], spatial: tuple[int, int] | None) -> int:
        """The cell side for a sample of `shape` whose (H, W) axes are `spatial` (None: not an image, every value)."""
        if spatial is None:
            return 1
        if self.cells != "auto":
            return int(self.cells)
        side = 1
        while expected_cosine(self, shape, spatial, side) < GOOD and side < max(shape[a] for a in spatial):
            side += 1
        return side

    def describe(self, shape: tuple[int, ...] | None = None, spatial: tuple[int, int] | None = None) -> str:
        text = f"estimated gradient ({self.kind.upper()}, {self.queries} queries per input, sigma {self.sigma:g}"
        if shape is None:
            return text + ")"
        side = self.cell(shape, spatial)
        where = f"{side} x {side} px cells, " if side > 1 else ""
        cosine = expected_cosine(self, shape, spatial, side)
        flag = "; LOW: more noise than gradient, raise --queries or the cell size" if cosine < GOOD else ""
        what = "cell-averaged gradient" if side > 1 else "gradient"
        return f"{text}, {where}expected cosine {cosine:.2f} with the {what}{flag})"


def _low(shape: tuple[int, ...], spatial: tuple[int, int] | None, side: int) -> tuple[int, ...]:
    if spatial is None or side <= 1:
        return tuple(shape)
    low = list(shape)
    for axis in spatial:
        low[axis] = -(-shape[axis] // side)
    return tuple(low)


def expected_cosine(estimator: Estimator, shape: tuple[int, ...], spatial: tuple[int, int] | None,
                    side: int = 1) -> float:
    """What the estimate's cosine with the (cell-averaged) gradient is, on average, for a smooth score: sqrt(m /
    (m + d + 1)) for NES and sqrt(m / (m + d - 1)) for SPSA, m probe pairs in d directions (the relative error of the
    mean of m rank-one projections)."""
    d = int(np.prod(_low(shape, spatial, side)))
    m = estimator.queries // 2
    return float(np.sqrt(m / max(m + d + (1 if estimator.kind == "nes" else -1), 1)))


def _directions(n: int, shape: tuple[int, ...], spatial: tuple[int, int] | None, side: int, kind: str,
                rng: np.random.Generator) -> np.ndarray:
    """(n, size) directions, constant over each cell of `side` pixels."""
    low = _low(shape, spatial, side)
    u = rng.standard_normal((n, *low)) if kind == "nes" else rng.choice([-1.0, 1.0], size=(n, *low))
    if low != tuple(shape) and spatial is not None:
        for axis in spatial:
            u = np.repeat(u, side, axis=axis + 1).take(np.arange(shape[axis]), axis=axis + 1)
    return u.reshape(n, -1)


def _cell_sizes(shape: tuple[int, ...], spatial: tuple[int, int], side: int) -> np.ndarray:
    """The number of pixels in the cell each value belongs to (edge cells are smaller)."""
    counts = np.ones(1)
    for axis in spatial:
        n = shape[axis]
        per = np.minimum(side, n - (np.arange(n) // side) * side)
        counts = np.multiply.outer(counts, per) if counts.ndim else per
    sizes = counts.reshape(shape[spatial[0]], shape[spatial[1]])
    view = [1] * len(shape)
    view[spatial[0]], view[spatial[1]] = shape[spatial[0]], shape[spatial[1]]
    return np.broadcast_to(sizes.reshape(view), shape)


def estimate_gradient(sample: np.ndarray, score: Callable[[np.ndarray], np.ndarray], estimator: Estimator,
                      rng: np.random.Generator, spatial: tuple[int, int] | None = None) -> np.ndarray:
    """Gradient of `score` (a batch -> one value per row) at `sample`, from estimator.queries evaluations; with
    cells (an image whose (H, W) axes are `spatial`), the gradient averaged over each cell."""
    pairs = estimator.queries // 2
    side = estimator.cell(sample.shape, spatial)
    total = np.zeros(sample.size, np.float64)
    base = sample.reshape(1, -1).astype(np.float64)
    for start in range(0, pairs, BLOCK):
        n = min(BLOCK, pairs - start)
        u = _directions(n, sample.shape, spatial, side, estimator.kind, rng)
        probes = np.concatenate([base + estimator.sigma * u, base - estimator.sigma * u])
        values = score(probes.reshape(-1, *sample.shape).astype(sample.dtype)).astype(np.float64)
        total += ((values[:n] - values[n:]) / (2 * estimator.sigma)) @ u
    grad = (total / pairs).reshape(sample.shape)
    if side > 1 and spatial is not None:  # the sum over a cell's pixels -> their mean
        grad = grad / _cell_sizes(sample.shape, spatial, side)
    return grad.astype(np.float32)
