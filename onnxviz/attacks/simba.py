"""SimBA: try +/- a step along one random basis direction at a time; keep whichever lowers the class
probability (raises the target's). Pixel basis, or low-frequency DCT basis (SimBA-DCT).

Guo et al. 2019, https://arxiv.org/abs/1905.07121
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..options import option
from .base import Attack
from .budget import Norm, project

PASSES = 2  # sweeps over the directions (a second pass may push a direction further or back)


@dataclass(frozen=True)
class SimbaOptions:
    eps: float = option(8 / 255, "budget in [0, 1] image space, in the chosen norm")
    norm: Norm = option("linf", "linf or l2")
    basis: Literal["pixel", "dct"] = option("pixel", "directions: single pixels, or low-frequency DCT patterns")
    step: float | None = option(None, "step along a direction (default: eps for linf, 0.2 for l2, at most eps)")
    freq: float = option(0.125, "dct basis: the lowest fraction of frequencies per axis, searched first")
    max_queries: int = option(10000, "forward passes per image")

    def __post_init__(self):
        if self.eps <= 0 or self.max_queries < 1 or not 0 < self.freq <= 1:
            raise ValueError("eps must be > 0, max_queries >= 1 and freq in (0, 1]")


class Basis:
    """Directions of one image's search, normalized in the attack's norm (max |q| = 1 or ||q||_2 = 1)."""

    def __init__(self, shape: tuple[int, int, int], opts: SimbaOptions):
        self.shape, self.norm = shape, opts.norm
        h, w, c = shape
        self.dct = opts.basis == "dct"
        self.low = shape  # the block searched first
        if self.dct:
            from scipy.fft import idct  # scipy.fft costs 0.15 s to import: only for the DCT basis

            self.low = (max(1, round(h * opts.freq)), max(1, round(w * opts.freq)), c)
            self.rows_h = idct(np.eye(h), axis=0, norm="ortho").T  # row u: the spatial pattern of frequency u
            self.rows_w = idct(np.eye(w), axis=0, norm="ortho").T
        self.grid = shape
        self.size = int(np.prod(shape))

    def order(self, rng: np.random.Generator) -> np.ndarray:
        """Every direction once: the low-frequency block first (random order), then the rest (random order)."""
        a, b, _ = np.unravel_index(np.arange(self.size), self.grid)
        low = (a < self.low[0]) & (b < self.low[1])
        return np.concatenate([rng.permutation(np.flatnonzero(low)), rng.permutation(np.flatnonzero(~low))])

    def vector(self, index: int) -> np.ndarray:
        q = np.zeros(self.shape, np.float32)
        a, b, ch = np.unravel_index(index, self.grid)
        if not self.dct:
            q[a, b, ch] = 1.0
            return q
        q[..., ch] = np.outer(self.rows_h[a], self.rows_w[b])
        scale = np.abs(q).max() if self.norm == "linf" else np.linalg.norm(q)
        return q / scale


class Simba(Attack):
    """Simple black-box attack: one basis direction per step, one or two queries per step."""

    name = "simba"
    requires = "forward"
    paper = "https://arxiv.org/abs/1905.07121"
    Options = SimbaOptions

    def attack(self, oracle, opts: SimbaOptions) -> np.ndarray:
        x = oracle.images
        n = len(x)
        step = opts.step or (opts.eps if opts.norm == "linf" else min(0.2, opts.eps))
        basis = Basis(x.shape[1:], opts)
        orders = [basis.order(oracle.rng(i)) for i in range(n)]
        adv, pos = x.copy(), np.zeros(n, np.int64)
        best = oracle.objective(oracle.clean_logits, np.arange(n), "ce")
        done = oracle.is_adversarial(oracle.clean_logits, np.arange(n))
        with oracle.progress(n * opts.max_queries, "simba", unit="query") as bar:
            while True:
                rows = np.flatnonzero(~done & (pos < PASSES * basis.size) & (oracle.remaining(np.arange(n)) > 0))
                if not len(rows):
                    break
                q = np.stack([basis.vector(orders[i][pos[i] % basis.size]) for i in rows])
                pos[rows] += 1
                pending = np.ones(len(rows), bool)  # rows whose direction has not helped yet
                for sign in (-1.0, 1.0):
                    cand = project(x[rows], adv[rows] + sign * step * q, opts.eps, opts.norm)
                    moved = np.abs(cand - adv[rows]).reshape(len(rows), -1).max(axis=1) > 0
                    idx = np.flatnonzero(pending & moved & (oracle.remaining(rows) > 0))
                    if not len(idx):
                        continue
                    sel = rows[idx]
                    z = oracle.logits(cand[idx], sel)
                    bar.update(len(sel))
                    j = oracle.objective(z, sel, "ce")
                    better = j > best[sel]
                    won = sel[better]
                    adv[won], best[won] = cand[idx[better]], j[better]
                    done[won] = oracle.is_adversarial(z[better], won)
                    pending[idx[better]] = False
        return adv
