"""Projections of single activations back to pixel space (Zeiler & Fergus 2014, https://arxiv.org/abs/1311.2901):
for each of a channel's strongest responses, the deconvnet (or guided backprop) reconstruction of that one unit
(the target `unit:LAYER:C:Y:X`) on its image, cropped to the same receptive field as its patch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..api import load_image
from ..errors import OptionError
from ..explainer import Explainer
from ..model import Model
from ..progress import bar as bar_of
from .patches import Hit, crop
from .receptive import Field

METHODS = ("deconvnet", "guided_backprop")


def as_picture(attribution: np.ndarray, layout: str) -> np.ndarray:
    """A model-layout attribution (C, H, W or H, W, C) as an RGB [0, 1] picture centred on grey: 0.5 + a / (2 max|a|)
    (one channel is shown grey)."""
    hwc = np.moveaxis(attribution, 0, -1) if layout == "NCHW" else attribution
    hwc = np.repeat(hwc, 3, axis=-1) if hwc.shape[-1] == 1 else hwc[..., :3]
    peak = float(np.abs(hwc).max())
    return (0.5 + hwc / (2 * peak) if peak > 0 else np.full_like(hwc, 0.5)).astype(np.float32)


def project(model: Model, hits: dict[int, list[Hit]], paths: list[Path], layer: str, rf: Field,
            method: str = "deconvnet", progress: bool = True) -> dict[int, list[np.ndarray]]:
    """{channel: the projection of each hit, in the order of the hits}."""
    if method not in METHODS:
        raise OptionError(f"unknown projection {method!r}; choose {', '.join(METHODS)}")
    explainer = Explainer(model, method, progress=False)
    total = sum(len(found) for found in hits.values())
    shown: dict[int, list[np.ndarray]] = {}
    with bar_of(total, method, "unit", progress) as bar:
        for channel, found in hits.items():
            for hit in found:
                x = load_image(paths[hit.image], model)
                ex = explainer.explain(x, f"unit:{layer}:{channel}:{hit.y}:{hit.x}")
                picture = as_picture(ex.attributions[0], model.input.layout)
                shown.setdefault(channel, []).append(picture if rf.whole else crop(picture, rf.box(hit.y, hit.x)))
                bar.update()
    return shown
