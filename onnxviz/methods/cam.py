"""The CAM helper: a Grad-CAM-style variant only says how to weight the channels of a layer."""

from __future__ import annotations

import numpy as np

from ..method import Method, MethodOutput


class CamMethod(Method):
    """ReLU(sum_c w_c * A_c) at a layer; subclasses implement `channel_weights(acts, grads) -> (N, C)`."""

    family = "cam"
    requires = "gradients"
    needs_layer = True
    output = "map"

    def channel_weights(self, acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement channel_weights(acts, grads)")

    def explain(self, ctx, x: np.ndarray, opts) -> MethodOutput:
        acts, grads = ctx.grad(x, wrt=ctx.layer.name, with_activations=True)
        if acts.ndim != 4:
            raise ValueError(f"layer {ctx.layer.name} has shape {acts.shape}; CAM methods need a 4-D layer")
        if ctx.layer.layout == "NHWC":
            acts, grads = acts.transpose(0, 3, 1, 2), grads.transpose(0, 3, 1, 2)
        weights = self.channel_weights(acts, grads)
        cam = np.maximum(np.einsum("nc,nchw->nhw", weights, acts), 0).astype(np.float32)
        return MethodOutput(cam, raw=cam)
