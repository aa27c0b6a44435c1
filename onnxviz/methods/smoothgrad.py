"""SmoothGrad: any gradient method averaged over noisy copies of the input (a wrapper, not a flag).

Smilkov et al. 2017, https://arxiv.org/abs/1706.03825 (VarGrad: Adebayo et al. 2018,
https://arxiv.org/abs/1810.03307)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .. import registry
from ..errors import OptionError
from ..method import Method, MethodOutput
from ..options import build, option


@dataclass(frozen=True)
class SmoothGradOptions:
    base: str = option("saliency", "the gradient method to smooth (any pixel method that needs gradients)")
    nt_samples: int = option(5, "noisy samples per input")
    stdevs: float = option(1.0, "standard deviation of the Gaussian noise, in the model's input units")
    nt_type: Literal["smoothgrad", "smoothgrad_sq", "vargrad"] = option(
        "smoothgrad", "mean, mean of squares, or variance of the noisy attributions")

    def __post_init__(self):
        if self.nt_samples < 1 or self.stdevs < 0:
            raise ValueError("nt_samples must be at least 1 and stdevs non-negative")
        if self.nt_samples > 100_000:
            raise ValueError(f"nt_samples must be at most 100,000, not {self.nt_samples:,}")


class SmoothGrad(Method):
    """Noise tunnel around a gradient method (as Captum's NoiseTunnel)."""

    name = "smoothgrad"
    family = "attribution"
    requires = "gradients"
    estimable = True
    paper = "https://arxiv.org/abs/1706.03825"
    Options = SmoothGradOptions

    def explain(self, ctx, x: np.ndarray, opts: SmoothGradOptions) -> MethodOutput:
        base_cls = registry.get(opts.base)
        if (not issubclass(base_cls, Method) or base_cls.requires != "gradients" or base_cls.output != "pixels"
                or base_cls is SmoothGrad):
            raise OptionError(f"smoothgrad cannot wrap {opts.base}: it needs a pixel method that uses gradients")
        base, base_opts = base_cls(), build(base_cls.Options, {}, base_cls.name)
        total = np.zeros(x.shape, np.float64)
        squares = np.zeros(x.shape, np.float64)
        extras: dict = {}
        with ctx.progress(len(x) * opts.nt_samples, f"smoothgrad({opts.base})") as bar:
            for i in range(len(x)):
                rng = ctx.sample_rng(x[i])  # drawn in chunks: the same noise as one draw of nt_samples
                for start in range(0, opts.nt_samples, ctx.batch_size):  # memory follows --batch-size
                    k = min(ctx.batch_size, opts.nt_samples - start)
                    noisy = (x[i] + rng.standard_normal((k, *x.shape[1:])) * opts.stdevs).astype(x.dtype)
                    out = base.explain(ctx.for_samples([i] * k), noisy, base_opts)
                    attr = np.asarray(out.attributions if isinstance(out, MethodOutput) else out, np.float64)
                    total[i] += attr.sum(axis=0)
                    squares[i] += (attr**2).sum(axis=0)
                    bar.update(k)
        total, squares = total / opts.nt_samples, squares / opts.nt_samples
        result = {"smoothgrad": total, "smoothgrad_sq": squares, "vargrad": squares - total**2}[opts.nt_type]
        extras["base"] = opts.base
        return MethodOutput(result.astype(np.float32), extras=extras)
