"""CAM variants that need no gradients: they run on onnxruntime alone.

CAM: Zhou et al. 2016, https://arxiv.org/abs/1512.04150
Eigen-CAM: Muhammad & Yeasin 2020, https://arxiv.org/abs/2008.00299
Score-CAM: Wang et al. 2020, https://arxiv.org/abs/1910.01279
Ablation-CAM: Desai & Ramaswamy 2020, https://openaccess.thecvf.com/content_WACV_2020/html/Desai_Ablation-CAM_Visual_Explanations_for_Deep_Convolutional_Network_via_Gradient-free_Localization_WACV_2020_paper.html
"""

from __future__ import annotations

import numpy as np

from ..targets import softmax
from .cam import CamMethod

BLOCK = 64  # masked inputs materialized at once by Score-CAM


class Cam(CamMethod):
    """Class activation map: the layer's channels weighted by the linear head's weights for the class
    (global-average-pooling + linear heads only; the weights are read from the ONNX initializers)."""

    name = "cam"
    requires = "forward"
    paper = "https://arxiv.org/abs/1512.04150"

    def combine(self, ctx, x, acts, grads) -> np.ndarray:
        weight, _ = ctx.linear_head()
        return np.einsum("nc,nchw->nhw", weight[ctx.targets], acts)


class EigenCam(CamMethod):
    """Projection of the layer's activations on their first principal component (class-agnostic)."""

    name = "eigencam"
    requires = "forward"
    target_dependent = False  # the first principal component of the activations: the same for every class
    paper = "https://arxiv.org/abs/2008.00299"

    def combine(self, ctx, x, acts, grads) -> np.ndarray:
        return first_component(acts)


def first_component(maps: np.ndarray) -> np.ndarray:
    """(N, C, h, w) -> (N, h, w): each image's positions projected on the first principal component of its
    channels (centred over positions, as pytorch-grad-cam's projection)."""
    out = []
    for a in np.nan_to_num(maps):
        flat = a.reshape(a.shape[0], -1).T
        flat = flat - flat.mean(axis=0)
        _, _, vt = np.linalg.svd(flat, full_matrices=True)  # as the reference: the same signs
        out.append((flat @ vt[0]).reshape(a.shape[1:]))
    return np.asarray(out, np.float32)


def upsample_bilinear_corners(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, C, h, w) -> (N, C, height, width), bilinear with aligned corners (torch's UpsamplingBilinear2d)."""
    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.arange(n_out) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        low = np.clip(np.floor(pos).astype(int), 0, n_in - 1)
        return low, np.minimum(low + 1, n_in - 1), (pos - low).astype(np.float32)

    r0, r1, fr = axis(maps.shape[2], height)
    c0, c1, fc = axis(maps.shape[3], width)
    rows = maps[:, :, r0] * (1 - fr)[:, None] + maps[:, :, r1] * fr[:, None]
    return rows[..., c0] * (1 - fc) + rows[..., c1] * fc


class ScoreCam(CamMethod):
    """Channel weights = softmax over channels of the target score when the input is masked by each
    upsampled, min-max normalized activation map; all masked inputs batched through onnxruntime."""

    name = "scorecam"
    requires = "forward"
    paper = "https://arxiv.org/abs/1910.01279"

    def combine(self, ctx, x, acts, grads) -> np.ndarray:
        height, width = ctx.input_size(x)
        n, channels = acts.shape[:2]
        weights = np.empty((n, channels), np.float32)
        with ctx.progress(n * channels, "scorecam") as bar:
            for i in range(n):
                scores = np.empty(channels, np.float32)
                for start in range(0, channels, BLOCK):  # bounded memory: BLOCK masked inputs at a time
                    up = upsample_bilinear_corners(acts[i : i + 1, start : start + BLOCK], height, width)[0]
                    low, high = up.min(axis=(1, 2), keepdims=True), up.max(axis=(1, 2), keepdims=True)
                    masks = (up - low) / (high - low + 1e-8)
                    masked = (x[i] * ctx.over_channels(masks)).astype(x.dtype)
                    scores[start : start + len(masks)] = ctx.for_samples([i] * len(masks)).score(
                        masked, on_chunk=bar.update)
                weights[i] = softmax(scores, axis=0)
        return np.einsum("nc,nchw->nhw", weights, acts)


class AblationCam(CamMethod):
    """Channel weights = relative drop of the target score when that channel is zeroed at the layer; only
    the cached subgraph from the layer to the output is re-run, batched over channels."""

    name = "ablationcam"
    requires = "forward"
    paper = "https://openaccess.thecvf.com/content_WACV_2020/html/Desai_Ablation-CAM_Visual_Explanations_for_Deep_Convolutional_Network_via_Gradient-free_Localization_WACV_2020_paper.html"

    def combine(self, ctx, x, acts, grads) -> np.ndarray:
        n, channels = acts.shape[:2]
        original = ctx.explained_scores(x)
        weights = np.empty((n, channels), np.float32)
        with ctx.progress(n * channels, "ablationcam") as bar:
            for i in range(n):
                ablated = np.repeat(acts[i : i + 1], channels, axis=0)
                ablated[np.arange(channels), np.arange(channels)] = 0
                rows = [i] * channels
                inputs = np.broadcast_to(x[i : i + 1], (channels, *x.shape[1:]))  # a view: no copies
                like = ctx.activations(x[i : i + 1]) if ctx.layer.tokens else None  # the prefix tokens
                back = ctx.layer.axes.from_channels_first(ablated, like)  # the layer's own layout
                scores = ctx.for_samples(rows).score_from(ctx.layer.name, back, inputs, on_chunk=bar.update)
                weights[i] = (original[i] - scores) / original[i]
        return np.einsum("nc,nchw->nhw", weights, acts)
