"""Principal-component CAMs: EigenGrad-CAM (the first principal component of activations x gradients) and KPCA-CAM
(the first kernel principal component of the activations), as pytorch-grad-cam computes them.

Muhammad & Yeasin 2020 (Eigen-CAM), https://arxiv.org/abs/2008.00299; Karmani et al. 2024 (KPCA-CAM),
https://arxiv.org/abs/2410.00267
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import DependencyError
from ..method import MethodOutput
from ..options import option
from .cam import CamMethod
from .cam_forward import first_component


class EigenGradCam(CamMethod):
    """First principal component of the layer's activations times their gradients (class-specific Eigen-CAM)."""

    name = "eigengradcam"
    paper = "https://arxiv.org/abs/2008.00299"

    def combine(self, ctx, x, acts, grads) -> np.ndarray:
        return first_component(acts * grads)


Kernel = Literal["sigmoid", "rbf", "poly", "cosine", "linear"]


@dataclass(frozen=True)
class KpcaCamOptions:
    kernel: Kernel = option("sigmoid", "kernel of the kernel PCA (scikit-learn's KernelPCA)")
    gamma: float | None = option(None, "kernel coefficient (None: 1 / channels)")

    def __post_init__(self):
        if self.gamma is not None and not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, not {self.gamma}")


def kernel_component(maps: np.ndarray, kernel: str, gamma: float | None) -> np.ndarray:
    """(N, C, h, w) -> (N, h, w): each image's positions on the first kernel principal component of its channels."""
    try:
        from sklearn.decomposition import KernelPCA
    except ImportError:
        raise DependencyError('kpcacam needs scikit-learn: pip install "onnxviz[concepts]"') from None
    out = []
    for a in np.nan_to_num(maps):
        flat = a.reshape(a.shape[0], -1).T
        flat = flat - flat.mean(axis=0)
        projection = KernelPCA(n_components=1, kernel=kernel, gamma=gamma).fit_transform(flat)
        out.append(projection.reshape(a.shape[1:]))
    return np.asarray(out, np.float32)


class KpcaCam(CamMethod):
    """First kernel principal component of the layer's activations (class-agnostic, forward only)."""

    name = "kpcacam"
    requires = "forward"
    target_dependent = False
    paper = "https://arxiv.org/abs/2410.00267"
    Options = KpcaCamOptions

    def explain(self, ctx, x: np.ndarray, opts: KpcaCamOptions) -> MethodOutput:
        acts, _ = self.layer_tensors(ctx, x)
        cam = np.maximum(kernel_component(acts, opts.kernel, opts.gamma), 0).astype(np.float32)
        return MethodOutput(cam, raw=cam)
