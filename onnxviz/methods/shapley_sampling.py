"""Shapley value sampling: each segment's marginal contribution as segments join the baseline one at a time, in
random orders, averaged (exact over every order).

Castro, Gomez & Tejada 2009, https://doi.org/10.1016/j.cor.2008.04.004
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..method import Method
from ..options import option
from .coalitions import CoalitionOptions, scores, segments, spread


@dataclass(frozen=True)
class ShapleySamplingOptions(CoalitionOptions):
    n_samples: int = option(25, "random orders of the segments (each costs segments + 1 passes)")

    def __post_init__(self):
        super().__post_init__()
        if self.n_samples < 1:
            raise ValueError("n_samples must be at least 1")


class ShapleySampling(Method):
    """Mean marginal contribution of each segment over random orders (onnxruntime only)."""

    name = "shapley_sampling"
    family = "perturbation"
    needs_image = True
    requires = "forward"
    paper = "https://doi.org/10.1016/j.cor.2008.04.004"
    Options = ShapleySamplingOptions

    def explain(self, ctx, x: np.ndarray, opts: ShapleySamplingOptions) -> np.ndarray:
        labels, fill = segments(ctx, x, opts)
        out = np.zeros(x.shape, np.float32)
        sizes = [int(lab.max()) + 1 for lab in labels]
        with ctx.progress(sum(opts.n_samples * (m + 1) for m in sizes), self.name) as bar:
            for i, groups in enumerate(sizes):
                rng = ctx.sample_rng(x[i])
                total = np.zeros(groups)
                for _ in range(opts.n_samples):
                    order = rng.permutation(groups)
                    z = np.zeros((groups + 1, groups), np.int8)
                    for step, segment in enumerate(order):
                        z[step + 1 :, segment] = 1  # row s: the first s segments of the order present
                    y = scores(ctx, i, x, fill, labels[i], z, bar.update)
                    total[order] += np.diff(y)
                out[i] = spread(total / opts.n_samples, labels[i])
        return out
