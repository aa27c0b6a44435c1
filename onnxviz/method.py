"""The plugin interface: one base class, capabilities declared as class attributes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .options import NoOptions

if TYPE_CHECKING:
    from .context import Context

FAMILIES = ("attribution", "cam", "perturbation", "synthesis", "attack", "inspection")


@dataclass
class MethodOutput:
    """What `explain` may return instead of a bare array: the attributions plus layer-space maps and extras."""

    attributions: np.ndarray
    raw: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Method:
    """Subclass, set the class attributes, write `explain`, and register it under the entry-point group
    `onnxviz.methods`. Methods see numpy arrays and the Context only; never onnxruntime or torch."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = "attribution"
    requires: ClassVar[str] = "forward"  # "forward" (onnxruntime) or "gradients" (torch backend)
    needs_layer: ClassVar[bool] = False
    needs_image: ClassVar[bool] = False  # slides windows or masks over H x W: refused for non-image inputs
    estimable: ClassVar[bool] = False  # only needs input gradients: black-box estimates can stand in for torch
    unsigned_display: ClassVar[bool] = False  # draw min..max even when values change sign (offset-laden maps)
    output: ClassVar[str] = "pixels"  # "pixels": same shape as x; "map": (N, h, w), resized to the input size
    paper: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def explain(self, ctx: Context, x: np.ndarray, opts: Any) -> np.ndarray | MethodOutput:
        raise NotImplementedError(f"{type(self).__name__} must implement explain(ctx, x, opts)")
