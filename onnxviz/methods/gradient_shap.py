"""GradientSHAP: the expected gradient times (x - reference) over references drawn from a set, points drawn uniformly
on the path between them, and Gaussian noise on the input; Captum's estimator, in bounded chunks.

Lundberg & Lee 2017, https://arxiv.org/abs/1705.07874 (expected gradients: Erion et al. 2021,
https://arxiv.org/abs/1906.10670)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..baselines import baseline_set, check_baseline_set
from ..method import Method, MethodOutput
from ..options import option

MAX_SAMPLES = 100_000


def draw(rng: np.random.Generator, n: int, n_references: int) -> tuple[np.ndarray, np.ndarray]:
    """(reference index, alpha in [0, 1)) of `n` samples; the input noise follows from the same `rng`, one chunk
    at a time (a normal stream drawn in chunks equals one draw: what the Captum reference test replays)."""
    return rng.integers(n_references, size=n), rng.random(n)


def noise(rng: np.random.Generator, shape: tuple[int, ...], stdevs: float) -> np.ndarray:
    return rng.normal(0.0, stdevs, shape) if stdevs > 0 else np.zeros(shape)


@dataclass(frozen=True)
class GradientShapOptions:
    n_samples: int = option(50, "random draws per image (computed in chunks of --batch-size)")
    stdevs: float = option(0.0, "standard deviation of the Gaussian noise added to the input (Captum's default 0)")
    baselines: float | str | np.ndarray = option(
        "uniform", "the references: uniform (n_baselines noise images), a (K, ...) array or .npy file, or one "
        "value, mean, blur")
    n_baselines: int = option(8, "how many uniform-noise references per image")
    blur_sigma: float = option(10.0, "Gaussian sigma in pixels for baselines=blur")

    def __post_init__(self):
        if not 1 <= self.n_samples <= MAX_SAMPLES:
            raise ValueError(f"n_samples must be 1..{MAX_SAMPLES:,}, not {self.n_samples:,}")
        if self.stdevs < 0:
            raise ValueError(f"stdevs must be >= 0, not {self.stdevs}")
        if not 1 <= self.n_baselines <= 10_000:
            raise ValueError(f"n_baselines must be 1..10000, not {self.n_baselines}")
        check_baseline_set(self.baselines)


class GradientShap(Method):
    """Mean of grad(r + alpha (x + noise - r)) * (x + noise - r) over random references r and alphas."""

    name = "gradient_shap"
    family = "attribution"
    requires = "gradients"
    estimable = True
    display = "absolute"
    paper = "https://arxiv.org/abs/1705.07874"
    Options = GradientShapOptions

    def explain(self, ctx, x: np.ndarray, opts: GradientShapOptions) -> MethodOutput:
        attributions = np.zeros(x.shape, np.float64)
        with ctx.progress(len(x) * opts.n_samples, "gradient_shap") as bar:
            for i, sample in enumerate(x):
                rng = ctx.sample_rng(sample)
                refs = baseline_set(opts.baselines, sample, ctx.layout, rng, opts.n_baselines, opts.blur_sigma)
                which, alphas = draw(rng, opts.n_samples, len(refs))
                for start in range(0, opts.n_samples, ctx.batch_size):  # memory bounded whatever n_samples is
                    part = slice(start, start + ctx.batch_size)
                    ref = refs[which[part]]
                    noisy = sample + noise(rng, ref.shape, opts.stdevs)
                    alpha = alphas[part].reshape(-1, *[1] * sample.ndim)
                    points = (ref + alpha * (noisy - ref)).astype(x.dtype)
                    grads = ctx.for_samples([i] * len(points)).grad(points)
                    attributions[i] += ((noisy - ref) * grads).sum(axis=0)
                    bar.update(len(points))
        return MethodOutput((attributions / opts.n_samples).astype(np.float32))
