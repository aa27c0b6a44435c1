"""onnxviz.synthesize: make images from a model (activation maximization, DeepDream, inversion, style)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import registry, resolve
from ..backends.torch_import import import_torch
from ..errors import MethodError, OnnxvizError
from ..model import Model, load
from ..options import as_dict
from ..preprocess import Preprocessing
from ..reading import image_space, read_one, to_image_space
from .base import Request, Synthesis
from .engine import Engine
from .objectives import Objective
from .result import SynthesisResult

ImageSource = str | os.PathLike | np.ndarray


def synthesize(model: Model | str | os.PathLike, method: str = "maximize", /,
               objective: str | Objective | None = None, *,
               layer: str | None = None, images: Sequence[ImageSource] | ImageSource = (),
               style: ImageSource | None = None, seed: int = 0, progress: bool = True,
               preprocessing: Preprocessing | None = None, **options: Any) -> SynthesisResult:
    """Run a synthesis method. objective: a spec for `maximize` (`LAYER:CHANNEL`, `LAYER:C:Y:X`, `LAYER:A-B`,
    `class:K`, weighted sums) or an objective value (`channel(layer, 3) - 0.5 * class_logit(7)`, see
    synthesis.objectives). images: inputs of deepdream / invert / style_transfer (content) /
    shape_texture; style: the style image; layer: the layer `invert` matches (default: the last spatial one).
    Images are [0, 1] RGB at the model's input size."""
    start = time.perf_counter()
    model = model if isinstance(model, Model) else load(model)
    cls, instance = resolve.plugin(method, Synthesis)
    opts = resolve.options(cls, options)
    if layer is not None and not cls.needs_layer:
        raise MethodError(f"{cls.name} does not take a layer; drop --layer")
    resolved_layer = model.layer(layer) if cls.needs_layer else None
    resolve.gradient_source(model, cls, "exact")  # the torch conversion, or the reason it cannot run
    has_images = isinstance(images, np.ndarray) or bool(images)
    pictures, names = image_space(images, model) if has_images else (np.zeros((0,)), [])
    if len(pictures) < cls.needs_images:
        raise OnnxvizError(f"{cls.name} needs at least {cls.needs_images} image(s)")
    if objective is not None and not cls.takes_objective:
        takers = [n for n in registry.names(Synthesis) if getattr(registry.get(n), "takes_objective", False)]
        raise OnnxvizError(f"{cls.name} takes no objective (these do: {', '.join(takers)})")
    style_img = None
    if style is not None:
        style_img = to_image_space(read_one(style)[0], model.input_size, model.input.channels or 3)
    torch_seed(seed)
    engine = Engine(model, preprocessing or model.preprocessing, seed, progress)
    request = Request(objective, list(pictures), names, style_img, resolved_layer)
    out = instance.synthesize(engine, request, opts)
    images_out = np.clip(np.asarray(out.images, np.float32), 0, 1)
    return SynthesisResult(cls.name, as_dict(opts), model.name, images_out, out.captions, out.history,
                           time.perf_counter() - start, out.frames, out.extras)


def torch_seed(seed: int) -> None:
    import_torch().manual_seed(seed)


def synthesis_names() -> list[str]:
    return registry.names(Synthesis)
