"""Box geometry for detection targets: corner form, intersection over union, greedy per-class NMS (numpy)."""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.25  # a detection is reported above this score (YOLOv5 / ultralytics' default)
OVERLAP = 0.45  # NMS drops a box of the same class overlapping a better one by more than this IoU (YOLOv5's default)


def corners(cxcywh: np.ndarray) -> np.ndarray:
    """(..., 4) centre x, centre y, width, height -> x0, y0, x1, y1."""
    c, half = cxcywh[..., :2], cxcywh[..., 2:4] / 2
    return np.concatenate([c - half, c + half], axis=-1)


def iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """IoU of each of (..., 4) corner boxes with one (4,) box; 0 where either is empty."""
    x0, y0 = np.maximum(boxes[..., 0], box[0]), np.maximum(boxes[..., 1], box[1])
    x1, y1 = np.minimum(boxes[..., 2], box[2]), np.minimum(boxes[..., 3], box[3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)
    union = area + max(0.0, float(box[2] - box[0])) * max(0.0, float(box[3] - box[1])) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, confidence: float = CONFIDENCE,
        overlap: float = OVERLAP) -> np.ndarray:
    """Indices of the kept boxes, best first: score above `confidence`, and no better box of the same class
    overlapping by more than `overlap`."""
    order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > confidence]
    kept: list[int] = []
    for i in order:
        same = [k for k in kept if classes[k] == classes[i]]
        if not same or iou(boxes[same], boxes[i]).max() <= overlap:
            kept.append(i)
    return np.asarray(kept, dtype=np.int64)
