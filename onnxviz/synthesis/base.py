"""The synthesis plugin kind: a class that makes images by optimization through the Engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..layers import Layer
from ..plugin import Plugin
from .objectives import Objective

if TYPE_CHECKING:
    from .engine import Engine


@dataclass
class Request:
    """What the user handed over besides options: an objective (a spec or an Objective value) and images (RGB
    [0, 1] HWC)."""

    objective: str | Objective | None = None
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


class Synthesis(Plugin):
    """Subclass, declare `name`, `paper`, `Options` and the capabilities below, and write
    `synthesize(engine, request, opts)`; register it under the entry-point group `onnxviz.synthesis`. Synthesis
    needs the torch backend: the engine hands over torch tensors."""

    kind: ClassVar[str] = "synthesis"
    families: ClassVar[tuple[str, ...]] = ("synthesis",)
    family: ClassVar[str] = "synthesis"
    requires: ClassVar[str] = "gradients"
    needs_images: ClassVar[int] = 0  # how many input images the method needs at least
    takes_objective: ClassVar[bool] = False  # reads request.objective (an objective spec or value)
    needs_style: ClassVar[bool] = False  # reads request.style (a style image)

    @classmethod
    def problems(cls) -> list[str]:
        found = super().problems()
        if cls.requires != "gradients":
            found.append("synthesis optimizes images through gradients: requires must be gradients")
        if cls.synthesize is Synthesis.synthesize:
            found.append("it does not implement synthesize(engine, request, opts)")
        return found

    def synthesize(self, engine: Engine, request: Request, opts: Any) -> Synthesized:
        raise NotImplementedError(f"{type(self).__name__} must implement synthesize(engine, request, opts)")
