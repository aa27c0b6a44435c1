"""One-pixel (few-pixel) attack: differential evolution over the position and colour of k pixels.

Su, Vargas & Sakurai 2019, https://arxiv.org/abs/1710.08864 (search by scipy.optimize.differential_evolution)
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np

from ..options import option
from .base import Attack
from .losses import Loss


@dataclass(frozen=True)
class OnePixelOptions:
    pixels: int = option(1, "pixels that may change (the L0 budget)")
    max_queries: int = option(10000, "forward passes per image")
    population: int = option(400, "candidate solutions per generation (the paper's 400)")
    loss: Loss = option("ce", "objective: ce (the class probability, as in the paper), logit or margin")

    def __post_init__(self):
        if self.pixels < 1 or self.max_queries < 1 or self.population < 1:
            raise ValueError("pixels, max_queries and population must be >= 1")


class _Stop(Exception):
    """Ends the search early: an adversarial was found, or the query budget is spent."""


def _seed_keyword(search) -> str:
    return "rng" if "rng" in inspect.signature(search).parameters else "seed"


class OnePixel(Attack):
    """Each candidate is k x (row, column, colour); the population evolves towards a higher loss."""

    name = "one_pixel"
    requires = "forward"
    paper = "https://arxiv.org/abs/1710.08864"
    Options = OnePixelOptions

    def attack(self, oracle, opts: OnePixelOptions) -> np.ndarray:
        done = oracle.is_adversarial(oracle.clean_logits, np.arange(len(oracle.images)))
        out = oracle.images.copy()
        with oracle.progress(len(out) * opts.max_queries, "one_pixel", unit="query") as bar:
            for row in np.flatnonzero(~done):
                out[row] = self._search(oracle, int(row), opts, bar)
        return out

    @staticmethod
    def _apply(image: np.ndarray, genes: np.ndarray) -> np.ndarray:
        """Images (S, H, W, C) with the pixels that `genes` (dims, S) place and colour."""
        h, w, c = image.shape
        out = np.repeat(image[None], genes.shape[1], axis=0)
        per = genes.T.reshape(genes.shape[1], -1, 2 + c)
        ys = np.clip(per[..., 0].astype(np.int64), 0, h - 1)
        xs = np.clip(per[..., 1].astype(np.int64), 0, w - 1)
        samples = np.arange(len(out))[:, None]
        out[samples, ys, xs] = np.clip(per[..., 2:], 0, 1)
        return out

    def _search(self, oracle, row: int, opts: OnePixelOptions, bar) -> np.ndarray:
        image = oracle.images[row]
        h, w, c = image.shape
        best = {"value": -np.inf, "image": image}

        def cost(genes: np.ndarray) -> np.ndarray:
            genes = genes.reshape(len(bounds), -1)
            left = int(oracle.remaining([row])[0])
            take = min(genes.shape[1], left)
            values = np.full(genes.shape[1], np.inf)
            if take:
                step = oracle.batch_size  # candidate images made per chunk: memory follows --batch-size
                chunks = [genes[:, i : min(i + step, take)] for i in range(0, take, step)]
                z = np.concatenate([oracle.logits(self._apply(image, c), [row] * c.shape[1]) for c in chunks])
                bar.update(take)
                j = oracle.objective(z, [row] * take, opts.loss)
                values[:take] = -j
                k = int(np.argmax(j))
                hits = np.flatnonzero(oracle.is_adversarial(z, [row] * take))
                if len(hits):
                    best["image"] = self._apply(image, genes[:, [hits[np.argmax(j[hits])]]])[0]
                    raise _Stop
                if j[k] > best["value"]:
                    best["value"], best["image"] = j[k], self._apply(image, genes[:, [k]])[0]
            if take < genes.shape[1] or take == left:
                raise _Stop
            return values

        from scipy.optimize import differential_evolution  # 0.3 s to import: only when attacking

        bounds = [(0, h), (0, w), *[(0, 1)] * c] * opts.pixels
        popsize = max(1, math.ceil(opts.population / len(bounds)))
        try:
            differential_evolution(cost, bounds, popsize=popsize, maxiter=10**6, mutation=0.5, recombination=1.0,
                                   polish=False, init="random", updating="deferred", vectorized=True, tol=0,
                                   **{_seed_keyword(differential_evolution): oracle.rng(row)})
        except _Stop:
            pass
        return best["image"]
