"""Input x Gradient: the input times the gradient of the target score wrt it.

Shrikumar et al. 2016, https://arxiv.org/abs/1605.01713
"""

from __future__ import annotations

import numpy as np

from ..method import Method


class InputXGradient(Method):
    """Element-wise input x gradient (first-order Taylor contribution of each input value)."""

    name = "input_x_gradient"
    family = "attribution"
    requires = "gradients"
    estimable = True
    display = "absolute"  # signs flip pixel by pixel: the magnitude is what a person reads
    paper = "https://arxiv.org/abs/1605.01713"

    def explain(self, ctx, x: np.ndarray, opts) -> np.ndarray:
        return x * ctx.grad(x)
