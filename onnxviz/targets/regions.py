"""Regions of a segmentation output: boxes in output or photo pixels, masks fixed on the clean prediction."""

from __future__ import annotations

import numpy as np

from ..errors import TargetError
from ..io import read_image, resize


def _box(value: str, kind: str) -> tuple[int, int, int, int]:
    try:
        x0, y0, x1, y1 = (int(v) for v in value.split(","))
    except ValueError:
        raise TargetError(f"bad box {value!r}: use {kind}:x0,y0,x1,y1 (integers)") from None
    return x0, y0, x1, y1


def photo_to_output(box: tuple[int, int, int, int], photo: tuple[int, int], output: tuple[int, int]
                    ) -> tuple[int, int, int, int]:
    """A box in the pixels of a (height, width) photo -> the output's (height, width) pixels: the photo is stretched
    to the model's input, and the output covers the input; edges round outward so the box never shrinks away."""
    x0, y0, x1, y1 = box
    ph, pw = photo
    if not (0 <= x0 < x1 <= pw and 0 <= y0 < y1 <= ph):
        raise TargetError(f"photo box {x0},{y0},{x1},{y1} does not fit the {pw}x{ph} photo")
    sy, sx = output[0] / ph, output[1] / pw
    return (int(np.floor(x0 * sx)), int(np.floor(y0 * sy)), min(output[1], int(np.ceil(x1 * sx))),
            min(output[0], int(np.ceil(y1 * sy))))


def region_boxes(region: str | None, n: int, output: tuple[int, int],
                 photos: list[tuple[int, int]] | None) -> list[tuple[int, int, int, int]] | None:
    """Per image, the region's box in output pixels (box: and photo: regions), or None for other regions."""
    if region is None or not region.startswith(("box:", "photo:")):
        return None
    kind, _, value = region.partition(":")
    box = _box(value, kind)
    if kind == "photo":
        return [photo_to_output(box, photo, output) for photo in (photos or [output] * n)]
    h, w = output
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        hint = (" (if these are pixels of the original image, write photo:"
                f"{value})" if photos and any(p != output for p in photos) else "")
        raise TargetError(f"box {value} does not fit the {w}x{h} output{hint}")
    return [box] * n


def region_masks(region: str | None, clean: np.ndarray, targets: np.ndarray,
                 photos: list[tuple[int, int]] | None = None, threshold: float = 0.0) -> np.ndarray | None:
    """(N, H, W) float masks over a segmentation output's pixels, fixed once on the clean prediction. `photos`:
    the (height, width) each image had before it was resized, for photo: regions. A one-channel map (a text or
    foreground detector) predicts the pixels above `threshold` (0.5 after a Sigmoid, else 0)."""
    if region is None:
        return None
    if clean.ndim != 4:
        raise TargetError(f"a region target needs a segmentation output (N, classes, H, W), not {clean.shape}")
    n, _, h, w = clean.shape
    if region == "predicted":
        predicted = clean[:, 0] > threshold if clean.shape[1] == 1 else clean.argmax(axis=1) == targets[:, None, None]
        masks = predicted.astype(np.float32)
        if not masks.reshape(n, -1).any(axis=1).all():
            raise TargetError("no pixel is predicted as the target class in some image; pick a box or a mask")
        return masks
    boxes = region_boxes(region, n, (h, w), photos)
    if boxes is not None:
        masks = np.zeros((n, h, w), np.float32)
        for mask, (x0, y0, x1, y1) in zip(masks, boxes, strict=True):
            mask[y0:y1, x0:x1] = 1
        return masks
    mask = resize(read_image(region.partition(":")[2]).mean(axis=2), h, w)
    return np.broadcast_to((mask > 0.5).astype(np.float32), (n, h, w)).copy()
