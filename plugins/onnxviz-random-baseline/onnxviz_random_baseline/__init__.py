"""`random_baseline`: noise shaped like the input, the floor a real attribution method must beat.

Adebayo et al. 2018, Sanity Checks for Saliency Maps, https://arxiv.org/abs/1810.03292
"""

from __future__ import annotations

import zlib

import numpy as np

from onnxviz import Method


class RandomBaseline(Method):
    """Gaussian noise per input value, a fixed function of the image and --seed (no forward pass)."""

    name = "random_baseline"
    family = "attribution"
    requires = "forward"
    paper = "https://arxiv.org/abs/1810.03292"

    def explain(self, ctx, x: np.ndarray, opts) -> np.ndarray:
        maps = np.empty(x.shape, np.float32)
        for i, sample in enumerate(x):
            # seeded by the run's seed and the image itself, so a batch equals its samples run one by one
            rng = np.random.default_rng([ctx.seed, zlib.crc32(np.ascontiguousarray(sample).tobytes())])
            maps[i] = rng.standard_normal(sample.shape)
        return maps
