"""The CAM helper: a Grad-CAM-style variant only says how to weight the channels of a layer."""

from __future__ import annotations

import numpy as np

from ..errors import MethodError
from ..layers import map_layout
from ..method import Method, MethodOutput


class CamMethod(Method):
    """ReLU(sum_c w_c * A_c) at a layer. Gradient variants implement `channel_weights(acts, grads) -> (N, C)`;
    forward-only variants set requires = "forward" and override `combine`."""

    family = "cam"
    requires = "gradients"
    needs_layer = True
    output = "map"

    def channel_weights(self, acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement channel_weights(acts, grads)")

    def combine(self, ctx, x: np.ndarray, acts: np.ndarray, grads: np.ndarray | None) -> np.ndarray:
        """(N, H, W) map from NCHW activations (and gradients); the ReLU comes after."""
        if grads is None:
            raise MethodError(f"{self.name} weights channels by gradients: declare requires = 'gradients', or "
                              "override combine() for a forward-only variant")
        return np.einsum("nc,nchw->nhw", self.channel_weights(acts, grads), acts)

    def layer_tensors(self, ctx, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The layer's activations (and gradients, for gradient variants) as (N, C, h, w), whatever its layout."""
        map_layout(ctx.layer)
        if self.requires == "gradients":
            acts, grads = ctx.grad(x, wrt=ctx.layer.name, with_activations=True)
        else:
            acts, grads = ctx.activations(x), None
        axes = map_layout(ctx.layer, acts.shape)
        return axes.to_channels_first(acts), None if grads is None else axes.to_channels_first(grads)

    def explain(self, ctx, x: np.ndarray, opts) -> MethodOutput:
        acts, grads = self.layer_tensors(ctx, x)
        cam = np.maximum(self.combine(ctx, x, acts, grads), 0).astype(np.float32)
        return MethodOutput(cam, raw=cam)
