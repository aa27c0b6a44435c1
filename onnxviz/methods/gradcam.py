"""Grad-CAM: channels weighted by their spatially averaged gradient.

Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391
"""

from __future__ import annotations

import numpy as np

from .cam import CamMethod


class GradCam(CamMethod):
    """Layer activations weighted by the mean gradient of each channel, then ReLU."""

    name = "gradcam"
    paper = "https://arxiv.org/abs/1610.02391"

    def channel_weights(self, acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
        return grads.mean(axis=(2, 3))
