"""Detections drawn on a picture: the explained box(es) bright with their class and score, the model's other
detections faded, all given in the model input's pixels and scaled to the picture."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .overlay import outline

FADED = (0.75, 0.75, 0.75)


def _caption(picture: np.ndarray, text: str, x: int, y: int) -> None:
    scale = max(0.35, min(picture.shape[:2]) / 600)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x = int(np.clip(x, 0, max(0, picture.shape[1] - w)))
    y = int(np.clip(y, h + base, picture.shape[0] - 1))
    cv2.rectangle(picture, (x, y - h - base), (x + w, y + base // 2), (0.0, 0.0, 0.0), -1)
    ink = np.zeros(picture.shape[:2], np.uint8)  # OpenCV writes text on 8-bit images only
    cv2.putText(ink, text, (x, y - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1, cv2.LINE_AA)
    alpha = ink[..., None].astype(np.float32) / 255
    picture[:] = picture * (1 - alpha) + alpha


def _inside(box: Sequence[float], space: tuple[int, int]) -> list[float]:
    h, w = space
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    return [min(max(x0, 0), w), min(max(y0, 0), h), min(max(x1, 0), w), min(max(y1, 0), h)]


def draw_detections(picture: np.ndarray, space: tuple[int, int], detections: Sequence[Sequence[float]],
                    explained: Sequence[Sequence[float]], names: dict[str, str] | None = None) -> np.ndarray:
    """`detections` rows are x0, y0, x1, y1, label, score; `explained` the boxes the map explains; both in the
    (height, width) `space` of the model input."""
    names = names or {}
    drawn = np.ascontiguousarray(picture, np.float32).copy()
    chosen = [_inside(box, space) for box in explained]
    for row in detections:
        box = _inside(row, space)
        if box[2] > box[0] and box[3] > box[1] and not any(np.allclose(box, c, atol=0.5) for c in chosen):
            drawn = 0.6 * drawn + 0.4 * outline(drawn, box, space, FADED)
    sy, sx = drawn.shape[0] / space[0], drawn.shape[1] / space[1]
    for box in chosen:
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        drawn = outline(drawn, box, space)
        rows = [r for r in detections if np.allclose(_inside(r, space), box, atol=0.5)]
        if rows:
            row = rows[0]
            label = names.get(str(int(row[4])), str(int(row[4])))
            _caption(drawn, f"{label} {row[5]:.2f}", round(box[0] * sx), round(box[1] * sy) - 2)
    return drawn
