"""Does the map point at the object? Against a ground truth (a box or a mask per image): the pointing game (Zhang
et al. 2018, https://arxiv.org/abs/1608.00507: the map's maximum lies inside), relevance mass accuracy (the share of
|map| inside) and relevance rank accuracy (the share of the top-k pixels inside, k = the object's size; Arras et
al. 2022, https://arxiv.org/abs/2003.07258), as Quantus computes them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import OptionError

GroundTruth = str | np.ndarray


def ground_truth_masks(spec: GroundTruth, count: int, height: int, width: int,
                       read: Callable[[str], np.ndarray]) -> np.ndarray:
    """(count, height, width) booleans from a box "x0,y0,x1,y1" (input pixels, end exclusive), a mask image or
    `.npy` file (non-zero inside), or an array of one mask or one per image; refused when the size is wrong."""
    if isinstance(spec, str) and spec.count(",") == 3 and not Path(spec).exists():
        try:
            x0, y0, x1, y1 = (round(float(v)) for v in spec.split(","))
        except ValueError:
            raise OptionError(f"ground truth {spec!r}: a box is four numbers x0,y0,x1,y1") from None
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise OptionError(f"ground-truth box {spec} must lie inside the {width} x {height} input with x0 < x1 and "
                              "y0 < y1")
        mask = np.zeros((height, width), bool)
        mask[y0:y1, x0:x1] = True
        return np.broadcast_to(mask, (count, height, width))
    if isinstance(spec, str):
        if not Path(spec).is_file():
            raise OptionError(f"ground truth {spec!r} is neither a box x0,y0,x1,y1 nor a mask file")
        spec = np.load(spec, allow_pickle=False) if spec.endswith(".npy") else read(spec)
    masks = np.asarray(spec)
    if masks.ndim == 3 and masks.shape[-1] in (1, 3, 4) and masks.shape[:2] == (height, width):
        masks = masks.max(axis=-1)  # an image file's channels
    if masks.ndim == 2:
        masks = masks[None]
    if masks.shape[1:] != (height, width) or len(masks) not in (1, count):
        raise OptionError(f"a ground-truth mask of shape {list(masks.shape)} does not fit {count} image(s) of "
                          f"{height} x {width} (the model's input): give one {height} x {width} mask, one per "
                          "image, or a box x0,y0,x1,y1")
    masks = np.broadcast_to(masks != 0, (count, height, width))
    if not masks.reshape(count, -1).any(axis=1).all():
        raise OptionError("a ground-truth mask is empty: nothing to point at")
    return masks


def pointing_game(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """1 where a maximum of the map lies inside the ground truth, per image."""
    flat, inside = maps.reshape(len(maps), -1), masks.reshape(len(masks), -1)
    top = flat == flat.max(axis=1, keepdims=True)
    return (top & inside).any(axis=1).astype(np.float64)


def relevance_mass(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of the map's total inside the ground truth, per image (maps taken as given: pass |map|)."""
    flat, inside = maps.reshape(len(maps), -1).astype(np.float64), masks.reshape(len(masks), -1)
    total = flat.sum(axis=1)
    return np.divide((flat * inside).sum(axis=1), total, out=np.zeros_like(total), where=total != 0)


def relevance_rank(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of the k highest pixels that lie inside the ground truth, k = its size, per image."""
    out = np.empty(len(maps))
    for i, (m, s) in enumerate(zip(maps.reshape(len(maps), -1), masks.reshape(len(masks), -1), strict=True)):
        k = int(s.sum())
        top = np.argsort(m, kind="stable")[-k:]
        out[i] = s[top].sum() / k
    return out
