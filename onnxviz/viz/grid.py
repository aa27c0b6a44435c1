"""Side-by-side grids with a caption over each cell (several methods or images in one picture)."""

from __future__ import annotations

import cv2
import numpy as np

from ..io import resize

CAPTION = 22


def _caption(width: int, text: str) -> np.ndarray:
    strip = np.full((CAPTION, width, 3), 255, np.uint8)
    scale = 0.45
    while scale > 0.25 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > width - 6:
        scale -= 0.05
    cv2.putText(strip, text, (3, CAPTION - 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (25, 25, 25), 1, cv2.LINE_AA)
    return strip.astype(np.float32) / 255.0


def _fit(img: np.ndarray, cell: int, nearest: bool) -> np.ndarray:
    """The image scaled to fit a cell x cell square with its aspect ratio kept, centred on white."""
    h, w = img.shape[:2]
    th, tw = (cell, max(1, round(cell * w / h))) if h >= w else (max(1, round(cell * h / w)), cell)
    scaled = (cv2.resize(img, (tw, th), interpolation=cv2.INTER_NEAREST).reshape(th, tw, -1) if nearest
              else resize(img, th, tw))
    if (th, tw) == (cell, cell):
        return scaled
    tile = np.ones((cell, cell, scaled.shape[2]), np.float32)
    y, x = (cell - th) // 2, (cell - tw) // 2
    tile[y : y + th, x : x + tw] = scaled
    return tile


def grid(cells: list[list[np.ndarray]], captions: list[list[str]] | None = None, cell: int = 224,
         pad: int = 4, nearest: bool = False) -> np.ndarray:
    """Rows of RGB float images -> one RGB float picture; each cell resized to `cell` pixels square (`nearest`:
    blocky, for kernels and feature maps) and captioned with the matching entry of `captions` (when given)."""
    n_cols = max(len(row) for row in cells)
    height = cell + (CAPTION if captions else 0)
    canvas = np.ones((len(cells) * (height + pad) - pad, n_cols * (cell + pad) - pad, 3), np.float32)
    for r, row in enumerate(cells):
        for c, img in enumerate(row):
            tile = _fit(img.astype(np.float32), cell, nearest)
            if captions:
                tile = np.vstack([_caption(cell, captions[r][c]), tile])
            y, x = r * (height + pad), c * (cell + pad)
            canvas[y : y + height, x : x + cell] = tile
    return canvas
