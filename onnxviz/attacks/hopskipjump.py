"""HopSkipJump (L2): a decision-based attack. From an adversarial start it walks along the decision
boundary towards the clean image: binary search to the boundary, a gradient direction estimated from
labels alone, a geometric step, repeat.

Chen, Jordan & Wainwright 2020, https://arxiv.org/abs/1904.02144
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..options import option
from .base import Attack
from .budget import project


@dataclass(frozen=True)
class HopSkipJumpOptions:
    eps: float | None = option(None, "L2 budget in [0, 1] image space (None: report the smallest found)")
    max_queries: int = option(5000, "forward passes (labels only) per image")
    init_evals: int = option(100, "boundary probes for the first gradient estimate (grows as sqrt(iteration))")
    max_evals: int = option(1000, "most boundary probes per gradient estimate")
    init_tries: int = option(100, "random images tried to find an adversarial start")
    gamma: float = option(1.0, "binary-search precision factor (theta = gamma / d^1.5)")
    start: np.ndarray | None = option(None, "an adversarial start image (H, W, C) in [0, 1], e.g. of the target class")

    def __post_init__(self):
        if (self.eps is not None and self.eps <= 0) or self.max_queries < 1 or self.init_evals < 1:
            raise ValueError("eps must be > 0, max_queries and init_evals >= 1")


class _Spent(Exception):
    """The image's query budget is used up."""


class HopSkipJump(Attack):
    """Labels-only: every query asks "is this image adversarial?"."""

    name = "hopskipjump"
    requires = "forward"
    decision_based = True
    paper = "https://arxiv.org/abs/1904.02144"
    Options = HopSkipJumpOptions

    def attack(self, oracle, opts: HopSkipJumpOptions) -> np.ndarray:
        x = oracle.images
        done = oracle.is_adversarial(oracle.clean_logits, np.arange(len(x)))
        out = x.copy()
        with oracle.progress(len(x) * opts.max_queries, "hopskipjump", unit="query") as bar:
            for row in np.flatnonzero(~done):
                best = _Walk(oracle, int(row), opts, bar).run()
                out[row] = best if best is not None else x[row]
        if opts.eps is not None:
            out = project(x, out, opts.eps, "l2")
        return out


class _Walk:
    """One image's search; `best` is the closest adversarial found so far."""

    def __init__(self, oracle, row: int, opts: HopSkipJumpOptions, bar):
        self.oracle, self.row, self.opts, self.bar = oracle, row, opts, bar
        self.x = oracle.images[row].astype(np.float64)
        self.d = self.x.size
        self.theta = opts.gamma / (self.d * np.sqrt(self.d))
        self.rng = oracle.rng(row)
        self.best: np.ndarray | None = None

    def decide(self, imgs: np.ndarray) -> np.ndarray:
        """Adversarial or not, for as many of `imgs` as the budget allows (raises _Spent when it ran out)."""
        left = int(self.oracle.remaining([self.row])[0])
        if left <= 0:
            raise _Spent
        imgs = imgs[:left]
        self.bar.update(len(imgs))
        return self.oracle.decide(np.clip(imgs, 0, 1).astype(np.float32), [self.row] * len(imgs))

    def keep(self, candidate: np.ndarray) -> None:
        if self.best is None or np.linalg.norm(candidate - self.x) < np.linalg.norm(self.best - self.x):
            self.best = candidate.astype(np.float32)

    def run(self) -> np.ndarray | None:
        try:
            start = self.initial()
            if start is None:
                return None
            boundary = self.binary_search(start)
            for t in range(1, 10**9):
                dist = float(np.linalg.norm(boundary - self.x))
                if dist == 0:
                    break
                direction = self.gradient_direction(boundary, t, dist)
                step = dist / np.sqrt(t)
                while not self.decide((boundary + step * direction)[None])[0]:
                    step /= 2
                boundary = self.binary_search(np.clip(boundary + step * direction, 0, 1))
        except _Spent:
            pass
        return self.best

    def initial(self) -> np.ndarray | None:
        """An adversarial start: the given one, or the first adversarial among random images (flat colours,
        blocky noise at several scales and pixel noise, tried in one batch)."""
        if self.opts.start is not None:
            start = np.broadcast_to(np.asarray(self.opts.start, np.float64), self.x.shape)
            return start if self.decide(start[None])[0] else None
        found = None
        for first in range(0, self.opts.init_tries, self.oracle.batch_size):  # memory follows --batch-size
            ks = range(first, min(first + self.oracle.batch_size, self.opts.init_tries))
            tries = np.stack([self._random_image(k) for k in ks])
            hits = np.flatnonzero(self.decide(tries))
            if found is None and len(hits):  # all are tried, as in one batch: the result cannot depend on chunks
                found = tries[hits[0]]
        return found

    def _random_image(self, k: int) -> np.ndarray:
        h, w, c = self.x.shape
        cells = (1, 2, 4, 8, 16, max(h, w))[k % 6]
        low = self.rng.uniform(0, 1, (min(cells, h), min(cells, w), c))
        rows, cols = np.arange(h) * len(low) // h, np.arange(w) * low.shape[1] // w
        return low[rows][:, cols]

    def binary_search(self, adversarial: np.ndarray) -> np.ndarray:
        """The point of the segment clean -> adversarial just on the adversarial side of the boundary."""
        low, high = 0.0, 1.0
        while high - low > self.theta:
            mid = (low + high) / 2
            if self.decide(((1 - mid) * self.x + mid * adversarial)[None])[0]:
                high = mid
            else:
                low = mid
        point = (1 - high) * self.x + high * adversarial
        self.keep(point)
        return point

    def gradient_direction(self, boundary: np.ndarray, t: int, dist: float) -> np.ndarray:
        """Monte-Carlo estimate of the boundary's normal from the labels of random probes around it."""
        n = int(min(self.opts.init_evals * np.sqrt(t), self.opts.max_evals))
        delta = np.sqrt(self.d) * self.theta * dist
        # sum_i (s_i - mean s) u_i = sum_i s_i u_i - mean(s) sum_i u_i: one pass over chunks of --batch-size probes
        signed, plain, total, count = np.zeros(self.x.shape), np.zeros(self.x.shape), 0.0, 0
        for first in range(0, n, self.oracle.batch_size):  # a spent budget ends the walk (_Spent) in decide
            u = self.rng.standard_normal((min(self.oracle.batch_size, n - first), *self.x.shape))
            u /= np.sqrt((u.reshape(len(u), -1) ** 2).sum(axis=1)).reshape(-1, *[1] * self.x.ndim)
            probes = np.clip(boundary + delta * u, 0, 1)
            signs = self.decide(probes).astype(np.float64) * 2 - 1
            u = (probes[: len(signs)] - boundary) / delta
            signed += np.tensordot(signs, u, axes=1)
            plain += u.sum(axis=0)
            total, count = total + signs.sum(), count + len(signs)
        mean = total / count
        grad = (signed - mean * plain if abs(mean) != 1 else signed) / count
        return grad / max(float(np.linalg.norm(grad)), 1e-12)
