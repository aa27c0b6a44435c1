"""Square Attack (L-inf): random square patches of +/- eps, kept when the loss improves; the patch side
shrinks on a fixed schedule. One query per step.

Andriushchenko et al. 2020, https://arxiv.org/abs/1912.00049
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..options import option
from .base import Attack
from .budget import project
from .losses import Loss

# (iteration on a 10,000-step scale, divisor of p_init) from the paper's schedule
SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128), (8000, 256))


@dataclass(frozen=True)
class SquareOptions:
    eps: float = option(8 / 255, "L-inf budget in [0, 1] image space")
    max_queries: int = option(5000, "forward passes per image")
    p_init: float = option(0.05, "initial share of the image a square covers")
    loss: Loss | None = option(None, "objective (default: margin untargeted, ce targeted, as in the paper)")

    def __post_init__(self):
        if self.eps <= 0 or self.max_queries < 1 or not 0 < self.p_init <= 1:
            raise ValueError("eps must be > 0, max_queries >= 1 and p_init in (0, 1]")


def square_fraction(p_init: float, step: int, total: int) -> float:
    scaled = int(step / max(total, 1) * 10000)
    divisor = next((d for limit, d in SCHEDULE if scaled <= limit), 512)
    return p_init / divisor


class Square(Attack):
    """Score-based random search over square patches at the corners of the L-inf ball."""

    name = "square"
    requires = "forward"
    paper = "https://arxiv.org/abs/1912.00049"
    Options = SquareOptions

    def attack(self, oracle, opts: SquareOptions) -> np.ndarray:
        x = oracle.images
        n, h, w, c = x.shape
        loss = opts.loss or ("ce" if oracle.targeted else "margin")
        rngs = [oracle.rng(i) for i in range(n)]
        done = oracle.is_adversarial(oracle.clean_logits, np.arange(n))
        rows = np.flatnonzero(~done)
        adv = x.copy()
        best = np.full(n, -np.inf)
        if len(rows):  # vertical stripes of +/- eps (the paper's start)
            stripes = np.stack([rngs[i].choice([-opts.eps, opts.eps], size=(1, w, c)) for i in rows])
            adv[rows] = project(x[rows], x[rows] + stripes, opts.eps, "linf")
            z = oracle.logits(adv[rows], rows)
            best[rows], done[rows] = oracle.objective(z, rows, loss), oracle.is_adversarial(z, rows)
        with oracle.progress(n * opts.max_queries, "square", unit="query") as bar:
            for step in range(1, opts.max_queries):
                rows = np.flatnonzero(~done & (oracle.remaining(np.arange(n)) > 0))
                if not len(rows):
                    break
                side = round(float(np.sqrt(square_fraction(opts.p_init, step, opts.max_queries) * h * w)))
                side = min(max(side, 1), min(h, w) - 1) if min(h, w) > 1 else 1
                cand = np.stack([self._patch(x[i], adv[i], side, opts.eps, rngs[i]) for i in rows])
                z = oracle.logits(cand, rows)
                bar.update(len(rows))
                j = oracle.objective(z, rows, loss)
                better = j > best[rows]
                won = rows[better]
                adv[won], best[won] = cand[better], j[better]
                done[won] = oracle.is_adversarial(z[better], won)
        return adv

    @staticmethod
    def _patch(x: np.ndarray, adv: np.ndarray, side: int, eps: float, rng: np.random.Generator) -> np.ndarray:
        """`adv` with one side x side window set to a random +/- eps per channel (a window that changes)."""
        h, w, c = x.shape
        for _ in range(10):
            r, q = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            window = np.clip(x[r : r + side, q : q + side] + rng.choice([-eps, eps], size=(1, 1, c)), 0, 1)
            if np.abs(window - adv[r : r + side, q : q + side]).max() > 1e-7:
                break
        out = adv.copy()
        out[r : r + side, q : q + side] = window
        return out.astype(np.float32)
