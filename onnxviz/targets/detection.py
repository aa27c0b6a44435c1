"""Detection targets: `det:K` (the K-th detection of the clean image), `box:x0,y0,x1,y1[@CLASS]` (the candidate that
best matches the box: IoU x class score, the D-RISE similarity) and `class:K@all` (every detection of class K).
Resolved once on the clean image into a `DetectionScore`: on a raw head, the pre-NMS score of the chosen candidates
(differentiable); after an NMS inside the graph, the score of the detection that best matches the chosen one."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import TargetError
from .base import Model, Resolved, TargetKind
from .boxes import CONFIDENCE, iou, nms
from .decoders import Candidates, Decoder, Tensor, recognise
from .scores import Score
from .spec import Target

MATCH = 0.1  # a box target needs a candidate overlapping it by at least this IoU


@dataclass(frozen=True, eq=False)
class DetectionScore(Score):
    """Per row: the confidence of candidate `anchors[r]` for class `classes[r]` (raw heads), the sum over the
    candidates `selected[r]` (class:K@all), or, after an NMS in the graph, the best match to `boxes[r]`."""

    decoder: Decoder
    classes: np.ndarray
    boxes: np.ndarray  # (N, 4) the explained detection's box, in input pixels
    anchors: np.ndarray | None = None
    selected: np.ndarray | None = None  # (N, A) bool
    threshold: float = CONFIDENCE

    def __call__(self, outputs: Sequence[Tensor], rows: np.ndarray) -> Tensor:
        n = np.arange(len(rows))
        if self.decoder.final:
            found = self.decoder.decode([np.asarray(o) for o in outputs])
            threshold = self.threshold if self.selected is not None else None
            return np.array([_best_match(found, int(i), self.boxes[r], self.classes[r], threshold)
                             for i, r in zip(n, rows, strict=True)])
        if self.selected is None:
            anchors = self.anchors if self.anchors is not None else np.zeros(len(self.classes), np.int64)
            return self.decoder.score(outputs, n, anchors[rows], self.classes[rows])
        which, anchors = np.nonzero(self.selected[rows])
        values = self.decoder.score(outputs, which, anchors, self.classes[rows][which])
        segments = (which[None, :] == n[:, None]).astype(np.float32)  # (N, K): each candidate's row
        if isinstance(values, np.ndarray):
            return segments @ values
        import torch

        return torch.as_tensor(segments, dtype=values.dtype, device=values.device) @ values

    def rows(self, rows: np.ndarray) -> DetectionScore:
        pick = None if self.anchors is None else self.anchors[rows]
        chosen = None if self.selected is None else self.selected[rows]
        return DetectionScore(self.tensors, self.decoder, self.classes[rows], self.boxes[rows], pick, chosen,
                              self.threshold)

    def gradient_problem(self) -> str | None:
        if self.decoder.final:
            return ("the graph runs NMS before its outputs: the selection has no gradient. Use a black-box method "
                    "(occlusion, rise, drise) or --gradient estimate, or name the tensors before the NMS with "
                    "--boxes (e.g. --boxes yolov8:TENSOR)")
        return None

    def similarity(self, outputs: Sequence[np.ndarray], rows: np.ndarray) -> np.ndarray:
        """D-RISE's similarity per row: max over candidates of IoU(box, target box) x cosine(class scores, the
        target class) x objectness (after an NMS: IoU x [same label] x score)."""
        found = self.decoder.decode(outputs)
        out = np.zeros(len(rows))
        for i, r in enumerate(rows):
            overlap = iou(found.boxes[i], self.boxes[r])
            if found.class_scores is None:
                out[i] = float((overlap * (found.labels[i] == self.classes[r]) * found.confidence[i]).max(initial=0))
                continue
            scores = found.class_scores[i]
            norms = np.linalg.norm(scores, axis=1)
            cosine = scores[:, self.classes[r]] / np.where(norms > 0, norms, 1)
            objectness = found.objectness[i] if found.objectness is not None else scores.max(axis=1)
            out[i] = float((overlap * cosine * objectness).max(initial=0))
        return out.astype(np.float32)


def _best_match(found: Candidates, i: int, box: np.ndarray, label: int, all_above: float | None = None) -> float:
    """The best IoU x score of a row of the same label; with `all_above`, the sum of that label's scores above it."""
    same = found.labels[i] == label
    if all_above is not None:
        return float((found.confidence[i] * same * (found.confidence[i] > all_above)).sum())
    return float((iou(found.boxes[i], box) * same * found.confidence[i]).max(initial=0))


def class_names(metadata: dict[str, str]) -> dict[int, str]:
    """Class names from the model's metadata (`names`, as ultralytics writes it: "{0: 'person', ...}"), or {}."""
    raw = metadata.get("names", "")
    if not raw or len(raw) > 200_000:
        return {}
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return {}
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not all(isinstance(k, int) and isinstance(v, str) for k, v in names.items()):
        return {}
    return {k: v[:60] for k, v in names.items()}


@dataclass(frozen=True)
class Detections:
    """Everything a detection target needs of the clean batch: the decoder, the candidates, the detections kept per
    image (candidate indices, best first) and the class names."""

    decoder: Decoder
    found: Candidates
    kept: list[np.ndarray]
    names: dict[int, str]
    classes: int | None
    threshold: float = CONFIDENCE

    def name(self, label: int) -> str:
        return f"{label} ({self.names[label]})" if label in self.names else str(label)

    def text(self, i: int, k: int) -> str:
        box = ",".join(f"{v:.0f}" for v in self.found.boxes[i, k])
        return f"class {self.name(int(self.found.labels[i, k]))} {self.found.confidence[i, k]:.2f} at {box}"

    def listing(self, i: int, limit: int = 8) -> str:
        if not len(self.kept[i]):
            return f"none above confidence {self.threshold:g}"
        shown = "; ".join(f"det:{j} {self.text(i, int(k))}" for j, k in enumerate(self.kept[i][:limit]))
        return shown + (f"; ... {len(self.kept[i]) - limit} more" if len(self.kept[i]) > limit else "")

    def rows(self, i: int, limit: int = 50) -> list[list[float]]:
        """The kept detections of image i as [x0, y0, x1, y1, label, score] (for drawing and the record)."""
        f = self.found
        return [[*map(float, f.boxes[i, k]), int(f.labels[i, k]), float(f.confidence[i, k])]
                for k in self.kept[i][:limit]]


def detections(model: Any, target: Target, x: np.ndarray, batch_size: int) -> tuple[Detections, list[np.ndarray]]:
    """Run the clean batch, recognise the detector's outputs and keep its detections (NMS on raw heads)."""
    names = tuple(model.outputs)
    if not model.batched_outputs:  # one image's detections, no batch axis: image by image, padded
        return _per_image(model, target, x)
    outs = dict(zip(names, model.run(x, names, batch_size), strict=True))
    decoder = recognise(outs, model.input_size, target.decoder, target.output)
    if not set(decoder.tensors) <= set(outs):  # pre-NMS tensors inside the graph
        extra = tuple(decoder.tensors)
        outs.update(zip(extra, model.run(x, extra, batch_size), strict=True))
    values = [outs[t] for t in decoder.tensors]
    return _kept(model, target, decoder, decoder.decode(values), values), values


def _per_image(model: Model, target: Target, x: np.ndarray) -> tuple[Detections, list[np.ndarray]]:
    names = tuple(model.outputs)
    runs = [dict(zip(names, model.ort.run(x[i : i + 1], names), strict=True)) for i in range(len(x))]
    decoder = recognise(runs[0], model.input_size, target.decoder, target.output)
    if not decoder.final:
        raise TargetError(f"{decoder.name} outputs without a batch axis: only detections after an NMS are read "
                          "image by image")
    parts = [decoder.decode([run[t] for t in decoder.tensors]) for run in runs]
    width = max(p.boxes.shape[1] for p in parts)

    def padded(key: str, fill: float) -> np.ndarray:
        arrays = [getattr(p, key) for p in parts]
        return np.concatenate([np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2),
                                      constant_values=fill) for a in arrays])

    found = Candidates(padded("boxes", 0.0), padded("confidence", 0.0), padded("labels", -1))
    values = [run[t] for run in runs for t in decoder.tensors]  # image after image
    return _kept(model, target, decoder, found, values), values


def _kept(model: Model, target: Target, decoder: Decoder, found: Candidates, values: list[np.ndarray]) -> Detections:
    """The detections kept per image: above the confidence, after NMS on raw heads, best first."""
    threshold = CONFIDENCE if target.confidence is None else target.confidence
    kept = []
    for i in range(len(found.boxes)):
        if decoder.final:
            order = np.argsort(-found.confidence[i], kind="stable")
            kept.append(order[found.confidence[i][order] > threshold])
        else:
            kept.append(nms(found.boxes[i], found.confidence[i], found.labels[i], threshold))
    named = class_names(model.metadata)
    return Detections(decoder, found, kept, named, decoder.classes(values), threshold)


def parse_box(value: str, image: tuple[int, int]) -> tuple[np.ndarray, int | None]:
    box_text, _, label = value.partition("@")
    box = np.array([float(v) for v in box_text.split(",")])
    h, w = image
    if not (0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h):
        raise TargetError(f"box {box_text} does not fit the {w}x{h} model input: use box:x0,y0,x1,y1 with "
                          f"0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h} (the input's pixels)")
    return box, int(label) if label else None


def check_class(found: Detections, label: int) -> None:
    count = found.classes
    if count is not None and not 0 <= label < count:
        named = f": {', '.join(f'{k} {v}' for k, v in list(found.names.items())[:30])}" if found.names else ""
        raise TargetError(f"class {label} is out of range: the detector has {count} classes (0..{count - 1}){named}")


def choose(found: Detections, target: Target, image: tuple[int, int]) -> DetectionScore:
    """The DetectionScore of `target` (det:, box:, class:K@all) on every image of the clean batch."""
    n = len(found.kept)
    f = found.found
    anchors, classes, boxes = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros((n, 4))
    selected = None
    if target.kind == "det":
        k = int(target.value or 0)
        for i in range(n):
            if not 0 <= k < len(found.kept[i]):
                raise TargetError(f"det:{k} is out of range for image {i}: it has {len(found.kept[i])} detection(s) "
                                  f"({found.listing(i)})")
            anchors[i] = found.kept[i][k]
    elif target.kind == "box":
        box, label = parse_box(target.value or "", image)
        if label is not None:
            check_class(found, label)
        for i in range(n):
            anchors[i] = _match(found, i, box, label)
    else:  # class:K@all
        label = int(target.index)
        check_class(found, label)
        selected = np.zeros(f.labels.shape, bool)
        for i in range(n):
            chosen = [k for k in found.kept[i] if f.labels[i, k] == label]
            if not chosen:
                raise TargetError(f"no detection of class {found.name(label)} in image {i} ({found.listing(i)})")
            selected[i, chosen] = True
        classes[:] = label
    rows = np.arange(n)
    if selected is None:
        classes = f.labels[rows, anchors] if target.kind == "det" else _classes(found, target, anchors)
        boxes = f.boxes[rows, anchors]
    return DetectionScore(found.decoder.tensors, found.decoder, classes, boxes,
                          None if selected is not None else anchors, selected, found.threshold)


def _classes(found: Detections, target: Target, anchors: np.ndarray) -> np.ndarray:
    label = (target.value or "").partition("@")[2]
    rows = np.arange(len(anchors))
    return np.full(len(anchors), int(label)) if label else found.found.labels[rows, anchors]


def _match(found: Detections, i: int, box: np.ndarray, label: int | None) -> int:
    """The candidate of image i with the best IoU x score for the box (and class, when given)."""
    f = found.found
    overlap = iou(f.boxes[i], box)
    if label is None:
        score = f.confidence[i]
    elif f.class_scores is not None:
        score = f.class_scores[i][:, label]
    else:
        score = f.confidence[i] * (f.labels[i] == label)
    similarity = overlap * score
    best = int(similarity.argmax())
    if overlap[best] < MATCH or similarity[best] <= 0:
        wanted = f" of class {found.name(label)}" if label is not None else ""
        raise TargetError(f"no detection{wanted} matches box {','.join(f'{v:g}' for v in box)} in image {i} (best IoU "
                          f"below {MATCH}); its detections: {found.listing(i)}")
    return best


class DetectionKind(TargetKind):
    """det:K, box:x0,y0,x1,y1[@CLASS] and class:K@all on a detector's outputs."""

    name = "detection"
    words = ("det", "box")

    def accepts(self, target: Target) -> bool:
        return target.kind in self.words or (target.kind == "class" and target.region == "all")

    def resolve(self, model: Model, target: Target, x: np.ndarray, indices: np.ndarray | None,
                photos: list[tuple[int, int]] | None, batch_size: int) -> Resolved:
        found, values = detections(model, target, x, batch_size)
        score = choose(found, target, model.input_size)
        rows = np.arange(len(x))
        if model.batched_outputs:
            scores = np.asarray(score(values, rows), np.float32)
        else:  # each image's own detections, read one by one
            k = len(found.decoder.tensors)
            scores = np.concatenate([score(values[i * k : (i + 1) * k], rows[i : i + 1]) for i in rows]).astype(
                np.float32)
        best = [int(found.found.labels[i, k[0]]) if len(k) else -1 for i, k in enumerate(found.kept)]
        if score.selected is None:
            anchors = score.anchors if score.anchors is not None else np.zeros(len(x), np.int64)
            labels = [f"{target} {found.text(int(i), int(anchors[i]))}" for i in rows]
            explained = [[box] for box in score.boxes.tolist()]
        else:
            labels = [f"{target}: {int(score.selected[i].sum())} detection(s)" for i in rows]
            explained = [found.found.boxes[i][score.selected[i]].tolist() for i in rows]
        extras = {"detections": [found.rows(int(i)) for i in rows], "explained_boxes": explained,
                  "class_names": {str(k): v for k, v in found.names.items()}}
        return Resolved(score, scores, np.asarray(best, np.int64), values[0], score.classes, labels, extras)
