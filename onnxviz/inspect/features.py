"""Feature maps of one image at a layer: every channel, or the top-k by mean activation, as a grid."""

from __future__ import annotations

import numpy as np

from ..layers import map_layout
from ..model import Model
from ..viz.grid import grid
from ..viz.overlay import colorize, overlay
from .kernels import scale_to_unit


def channels_first(model: Model, layer: str, acts: np.ndarray) -> np.ndarray:
    """A layer's feature map or token grid as (N, C, H, W) whatever its layout."""
    return map_layout(model.layer(layer), acts.shape).to_channels_first(acts)


def feature_maps(model: Model, x: np.ndarray, layer: str | None = None, top: int | None = None) -> dict:
    """{"layer", "channels" (indices shown), "means", "maps" (k, H, W)} for the first image of batch `x`."""
    name = model.layer(layer).name
    (acts,) = model.ort.run(x[:1], (name,))
    maps = channels_first(model, name, acts)[0]
    means = maps.reshape(len(maps), -1).mean(axis=1)
    order = np.argsort(-means, kind="stable")[:top] if top else np.arange(len(maps))
    return {"layer": name, "channels": order, "means": means[order], "maps": maps[order]}


def feature_grid(found: dict, image: np.ndarray | None = None, cell: int = 96, columns: int = 8) -> np.ndarray:
    """Each map min-max scaled on its own (turbo colours), or blended on `image` when given."""
    tiles, captions = [], []
    for c, mean, fmap in zip(found["channels"], found["means"], found["maps"], strict=True):
        norm = scale_to_unit(fmap.astype(np.float32))
        tiles.append(overlay(image, norm, signed=False) if image is not None else colorize(norm, signed=False))
        captions.append(f"ch {int(c)}  mean {float(mean):.3g}")
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    caps = [captions[i : i + columns] for i in range(0, len(captions), columns)]
    return grid(rows, caps, cell=cell, pad=2, nearest=image is None)
