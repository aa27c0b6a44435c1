"""`random_baseline`: noise shaped like the input, the floor a real attribution method must beat.

Adebayo et al. 2018, Sanity Checks for Saliency Maps, https://arxiv.org/abs/1810.03292
"""

from __future__ import annotations

import numpy as np

from onnxviz import Context, Method


class RandomBaseline(Method):
    """Gaussian noise per input value, a fixed function of the image and --seed (no forward pass)."""

    name = "random_baseline"
    family = "attribution"
    requires = "forward"
    paper = "https://arxiv.org/abs/1810.03292"
    target_dependent = False  # noise: the same whatever is explained ...
    model_dependent = False  # ... and whatever the weights (that is the point of a baseline)

    def explain(self, ctx: Context, x: np.ndarray, opts: object) -> np.ndarray:
        # ctx.sample_rng(image) is seeded by --seed and the image itself: a batch equals its samples one by one
        return np.stack([ctx.sample_rng(sample).standard_normal(sample.shape) for sample in x]).astype(np.float32)
