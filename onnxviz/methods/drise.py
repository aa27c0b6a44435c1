"""D-RISE: RISE for detectors. Each random mask is weighed by how well the masked image's best-matching detection
resembles the explained one: IoU of the boxes x cosine of the class scores x objectness.

Petsiuk et al. 2021, https://arxiv.org/abs/2006.03204
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..options import option
from .rise import Rise, RiseOptions


@dataclass(frozen=True)
class DriseOptions(RiseOptions):
    n_masks: int = option(2000, "number of random masks (the paper uses 5000)")
    grid: int = option(16, "masks are a grid x grid binary pattern, upsampled bilinearly with a random shift")


class Drise(Rise):
    """Detector RISE: sum of detection similarity x mask over random masks, divided by n_masks x p. Needs a det:,
    box: or class:K@all target; works on any detector onnxruntime runs, NMS inside the graph or not."""

    name = "drise"
    paper = "https://arxiv.org/abs/2006.03204"
    Options = DriseOptions

    def scores(self, ctx, masked: np.ndarray, on_chunk) -> np.ndarray:
        return ctx.similarity(masked, on_chunk=on_chunk)
