"""From attributions to 2-D maps, and their normalization (sign + outlier percentile)."""

from __future__ import annotations

import numpy as np

from ..layout import Layout
from ..layout import layout as layout_of


def to_maps(attributions: np.ndarray, kind: str, layout: Layout | str) -> np.ndarray:
    """(N, H, W) maps: pixel attributions are summed over channels (signed), maps pass through."""
    if kind == "map" or attributions.ndim == 3:
        return attributions.astype(np.float32)
    if attributions.ndim != 4:
        raise ValueError(f"cannot draw attributions of shape {attributions.shape} as images")
    return attributions.sum(axis=layout_of(layout).channel_axis).astype(np.float32)


def normalize_maps(maps: np.ndarray, signed: bool | None = None, percentile: float = 99.5) -> np.ndarray:
    """Per map: signed maps -> [-1, 1] by the percentile of |value|; unsigned -> [0, 1] from the minimum
    to the percentile. Values past the percentile are clipped (outliers otherwise wash out the picture)."""
    return normalize_with_scales(maps, signed, percentile)[0]


def normalize_with_scales(maps: np.ndarray, signed: bool | None = None, percentile: float = 99.5
                          ) -> tuple[np.ndarray, np.ndarray]:
    """normalize_maps, and per map the (low, high) values the ends of the colour scale stand for."""
    signed = bool((maps < 0).any() and (maps > 0).any()) if signed is None else signed
    out = np.empty_like(maps, dtype=np.float32)
    scales = np.zeros((len(maps), 2), np.float64)
    for i, m in enumerate(maps):
        if signed:
            top = np.percentile(np.abs(m), percentile)
            out[i] = np.clip(m / top, -1, 1) if top > 0 else 0.0
            scales[i] = (-top, top)
        else:
            low = m.min()
            top = np.percentile(m, percentile) - low
            out[i] = np.clip((m - low) / top, 0, 1) if top > 0 else 0.0
            scales[i] = (low, low + top)
    return out, scales
