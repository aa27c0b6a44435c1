"""The explanation-method plugin kind: a class with declared capabilities and one `explain(ctx, x, opts)`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .plugin import Plugin

if TYPE_CHECKING:
    from .context import Context

FAMILIES = ("attribution", "cam", "perturbation", "attention")


@dataclass
class MethodOutput:
    """What `explain` may return instead of a bare array: the attributions plus layer-space maps and extras."""

    attributions: np.ndarray
    raw: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Method(Plugin):
    """Subclass, set the class attributes, write `explain`, and register it under the entry-point group
    `onnxviz.methods`. Methods see numpy arrays and the Context only; never onnxruntime or torch."""

    kind: ClassVar[str] = "method"
    families: ClassVar[tuple[str, ...]] = FAMILIES
    family: ClassVar[str] = "attribution"
    needs_image: ClassVar[bool] = False  # slides windows or masks over H x W: refused for non-image inputs
    unsigned_display: ClassVar[bool] = False  # draw min..max even when values change sign (offset-laden maps)
    display: ClassVar[str] = "auto"  # "absolute": draw |map| (signs that flip pixel by pixel); "auto": as they are
    target_dependent: ClassVar[bool] = True  # the map changes with the target (False: class-agnostic, e.g. EigenCAM)
    model_dependent: ClassVar[bool] = True  # the map changes with the weights (False only for baselines)
    output: ClassVar[str] = "pixels"  # "pixels": same shape as x; "map": (N, h, w), resized to the input size

    @classmethod
    def problems(cls) -> list[str]:
        found = super().problems()
        if cls.output not in ("pixels", "map"):
            found.append(f"output must be pixels or map, not {cls.output!r}")
        if cls.explain is Method.explain:
            found.append("it does not implement explain(ctx, x, opts)")
        return found

    def explain(self, ctx: Context, x: np.ndarray, opts: Any) -> np.ndarray | MethodOutput:
        raise NotImplementedError(f"{type(self).__name__} must implement explain(ctx, x, opts)")
