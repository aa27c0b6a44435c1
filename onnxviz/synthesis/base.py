"""The synthesis plugin interface: a Method of family "synthesis" that makes images by optimization."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import MethodError
from ..layers import Layer
from ..method import Method

if TYPE_CHECKING:
    from .engine import Engine


@dataclass
class Request:
    """What the user handed over besides options: an objective spec and images (RGB [0, 1] HWC)."""

    objective: str | None = None
    images: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    style: np.ndarray | None = None
    layer: Layer | None = None  # resolved --layer, for methods with needs_layer


@dataclass
class Synthesized:
    """What `synthesize` returns: images (B, H, W, C) in [0, 1], a caption each, the objective per step
    (B, steps), optional frames (T, B, H, W, C) for a GIF, and extras for the JSON record."""

    images: np.ndarray
    captions: list[str]
    history: np.ndarray
    frames: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Synthesis(Method):
    """Subclass, declare `name`, `paper`, `Options`, and write `synthesize(engine, request, opts)`. Synthesis
    needs the torch backend: the engine hands over torch tensors."""

    family: ClassVar[str] = "synthesis"
    requires: ClassVar[str] = "gradients"
    output: ClassVar[str] = "image"
    needs_images: ClassVar[int] = 0  # how many input images the method needs at least

    def synthesize(self, engine: Engine, request: Request, opts: Any) -> Synthesized:
        raise NotImplementedError(f"{type(self).__name__} must implement synthesize(engine, request, opts)")

    def explain(self, ctx, x, opts):
        raise MethodError(f"{self.name} makes images, it does not explain them: use onnxviz.synthesize(...) or "
                          f"`onnxviz synthesize MODEL -m {self.name}`")
