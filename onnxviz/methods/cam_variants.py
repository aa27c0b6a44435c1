"""Grad-CAM's gradient-weighted relatives, each = the pytorch-grad-cam method of the same name.

Grad-CAM++: Chattopadhyay et al. 2018, https://arxiv.org/abs/1710.11063
XGrad-CAM: Fu et al. 2020, https://arxiv.org/abs/2008.02312
LayerCAM: Jiang et al. 2021, https://ieeexplore.ieee.org/document/9462463
HiResCAM: Draelos & Carin 2020, https://arxiv.org/abs/2011.08891
"""

from __future__ import annotations

import numpy as np

from .cam import CamMethod


class GradCamPlusPlus(CamMethod):
    """Channel weights from positive gradients with second- and third-order terms."""

    name = "gradcam_plus_plus"
    paper = "https://arxiv.org/abs/1710.11063"

    def channel_weights(self, acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
        g2, g3 = grads**2, grads**3
        sum_acts = acts.sum(axis=(2, 3), keepdims=True)
        alpha = np.where(grads != 0, g2 / (2 * g2 + sum_acts * g3 + 1e-6), 0)
        return (np.maximum(grads, 0) * alpha).sum(axis=(2, 3))


class XGradCam(CamMethod):
    """Gradients weighted by the activations normalized per channel."""

    name = "xgradcam"
    paper = "https://arxiv.org/abs/2008.02312"

    def channel_weights(self, acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
        return (grads * acts / (acts.sum(axis=(2, 3), keepdims=True) + 1e-7)).sum(axis=(2, 3))


class LayerCam(CamMethod):
    """Each activation weighted by its own positive gradient (no channel averaging)."""

    name = "layercam"
    paper = "https://ieeexplore.ieee.org/document/9462463"

    def combine(self, ctx, x, acts, grads) -> np.ndarray:
        return (np.maximum(grads, 0) * acts).sum(axis=1)


class HiResCam(CamMethod):
    """Element-wise gradient x activation summed over channels (faithful to the model's computation)."""

    name = "hirescam"
    paper = "https://arxiv.org/abs/2011.08891"

    def combine(self, ctx, x, acts, grads) -> np.ndarray:
        return (grads * acts).sum(axis=1)
