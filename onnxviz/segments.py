"""Groups of input values perturbed together: single values, K x K patches, superpixels (a small SLIC: k-means over
colour and position, Achanta et al. 2012, https://infoscience.epfl.ch/record/177415) or a label image's regions.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .errors import OptionError
from .layout import Layout
from .layout import layout as layout_of

GRANULARITY = "pixel (every input value), patch:K (K x K patches), superpixel:N, or mask:PATH (a label image)"


def check_granularity(spec: str, pixel: bool = True) -> None:
    """A ValueError naming the choices unless `spec` is one (`pixel` only where single values make sense)."""
    kind, _, size = spec.partition(":")
    if (kind == "pixel" and not size and pixel) or (kind == "mask" and size):
        return
    if kind not in ("patch", "superpixel") or not size.isdigit() or int(size) < 1:
        choices = GRANULARITY if pixel else GRANULARITY.replace("pixel (every input value), ", "")
        raise ValueError(f"granularity must be {choices}; not {spec!r}")


def group_labels(sample: np.ndarray, granularity: str, layout: Layout | str,
                 read: Callable[[str], np.ndarray] | None = None) -> np.ndarray:
    """An int label 0..K-1 per input value (same shape as one sample): which group it is perturbed with. `read`
    loads a label image (mask:PATH) as an HWC array; its distinct colours are the groups (resized nearest)."""
    kind, _, size = granularity.partition(":")
    if kind == "pixel":
        return np.arange(sample.size).reshape(sample.shape)
    layout = layout_of(layout)
    hwc = layout.to_channels_last(sample[None])[0]
    height, width = hwc.shape[:2]
    if kind == "patch":
        k = int(size)
        rows, cols = np.arange(height) // k, np.arange(width) // k
        plane = rows[:, None] * (cols.max() + 1) + cols[None, :]
    elif kind == "mask":
        if read is None:
            raise OptionError("a mask: granularity needs a way to read the label image")
        image = cv2.resize(np.ascontiguousarray(read(size), np.float32), (width, height),
                           interpolation=cv2.INTER_NEAREST)
        colours = image.reshape(height * width, -1).round(4)
        _, plane = np.unique(colours, axis=0, return_inverse=True)
        plane = plane.reshape(height, width)
    else:
        plane = superpixels(hwc, int(size))
    labels = np.broadcast_to(plane[..., None], hwc.shape)
    return np.ascontiguousarray(layout.from_channels_last(labels[None])[0])


def superpixels(image: np.ndarray, n_segments: int, compactness: float = 10.0, iterations: int = 6) -> np.ndarray:
    """(H, W) int labels 0..K-1 for an HWC float image; about `n_segments` regions on a regular grid start."""
    h, w = image.shape[:2]
    step = max(1.0, np.sqrt(h * w / max(1, n_segments)))
    ys, xs = np.mgrid[step / 2 : h : step, step / 2 : w : step]
    centers = np.column_stack([ys.ravel(), xs.ravel()])
    colors = image.reshape(-1, image.shape[-1]).astype(np.float64)
    scale = colors.std() or 1.0
    features = np.column_stack([np.indices((h, w)).reshape(2, -1).T * (compactness / 10.0 / step), colors / scale])
    centers = np.column_stack([centers * (compactness / 10.0 / step),
                               colors[centers[:, 0].astype(int) * w + centers[:, 1].astype(int)] / scale])
    for _ in range(iterations):
        labels = nearest(features, centers)
        counts = np.bincount(labels, minlength=len(centers))
        present = counts > 0
        for d in range(features.shape[1]):  # each centre moves to its members' mean (an empty one stays)
            centers[present, d] = np.bincount(labels, features[:, d], len(centers))[present] / counts[present]
    _, labels = np.unique(labels, return_inverse=True)  # drop empty clusters: labels are 0..K-1
    return labels.reshape(h, w)


def nearest(points: np.ndarray, centers: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Index of each point's nearest centre (squared Euclidean), in chunks of points to bound memory."""
    out = np.empty(len(points), np.intp)
    squared = (centers**2).sum(axis=1)
    for start in range(0, len(points), chunk):
        block = points[start : start + chunk]
        out[start : start + chunk] = np.argmin(squared[None] - 2 * block @ centers.T, axis=1)
    return out
