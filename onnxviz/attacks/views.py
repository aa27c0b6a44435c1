"""What an attack reads as class scores. A classifier: its logits. A detection (`det:K`, `box:...`): the strongest
confidence of a class among the candidates that overlapped the detection on the clean image, as a logit, beside a
"no detection" column at the confidence threshold's logit. Untargeted, the only class is the detection's own: leaving
it means the detection vanishes. Targeted, every class has a column: reaching one means the best candidate there
scores it above the threshold and above the others. Success is judged on the model's own detections after the
attack (`judge`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import TargetError
from ..model import Model
from ..targets import Target
from ..targets.boxes import CONFIDENCE, iou
from ..targets.decoders import Decoder, Tensor
from ..targets.detection import choose, detections

OVERLAP = 0.5  # a candidate, or a detection after the attack, is at the same place when its IoU reaches this
BACKGROUND = "no detection"


@dataclass(frozen=True)
class ClassView:
    """A classifier's scores: one output, flattened per image."""

    tensor: str

    @property
    def tensors(self) -> tuple[str, ...]:
        return (self.tensor,)

    def __call__(self, outs: Sequence[Tensor], rows: np.ndarray) -> Tensor:
        return outs[0].reshape(len(outs[0]), -1)


def _logit(p: Tensor) -> Tensor:
    if isinstance(p, np.ndarray):
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return np.log(p) - np.log1p(-p)
    p = p.clamp(1e-7, 1 - 1e-7)
    return p.log() - (-p).log1p()


@dataclass(frozen=True)
class DetectionView:
    """Per image, from the candidates that overlapped the detection on the clean image (`candidates`, fixed): to make
    it vanish, two columns, the logit of its class's best confidence there and the threshold's logit; to turn it into
    another class, the logit of every class's best confidence there, then the threshold's."""

    decoder: Decoder
    candidates: np.ndarray  # (N, A) bool
    boxes: np.ndarray  # (N, 4) the detection under attack
    classes: np.ndarray  # (N,) its class
    vanish: bool = True
    threshold: float = CONFIDENCE  # what a candidate needs to be a detection

    @property
    def tensors(self) -> tuple[str, ...]:
        return self.decoder.tensors

    def __call__(self, outs: Sequence[Tensor], rows: np.ndarray) -> Tensor:
        rows = np.asarray(rows)
        scores = self.decoder.class_scores(outs)  # (N, A, C)
        if self.vanish:  # only the attacked class: (N, A, 1)
            scores = scores[np.arange(len(rows)), :, self.classes[rows]][..., None]
        mask = self.candidates[rows][..., None]
        floor = float(_logit(np.array(self.threshold)))
        if isinstance(scores, np.ndarray):
            best = (scores * mask).max(axis=1)
            return np.concatenate([_logit(best), np.full((len(best), 1), floor)], axis=1)
        import torch

        best = (scores * torch.as_tensor(mask, dtype=scores.dtype, device=scores.device)).amax(dim=1)
        return torch.cat([_logit(best), torch.full((len(best), 1), floor, dtype=best.dtype, device=best.device)], dim=1)


def detection_view(model: Model, target: Target, x: np.ndarray, batch_size: int, vanish: bool = True
                   ) -> tuple[DetectionView, list[str]]:
    """The view of detection `target` on the clean model-space batch `x`, and the names of its columns."""
    if target.kind not in ("det", "box"):
        raise TargetError(f"attacks on a detector take det:K or box:x0,y0,x1,y1[@CLASS], not {target}")
    found, _ = detections(model, target, x, batch_size)
    score = choose(found, target, model.input_size)
    candidates = np.stack([iou(found.found.boxes[i], score.boxes[i]) >= OVERLAP for i in range(len(x))])
    view = DetectionView(found.decoder, candidates, score.boxes, score.classes, vanish, found.threshold)
    if vanish:
        return view, ["detected", BACKGROUND]
    columns = found.classes if found.classes is not None else int(score.classes.max()) + 1
    return view, [found.names.get(k, str(k)) for k in range(columns)] + [BACKGROUND]


def judge(model: Model, view: DetectionView, x: np.ndarray, targets: np.ndarray | None,
          batch_size: int) -> np.ndarray:
    """On the model's own detections of `x` (NMS on the adversarials): untargeted, no detection of the attacked
    class remains where it was; targeted, the best detection there has the target class."""
    found, _ = detections(model, Target(kind="det", value="0", decoder=_named(view.decoder), confidence=view.threshold),
                          x, batch_size)
    out = np.zeros(len(x), bool)
    for i, kept in enumerate(found.kept):  # best first
        here = [int(found.found.labels[i, k]) for k in kept if iou(found.found.boxes[i, k], view.boxes[i]) >= OVERLAP]
        out[i] = bool(here) and here[0] == int(targets[i]) if targets is not None else int(view.classes[i]) not in here
    return out


def _named(decoder: Decoder) -> str:
    return f"{decoder.name}:{','.join(decoder.tensors)}"


def is_detection(target: Any) -> bool:
    """Whether an attack's `target` names a detection (det:K, box:..., OUTPUT:det:K) rather than classes to reach."""
    if isinstance(target, Target):
        return target.kind in ("det", "box")
    words = target.strip().split(":") if isinstance(target, str) else []
    return len(words) > 1 and (words[0] in ("det", "box") or (len(words) > 2 and words[1] in ("det", "box")))
