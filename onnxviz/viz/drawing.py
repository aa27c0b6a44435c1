"""Drawing an Explanation: its inputs as pictures, its maps normalized, overlays and the side-by-side sheet. The
batch-wide steps (inverting the preprocessing, normalizing the maps) run once per explanation, not per picture."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..preprocess import Preprocessing
from .colorbar import with_colorbar
from .detections import draw_detections
from .grid import grid
from .maps import normalize_with_scales, to_maps
from .overlay import outline, overlay

# an onnxviz.Explanation; not imported, because the Explanation draws itself through this module (no cycle)
Explanation = Any


def maps(ex: Explanation) -> np.ndarray:
    """(N, H, W) maps: pixel attributions summed over channels."""
    return to_maps(ex.attributions, ex.kind, ex.preprocessing.get("layout", "NCHW"))


def is_signed(ex: Explanation, m: np.ndarray) -> bool:
    """Drawn with a diverging colormap: values of both signs, unless the method asked for min..max."""
    return ex.extras.get("display") != "unsigned" and bool((m < 0).any() and (m > 0).any())


def shown(ex: Explanation, m: np.ndarray) -> np.ndarray:
    """What is drawn of the maps: their magnitude for methods displayed as "absolute" (integrated gradients,
    input x gradient, guided backprop: signs that alternate pixel by pixel read as noise, as in Captum's
    visualize_image_attr default), else the maps themselves."""
    m = np.abs(m) if ex.extras.get("display") == "absolute" else m
    sigma = float(ex.extras.get("smooth") or 0)
    if sigma > 0:  # a Gaussian blur of each map, sigma in input pixels (noisy gradients read as regions)
        m = np.stack([cv2.GaussianBlur(np.ascontiguousarray(a, np.float32), (0, 0), sigma) for a in m])
    return m


MIN_SIDE = 256  # per-image pictures are at least this tall and wide (a 32 x 32 input is drawn 8 times larger)


def images(ex: Explanation) -> np.ndarray:
    """The inputs as RGB float images in [0, 1] (preprocessing inverted)."""
    pre: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in ex.preprocessing.items()}
    return Preprocessing(**pre).invert(ex.inputs)


def overlays(ex: Explanation, alpha: float = 0.5, percentile: float = 99.5,
             rows: list[int] | None = None) -> list[np.ndarray]:
    """Each sample's heatmap (all, or `rows`) blended on its image (RGB float HWC in [0, 1]), with the explained
    region's box drawn when the target was a box: or photo: region, and a detection target's box (the other
    detections faded)."""
    pictures, normalized, signed = ex.drawn(percentile)
    boxes, space = ex.extras.get("region_boxes"), ex.extras.get("region_space")
    found, explained = ex.extras.get("detections"), ex.extras.get("explained_boxes")
    out = []
    for i in range(len(ex)) if rows is None else rows:
        picture = overlay(pictures[i], normalized[i], signed, alpha)
        if found is not None and explained is not None:  # a detection target: its box, the others faded
            picture = draw_detections(picture, tuple(pictures[i].shape[:2]), found[i], explained[i],
                                      ex.extras.get("class_names"))
        out.append(outline(picture, boxes[i], tuple(space)) if boxes and space else picture)
    return out


def figure(ex: Explanation, i: int, alpha: float = 0.5, percentile: float = 99.5) -> np.ndarray:
    """Sample i's overlay as a picture a person reads: at least MIN_SIDE pixels (small inputs scaled up without
    blurring), with its colour bar and the values its ends stand for."""
    (picture,) = overlays(ex, alpha, percentile, rows=[i])
    h, w = picture.shape[:2]
    factor = max(1, -(-MIN_SIDE // min(h, w)))
    if factor > 1:
        picture = np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)
    low, high = ex.scales(percentile)[i]
    return with_colorbar(picture, ex.drawn(percentile)[2], float(low), float(high))


def sheet(ex: Explanation) -> np.ndarray:
    """Each input beside its overlay, one row per sample, captioned."""
    pictures, drawn = ex.drawn()[0], overlays(ex)
    cells = [[pictures[i], drawn[i]] for i in range(len(ex))]
    captions = [[f"input: predicted {int(ex.predictions[i])}", ex.label(i)] for i in range(len(ex))]
    return grid(cells, captions)


def normalized(m: np.ndarray, signed: bool, percentile: float) -> tuple[np.ndarray, np.ndarray]:
    """The maps scaled for colouring, and per map the values the colour scale's ends stand for."""
    return normalize_with_scales(m, signed, percentile)
