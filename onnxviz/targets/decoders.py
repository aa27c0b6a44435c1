"""Reading detector outputs: which tensors hold boxes and scores, and how (YOLOv8 / v11 `(N, 4 + C, A)`, YOLOv5 / v7
and decoded YOLOX `(N, A, 5 + C)`, raw YOLOX grids, SSD-style separate boxes and scores, and graphs that already ran
NMS). Recognised from the output shapes, or named by the user (`--boxes` / `Target(decoder=...)`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import TargetError
from ..tensor_layout import detector_count
from .boxes import corners

Tensor = Any  # a numpy array or a torch tensor
MIN_ANCHORS = 64  # a raw head has many candidate boxes per image (YOLO at 640 px: 8400)
STRIDES = (8, 16, 32)  # anchor-free YOLO grids


@dataclass(frozen=True)
class Candidates:
    """A batch's candidate detections, decoded: (N, A, 4) corner boxes in input pixels, (N, A) confidence (the
    detection's score: objectness x class probability where the head has an objectness), (N, A) labels, and for raw
    heads the (N, A, C) per-class confidences and the (N, A) objectness (the max class score where there is none)."""

    boxes: np.ndarray
    confidence: np.ndarray
    labels: np.ndarray
    class_scores: np.ndarray | None = None
    objectness: np.ndarray | None = None


def _gather(out: Tensor, *index: np.ndarray) -> Tensor:
    if isinstance(out, np.ndarray):
        return out[index]
    import torch

    return out[tuple(torch.as_tensor(i, device=out.device) for i in index)]


class Decoder:
    """How to read one detector's outputs. `tensors` are the names it reads; raw heads (`final` False) also give
    the differentiable pre-NMS score of one candidate and class."""

    name: ClassVar[str]
    final: ClassVar[bool] = False

    def __init__(self, tensors: Sequence[str], image: tuple[int, int]):
        self.tensors, self.image = tuple(tensors), image

    def decode(self, outs: Sequence[np.ndarray]) -> Candidates:
        raise NotImplementedError

    def score(self, outs: Sequence[Tensor], rows: np.ndarray, anchors: np.ndarray, classes: np.ndarray) -> Tensor:
        raise NotImplementedError

    def classes(self, outs: Sequence[np.ndarray]) -> int | None:
        """How many classes the detector scores (None when only final labels are seen)."""
        return None

    def class_scores(self, outs: Sequence[Tensor]) -> Tensor:
        """(N, A, C) per-class confidence of every candidate, differentiable (raw heads only)."""
        raise TargetError(f"the {self.name} outputs hold final detections, not per-class scores of candidates: name "
                          "the tensors before the selection with --boxes (e.g. --boxes yolov8:TENSOR)")

    def __repr__(self) -> str:
        return f"{self.name}:{','.join(self.tensors)}"


def _heads(scores: np.ndarray, objectness: np.ndarray | None, boxes: np.ndarray) -> Candidates:
    confidence = scores if objectness is None else scores * objectness[..., None]
    labels = confidence.argmax(axis=-1)
    best = np.take_along_axis(confidence, labels[..., None], axis=-1)[..., 0]
    shown = scores.max(axis=-1) if objectness is None else objectness
    return Candidates(boxes, best, labels, confidence, shown)


class YoloV8(Decoder):
    """(N, 4 + C, A): centre, size and C class scores per candidate, no objectness (ultralytics v8 / v11 exports)."""

    name = "yolov8"

    def decode(self, outs: Sequence[np.ndarray]) -> Candidates:
        out = outs[0].astype(np.float64)
        return _heads(out[:, 4:].transpose(0, 2, 1), None, corners(out[:, :4].transpose(0, 2, 1)))

    def score(self, outs: Sequence[Tensor], rows: np.ndarray, anchors: np.ndarray, classes: np.ndarray) -> Tensor:
        return _gather(outs[0], rows, 4 + classes, anchors)

    def class_scores(self, outs: Sequence[Tensor]) -> Tensor:
        scores = outs[0][:, 4:]
        return scores.transpose(0, 2, 1) if isinstance(scores, np.ndarray) else scores.permute(0, 2, 1)

    def classes(self, outs: Sequence[np.ndarray]) -> int | None:
        return int(outs[0].shape[1]) - 4


class YoloV5(Decoder):
    """(N, A, 5 + C): centre, size, objectness and C class probabilities per candidate (YOLOv5 / v7, YOLOX decoded
    in the graph); a detection's score is objectness x class probability."""

    name = "yolov5"

    def boxes(self, out: np.ndarray) -> np.ndarray:
        return corners(out[..., :4])

    def decode(self, outs: Sequence[np.ndarray]) -> Candidates:
        out = outs[0].astype(np.float64)
        return _heads(out[..., 5:], out[..., 4], self.boxes(out))

    def score(self, outs: Sequence[Tensor], rows: np.ndarray, anchors: np.ndarray, classes: np.ndarray) -> Tensor:
        objectness = _gather(outs[0], rows, anchors, np.full_like(classes, 4))
        return objectness * _gather(outs[0], rows, anchors, 5 + classes)

    def class_scores(self, outs: Sequence[Tensor]) -> Tensor:
        return outs[0][..., 4:5] * outs[0][..., 5:]

    def classes(self, outs: Sequence[np.ndarray]) -> int | None:
        return int(outs[0].shape[2]) - 5


class YoloX(YoloV5):
    """(N, A, 5 + C) of YOLOX exported without its decoding: per grid cell of strides 8, 16 and 32 (row-major, finest
    first) a centre offset in cells and a log size; objectness and class scores as YOLOv5."""

    name = "yolox"

    def boxes(self, out: np.ndarray) -> np.ndarray:
        grids, strides = yolox_grid(self.image)
        centre = (out[..., :2] + grids) * strides
        size = np.exp(np.clip(out[..., 2:4], None, 30)) * strides
        return corners(np.concatenate([centre, size], axis=-1))


def yolox_grid(image: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(A, 2) cell x, y and (A, 1) strides of an anchor-free YOLO grid over an image of (height, width)."""
    cells, strides = [], []
    for s in STRIDES:
        h, w = image[0] // s, image[1] // s
        ys, xs = np.mgrid[:h, :w]
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((h * w, 1), s))
    return np.concatenate(cells).astype(np.float64), np.concatenate(strides).astype(np.float64)


class BoxesScores(Decoder):
    """Two tensors, (N, A, 4) corner boxes (in pixels, or in [0, 1] of the image) and (N, A, C) class scores:
    SSD / RetinaNet heads exported before their NMS."""

    name = "boxes_scores"

    def decode(self, outs: Sequence[np.ndarray]) -> Candidates:
        boxes, scores = outs[0].astype(np.float64), outs[1].astype(np.float64)
        if np.abs(boxes).max(initial=0) <= 1.5:  # normalized coordinates
            boxes = boxes * np.array([self.image[1], self.image[0]] * 2)
        return _heads(scores, None, boxes)

    def score(self, outs: Sequence[Tensor], rows: np.ndarray, anchors: np.ndarray, classes: np.ndarray) -> Tensor:
        return _gather(outs[1], rows, anchors, classes)

    def class_scores(self, outs: Sequence[Tensor]) -> Tensor:
        return outs[1]

    def classes(self, outs: Sequence[np.ndarray]) -> int | None:
        return int(outs[1].shape[2])


class Final(Decoder):
    """Detections after NMS inside the graph: boxes (K, 4) or (N, K, 4), labels and scores (torchvision exports), or
    one (N, K, 6) tensor of x0, y0, x1, y1, score, label (end-to-end YOLO). Gradients stop at the selection."""

    name = "nms"
    final = True

    def decode(self, outs: Sequence[np.ndarray]) -> Candidates:
        if len(outs) == 1:
            packed = outs[0].astype(np.float64)
            return Candidates(packed[..., :4], packed[..., 4], packed[..., 5].round().astype(np.int64))
        boxes, labels, scores = outs
        batched = boxes.ndim == 3
        return Candidates((boxes if batched else boxes[None]).astype(np.float64),
                          (scores if batched else scores[None]).astype(np.float64),
                          (labels if batched else labels[None]).astype(np.int64))


DECODERS: dict[str, type[Decoder]] = {d.name: d for d in (YoloV8, YoloV5, YoloX, BoxesScores, Final)}


def describe(shapes: dict[str, tuple]) -> str:
    return ", ".join(f"{name} {list(shape)}" for name, shape in shapes.items())


def recognise(outputs: dict[str, np.ndarray], image: tuple[int, int], named: str | None = None,
              only: str | None = None) -> Decoder:
    """The decoder for a detector's `outputs` (name -> the clean batch's values): `named` ("yolov8" or
    "yolov8:TENSOR,..."), else read off the shapes (of output `only` when given); a TargetError listing the shapes
    seen when nothing fits."""
    shapes = {k: tuple(v.shape) for k, v in outputs.items()}
    if named:
        kind, _, listed = named.partition(":")
        if kind not in DECODERS:
            raise TargetError(f"unknown detection decoder {kind!r}; choose {', '.join(DECODERS)}, optionally with the "
                              "tensors it reads: yolov8:OUTPUT or boxes_scores:BOXES,SCORES")
        names = [n for n in listed.split(",") if n] or list(outputs)
        wanted = {"boxes_scores": 2, "nms": (1, 3)}.get(kind, 1)
        if len(names) not in (wanted if isinstance(wanted, tuple) else (wanted,)):
            raise TargetError(f"decoder {kind} reads {wanted} tensor(s); name them: {kind}:NAME[,NAME...] (outputs: "
                              f"{describe(shapes)})")
        return DECODERS[kind](names, image)
    pool = {only: outputs[only]} if only else outputs
    found = _by_shape(pool, image)
    if found is None:
        raise TargetError(f"no detector output recognised among {describe({k: shapes[k] for k in pool})}: a detection "
                          "target needs a raw head (N, 4 + C, A) or (N, A, 5 + C), separate boxes (N, A, 4) and scores "
                          "(N, A, C), or boxes / labels / scores after NMS. Name how to read yours with --boxes "
                          f"({', '.join(DECODERS)}, e.g. --boxes yolov8:OUTPUT; Python: Target(..., decoder=...))")
    return found


def _labels(column: np.ndarray) -> bool:
    """Whether a column holds class labels (whole numbers from 0), not class probabilities."""
    return bool(np.isfinite(column).all() and (column >= 0).all() and (column == np.round(column)).all())


def _by_shape(outputs: dict[str, np.ndarray], image: tuple[int, int]) -> Decoder | None:
    floats = {k: v for k, v in outputs.items() if np.issubdtype(v.dtype, np.floating)}
    for name, value in floats.items():
        if value.ndim != 3:
            continue
        _, a, b = value.shape
        if b >= MIN_ANCHORS and 5 <= a < b:
            return YoloV8([name], image)
        if b in (6, 7) and not detector_count(a, image) and _labels(value[..., 5]):
            return Final([name], image)  # x0, y0, x1, y1, score, label rows (end-to-end YOLO: 300 of them)
        if a >= MIN_ANCHORS and 5 <= b < a:
            raw = a == len(yolox_grid(image)[0]) and np.abs(value[..., :2]).max(initial=0) < 0.1 * max(image)
            return (YoloX if raw else YoloV5)([name], image)
    boxes = [k for k, v in floats.items() if v.ndim in (2, 3) and v.shape[-1] == 4]
    for name in boxes:
        count = outputs[name].shape[-2]
        scores = [k for k, v in floats.items() if k != name and v.ndim == outputs[name].ndim and v.shape[-2] == count]
        if scores and outputs[name].ndim == 3 and count >= MIN_ANCHORS:
            return BoxesScores([name, scores[0]], image)
        rows = [k for k, v in outputs.items() if k != name and v.shape == outputs[name].shape[:-1]]
        labels = [k for k in rows if np.issubdtype(outputs[k].dtype, np.integer)]
        scored = [k for k in rows if k in floats]
        if labels and scored:
            return Final([name, labels[0], scored[0]], image)
    return None
