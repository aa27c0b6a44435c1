"""Integrated Gradients: (x - baseline) times the gradient averaged along the straight path between them.

Sundararajan, Taly & Yan 2017, https://arxiv.org/abs/1703.01365
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..baselines import check_baseline, make_baseline
from ..method import Method, MethodOutput
from ..options import option

MAX_STEPS = 100_000
Rule = Literal["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"]


@dataclass(frozen=True)
class IntegratedGradientsOptions:
    n_steps: int = option(50, "points on the path from the baseline to the input")
    baselines: float | str | np.ndarray = option(0.0, "a value, mean, blur, uniform, or an array (Python)")
    method: Rule = option("gausslegendre", "integration rule (as Captum: riemann_* or gausslegendre)")
    blur_sigma: float = option(10.0, "Gaussian sigma in pixels for baselines=blur")

    def __post_init__(self):
        if not 2 <= self.n_steps <= MAX_STEPS:
            raise ValueError(f"n_steps must be 2..{MAX_STEPS:,}, not {self.n_steps:,} (the path is walked in chunks of "
                             "--batch-size, so steps cost time: a few hundred are plenty)")
        check_baseline(self.baselines, files=False)


def path_rule(method: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights) of the quadrature rule on [0, 1]; the weights sum to 1, so a linear model's
    attributions are exact. (Captum's trapezoid weights sum to 1 - 1/n; its other rules are these.)"""
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return (nodes + 1) / 2, weights / 2
    if method == "riemann_trapezoid":
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0, 1, n), weights
    weights = np.full(n, 1.0 / n)
    start = {"riemann_left": 0.0, "riemann_right": 1.0 / n, "riemann_middle": 0.5 / n}[method]
    return start + np.arange(n) / n, weights


class IntegratedGradients(Method):
    """Path integral of gradients from a baseline; attributions sum to f(x) - f(baseline) (completeness)."""

    name = "integrated_gradients"
    family = "attribution"
    requires = "gradients"
    estimable = True
    display = "absolute"  # signs flip pixel by pixel: the magnitude is what a person reads
    paper = "https://arxiv.org/abs/1703.01365"
    Options = IntegratedGradientsOptions

    def explain(self, ctx, x: np.ndarray, opts: IntegratedGradientsOptions) -> MethodOutput:
        baseline = make_baseline(opts.baselines, x, ctx.layout, ctx.sample_rng, opts.blur_sigma)
        alphas, weights = path_rule(opts.method, opts.n_steps)
        n_points = len(x) * opts.n_steps
        total = np.zeros(x.shape, np.float64)
        delta = x - baseline
        with ctx.progress(n_points, "integrated gradients") as bar:
            for start in range(0, n_points, ctx.batch_size):  # bounded memory whatever n_steps is
                rows, steps = np.divmod(np.arange(start, min(start + ctx.batch_size, n_points)), opts.n_steps)
                points = baseline[rows] + alphas[steps].reshape(-1, *[1] * (x.ndim - 1)) * delta[rows]
                grads = ctx.for_samples(rows).grad(points.astype(x.dtype))
                np.add.at(total, rows, weights[steps].reshape(-1, *[1] * (x.ndim - 1)) * grads)
                bar.update(len(rows))
        attributions = (delta * total).astype(np.float32)
        gap = ctx.explained_scores(x) - ctx.score(baseline)
        error = attributions.reshape(len(x), -1).sum(axis=1) - gap
        return MethodOutput(attributions, extras={
            "completeness_error": error.tolist(),
            "relative_completeness_error": (np.abs(error) / np.maximum(np.abs(gap), 1e-12)).tolist(),
        })
