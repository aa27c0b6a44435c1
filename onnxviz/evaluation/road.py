"""ROAD, remove and debias (Rong et al. 2022, https://arxiv.org/abs/2202.00449): the most (MoRF) or least (LeRF)
relevant pixels are replaced by noisy linear imputation from their neighbours (each missing pixel the weighted
mean of its 8 neighbours: 1/6 for the 4 direct ones, 1/12 for the diagonals, solved together as one sparse linear
system), which leaks no shape of the removed region; the target's score change is averaged over percentiles.
As pytorch-grad-cam's ROAD metrics compute it: MoRF at percentile p keeps the pixels below the map's p-th
percentile; LeRF does the same on 1 - map."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve

from ..runner import sample_rng

PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
NEIGHBOURS = (((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12), ((0, -1), 1 / 6),
              ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6))


def impute(image: np.ndarray, keep: np.ndarray, noise: float = 0.01,
           rng: np.random.Generator | None = None) -> np.ndarray:
    """(C, H, W) `image` with the pixels where `keep` is False filled by linear imputation, plus Gaussian noise of
    std `noise` on them."""
    height, width = keep.shape
    missing = np.flatnonzero(~keep.ravel())
    if missing.size == 0:
        return image.copy()
    unknown = np.full(height * width, -1)
    unknown[missing] = np.arange(missing.size)
    rows, cols = np.divmod(missing, width)
    flat = image.reshape(image.shape[0], -1)
    diagonal = np.zeros(missing.size)
    rhs = np.zeros((missing.size, image.shape[0]))
    a_rows, a_cols, a_vals = [], [], []
    for (dy, dx), weight in NEIGHBOURS:
        y, x = rows + dy, cols + dx
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        diagonal[inside] += weight
        neighbour = y[inside] * width + x[inside]
        which = np.flatnonzero(inside)
        free = unknown[neighbour] >= 0
        a_rows.append(which[free])
        a_cols.append(unknown[neighbour[free]])
        a_vals.append(np.full(free.sum(), weight))
        np.subtract.at(rhs, which[~free], weight * flat[:, neighbour[~free]].T)
    a_rows.append(np.arange(missing.size))
    a_cols.append(np.arange(missing.size))
    a_vals.append(-diagonal)
    system = coo_matrix((np.concatenate(a_vals), (np.concatenate(a_rows), np.concatenate(a_cols))),
                        shape=(missing.size, missing.size)).tocsc()
    solved = np.asarray(spsolve(system, rhs)).reshape(missing.size, -1)
    if noise > 0:
        solved = solved + noise * (rng or np.random.default_rng(0)).standard_normal(solved.shape)
    out = flat.astype(np.float64).copy()
    out[:, missing] = solved.T
    return out.reshape(image.shape).astype(image.dtype)


def kept(scaled_map: np.ndarray, percentile: float, most_relevant_first: bool) -> np.ndarray:
    """The pixels a ROAD step keeps: below the p-th percentile of the map (MoRF) or of 1 - map (LeRF)."""
    m = scaled_map if most_relevant_first else 1.0 - scaled_map
    return m < np.percentile(m, percentile)


@dataclass(frozen=True)
class Road:
    morf: np.ndarray  # (N,) mean score change removing the most relevant first: more negative is better
    lerf: np.ndarray  # (N,) removing the least relevant first: near 0 is better
    combined: np.ndarray  # (lerf - morf) / 2: higher is better


def road(images_chw: np.ndarray, maps: np.ndarray, score: Callable[[np.ndarray, int], np.ndarray],
         to_model: Callable[[np.ndarray], np.ndarray], percentiles: Sequence[float] = PERCENTILES,
         noise: float = 0.01, seed: int = 0) -> Road:
    """ROAD of (N, H, W) maps (scaled to [0, 1] here) for (N, C, H, W) inputs; `to_model` lays a channels-first
    batch out as the model takes it, `score(batch, i)` scores copies of image i."""
    changes = {first: np.zeros(len(maps)) for first in (True, False)}
    for i, (image, m) in enumerate(zip(images_chw, maps, strict=True)):
        span = np.ptp(m)
        scaled = (m - m.min()) / span if span > 0 else np.zeros_like(m)
        before = score(to_model(image[None]), i)[0]  # once per image, for both orders
        for first in (True, False):
            rng = sample_rng(image, seed, int(first))
            batch = np.stack([impute(image, kept(scaled, p, first), noise, rng) for p in percentiles])
            changes[first][i] = np.mean(score(to_model(batch), i) - before)
    return Road(changes[True], changes[False], (changes[False] - changes[True]) / 2)
