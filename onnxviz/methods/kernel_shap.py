"""KernelSHAP: Shapley values of image segments as the weighted least-squares fit on coalitions drawn by the
Shapley kernel (every coalition enumerated, and the values exact, when the budget allows).

Lundberg & Lee 2017, https://arxiv.org/abs/1705.07874
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np

from ..method import Method
from ..options import option
from .coalitions import CoalitionOptions, scores, segments, spread, weighted_linear

ENDPOINT = 1e6  # the weight of the empty and full coalitions (theoretically infinite), as Captum's


@dataclass(frozen=True)
class KernelShapOptions(CoalitionOptions):
    n_samples: int = option(200, "coalitions; every one of the 2^groups when this many suffice (exact values)")

    def __post_init__(self):
        super().__post_init__()
        if self.n_samples < 3:
            raise ValueError("n_samples must be at least 3 (the full and empty coalitions, and one more)")


def sampled(rng: np.random.Generator, n: int, groups: int) -> np.ndarray:
    """Captum's draw: the full and the empty coalition, then coalitions of k segments, k with probability
    proportional to (M - 1) / (k (M - k)), the k segments uniformly."""
    rows = np.zeros((n, groups), np.int8)
    rows[0] = 1
    if groups < 2:
        return rows
    sizes = np.arange(1, groups)
    p = (groups - 1) / (sizes * (groups - sizes))
    for s in range(2, n):
        k = rng.choice(sizes, p=p / p.sum())
        rows[s, rng.choice(groups, size=k, replace=False)] = 1
    return rows


def enumerated(groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Every coalition and its Shapley-kernel weight (M - 1) / (C(M, k) k (M - k))."""
    rows, weights = [np.ones(groups, np.int8), np.zeros(groups, np.int8)], [ENDPOINT, ENDPOINT]
    for k in range(1, groups):
        weight = (groups - 1) / (comb(groups, k) * k * (groups - k))
        for chosen in combinations(range(groups), k):
            row = np.zeros(groups, np.int8)
            row[list(chosen)] = 1
            rows.append(row)
            weights.append(weight)
    return np.stack(rows), np.asarray(weights)


class KernelShap(Method):
    """Shapley values of segments from a kernel-weighted linear fit on coalitions (onnxruntime only)."""

    name = "kernel_shap"
    family = "perturbation"
    needs_image = True
    requires = "forward"
    paper = "https://arxiv.org/abs/1705.07874"
    Options = KernelShapOptions

    def explain(self, ctx, x: np.ndarray, opts: KernelShapOptions) -> np.ndarray:
        labels, fill = segments(ctx, x, opts)
        out = np.zeros(x.shape, np.float32)
        with ctx.progress(len(x) * opts.n_samples, self.name) as bar:
            for i in range(len(x)):
                groups = int(labels[i].max()) + 1
                if 2**groups <= opts.n_samples:
                    z, weights = enumerated(groups)
                else:
                    z = sampled(ctx.sample_rng(x[i]), opts.n_samples, groups)
                    weights = np.where(np.isin(z.sum(axis=1), (0, groups)), ENDPOINT, 1.0)
                y = scores(ctx, i, x, fill, labels[i], z, bar.update)
                out[i] = spread(weighted_linear(z, y, weights), labels[i])
        return out
