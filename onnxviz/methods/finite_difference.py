"""Finite-difference saliency: central differences of the target score, on onnxruntime only.

(f(x + h e_g) - f(x - h e_g)) / 2h for each group g of input values: single values (pixel granularity,
the gradient itself), K x K patches, or superpixels (the mean gradient over the group).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io import read_image
from ..method import Method
from ..options import option
from ..segments import GRANULARITY, check_granularity, group_labels

BLOCK = 64  # groups perturbed at once (2 x BLOCK inputs)


@dataclass(frozen=True)
class FiniteDifferenceOptions:
    granularity: str = option("pixel", GRANULARITY)
    h: float = option(1e-2, "step size in the model's input units")

    def __post_init__(self):
        check_granularity(self.granularity)
        if self.h <= 0:
            raise ValueError("h must be positive")


class FiniteDifference(Method):
    """Central differences of the score per input value, patch or superpixel (no gradients needed)."""

    name = "finite_difference"
    family = "perturbation"
    requires = "forward"
    paper = "https://en.wikipedia.org/wiki/Finite_difference#Basic_types"
    Options = FiniteDifferenceOptions

    def explain(self, ctx, x: np.ndarray, opts: FiniteDifferenceOptions) -> np.ndarray:
        out = np.zeros(x.shape, np.float32)
        labels = [group_labels(sample, opts.granularity, ctx.layout, read_image) for sample in x]
        with ctx.progress(2 * sum(int(lab.max()) + 1 for lab in labels), "finite differences") as bar:
            for i, lab in enumerate(labels):
                flat = lab.ravel()
                groups = int(flat.max()) + 1
                sizes = np.bincount(flat, minlength=groups)
                slopes = np.empty(groups, np.float64)
                for start in range(0, groups, BLOCK):
                    ids = np.arange(start, min(start + BLOCK, groups))
                    step = (flat[None, :] == ids[:, None]).astype(x.dtype) * x.dtype.type(opts.h)  # (B, numel)
                    base = x[i].reshape(1, -1)
                    batch = np.concatenate([base + step, base - step]).reshape(-1, *x.shape[1:])
                    scores = ctx.for_samples([i] * len(batch)).score(batch, on_chunk=bar.update)
                    slopes[ids] = (scores[: len(ids)].astype(np.float64) - scores[len(ids) :]) / (2 * opts.h)
                out[i] = (slopes / sizes)[lab]
        return out
