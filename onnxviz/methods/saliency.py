"""Saliency: the gradient of the target score wrt the input.

Simonyan, Vedaldi & Zisserman 2014, https://arxiv.org/abs/1312.6034
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..method import Method
from ..options import option


@dataclass(frozen=True)
class SaliencyOptions:
    abs: bool = option(True, "take the absolute value of the gradient (as Captum's Saliency does)")


class Saliency(Method):
    """Gradient of the target score wrt every input value."""

    name = "saliency"
    family = "attribution"
    requires = "gradients"
    estimable = True
    paper = "https://arxiv.org/abs/1312.6034"
    Options = SaliencyOptions

    def explain(self, ctx, x: np.ndarray, opts: SaliencyOptions) -> np.ndarray:
        grads = ctx.grad(x)
        return np.abs(grads) if opts.abs else grads
