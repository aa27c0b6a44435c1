"""onnxviz.synthesize: make images from a model (activation maximization, DeepDream, inversion, style)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..attacks.run import read_images, to_image_space
from ..errors import MethodError, OnnxvizError
from ..io import read_image
from ..model import Model, load
from ..options import as_dict
from ..preprocess import Preprocessing
from .base import Request, Synthesis
from .engine import Engine
from .result import SynthesisResult

ImageSource = str | os.PathLike | np.ndarray


def synthesize(model: Model | str | os.PathLike, method: str = "maximize", /, objective: str | None = None, *,
               layer: str | None = None, images: Sequence[ImageSource] | ImageSource = (),
               style: ImageSource | None = None, seed: int = 0, progress: bool = True,
               preprocessing: Preprocessing | None = None, **options: Any) -> SynthesisResult:
    """Run a synthesis method. objective: a spec for `maximize` (`LAYER:CHANNEL`, `LAYER:C:Y:X`, `LAYER:A-B`,
    `class:K`, weighted sums). images: inputs of deepdream / invert / style_transfer (content) /
    shape_texture; style: the style image; layer: the layer `invert` matches (default: the last spatial one).
    Images are [0, 1] RGB at the model's input size."""
    from ..api import prepare

    start = time.perf_counter()
    model = model if isinstance(model, Model) else load(model)
    prep = prepare(model, method, layer, options, "exact")
    if not isinstance(prep.method, Synthesis):
        raise MethodError(f"{type(prep.method).name} is not a synthesis method; choose one of: "
                          f"{', '.join(synthesis_names())}")
    cls = type(prep.method)
    has_images = isinstance(images, np.ndarray) or bool(images)
    pictures, names = read_images(images, model) if has_images else (np.zeros((0,)), [])
    if len(pictures) < cls.needs_images:
        raise OnnxvizError(f"{cls.name} needs at least {cls.needs_images} image(s)")
    if objective is not None and cls.name != "maximize":
        raise OnnxvizError(f"{cls.name} takes no objective (only maximize does)")
    style_img = None
    if style is not None:
        raw = read_image(style) if isinstance(style, (str, os.PathLike)) else np.asarray(style, np.float32)
        style_img = to_image_space(raw, model.input_size, model.input.channels or 3)
    torch_seed(seed)
    engine = Engine(model, preprocessing or model.preprocessing, seed, progress)
    request = Request(objective, list(pictures), names, style_img, prep.layer)
    out = prep.method.synthesize(engine, request, prep.opts)
    images_out = np.clip(np.asarray(out.images, np.float32), 0, 1)
    return SynthesisResult(cls.name, as_dict(prep.opts), model.name, images_out, out.captions, out.history,
                           time.perf_counter() - start, out.frames, out.extras)


def torch_seed(seed: int) -> None:
    from ..backends.torch import import_torch

    import_torch().manual_seed(seed)


def synthesis_names() -> list[str]:
    from .. import registry

    return [e.name for e in registry.all_entries() if e.cls is not None and issubclass(e.cls, Synthesis)]
