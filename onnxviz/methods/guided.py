"""Guided backpropagation, deconvnet and Guided Grad-CAM: gradients through ReLUs with another backward rule.

Springenberg et al. 2015, https://arxiv.org/abs/1412.6806 (guided backprop); Zeiler & Fergus 2014,
https://arxiv.org/abs/1311.2901 (deconvnet); Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391
(Guided Grad-CAM).
"""

from __future__ import annotations

import numpy as np

from ..errors import MethodError
from ..method import Method
from .gradcam import GradCam


class GuidedBackprop(Method):
    """Gradient where every ReLU passes back only positive gradients through positive inputs."""

    name = "guided_backprop"
    family = "attribution"
    requires = "gradients"
    display = "absolute"  # signs flip pixel by pixel: the magnitude is what a person reads
    paper = "https://arxiv.org/abs/1412.6806"

    def explain(self, ctx, x: np.ndarray, opts) -> np.ndarray:
        return ctx.grad(x, rules="guided")


class Deconvnet(Method):
    """Gradient where every ReLU passes back only positive gradients, whatever its input was."""

    name = "deconvnet"
    family = "attribution"
    requires = "gradients"
    display = "absolute"  # signs flip pixel by pixel: the magnitude is what a person reads
    paper = "https://arxiv.org/abs/1311.2901"

    def explain(self, ctx, x: np.ndarray, opts) -> np.ndarray:
        return ctx.grad(x, rules="deconv")


def upsample_nearest(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, h, w) -> (N, height, width), source index floor(i * h / height) (as torch's nearest mode)."""
    rows = np.floor(np.arange(height) * maps.shape[1] / height).astype(int)
    cols = np.floor(np.arange(width) * maps.shape[2] / width).astype(int)
    return maps[:, rows][:, :, cols]


class GuidedGradCam(Method):
    """Guided backprop times the Grad-CAM map upsampled (nearest) to the input size."""

    name = "guided_gradcam"
    family = "attribution"
    requires = "gradients"
    needs_layer = True
    display = "absolute"  # signs flip pixel by pixel: the magnitude is what a person reads
    paper = "https://arxiv.org/abs/1610.02391"

    def explain(self, ctx, x: np.ndarray, opts) -> np.ndarray:
        cam = GradCam().explain(ctx, x, opts).raw
        if cam is None:
            raise MethodError("guided_gradcam needs Grad-CAM's layer-space map, and it returned none")
        up = upsample_nearest(cam, *ctx.input_size(x))
        return ctx.grad(x, rules="guided") * ctx.over_channels(up)
