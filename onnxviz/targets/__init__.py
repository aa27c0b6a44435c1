"""Targets: what a user asks to explain (`Target`), resolved once on the clean input into a `Score` (a scalar
per row from named model tensors) by a target kind. `spec` parses, `kinds` resolves, `scores` computes; the kinds:
classes and segmentation regions, detections (`detection`, `decoders`, `boxes`), embeddings (`embedding`), output
elements (`value`) and units of a layer (`unit`). Third-party kinds subclass `TargetKind` (entry-point group
`onnxviz.targets`)."""

from .base import Resolved, TargetKind
from .decoders import DECODERS, Decoder
from .detection import DetectionScore
from .embedding import CosineScore
from .kinds import KINDS, ClassKind, kind_for, resolve
from .regions import photo_to_output, region_boxes, region_masks
from .scores import ClassScore, Score, pick, softmax
from .spec import Target, check_finite, check_range, parse_targets
from .unit import UnitScore
from .value import ValueScore

__all__ = [
    "DECODERS", "KINDS", "ClassKind", "ClassScore", "CosineScore", "Decoder", "DetectionScore", "Resolved", "Score",
    "Target", "TargetKind", "UnitScore", "ValueScore", "check_finite", "check_range", "kind_for", "parse_targets",
    "photo_to_output", "pick", "region_boxes", "region_masks", "resolve", "softmax",
]
