"""Top-level verbs: load, load_image, explain, methods."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from . import registry
from .context import Context
from .errors import (
    ConversionError,
    ImageError,
    LayerError,
    MethodError,
    NumericWarning,
    OnnxvizError,
    OptionError,
    TargetError,
)
from .estimate import Estimator
from .explanation import Explanation
from .io import image_array, read_image, resize
from .method import Method, MethodOutput
from .model import Model, load
from .options import as_dict, build, describe
from .preprocess import Preprocessing
from .targets import check_range, parse_targets, pick, region_boxes, region_masks

ImageSource = str | os.PathLike | np.ndarray


def load_image(source: ImageSource | Sequence[ImageSource], model: Model,
               preprocessing: Preprocessing | str | None = None) -> np.ndarray:
    """Image file(s), RGB / grey [0, 1] HWC array(s) (uint8 arrays are divided by 255; a 2-D array is one grey
    image; a 4-D array a batch of HWC images) -> a float32 batch in the model's own layout and size."""
    return read_batch(source, model, preprocessing)[0]


def read_batch(source: ImageSource | Sequence[ImageSource], model: Model,
               preprocessing: Preprocessing | str | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """load_image, and the (height, width) each image had before it was resized (for photo: regions)."""
    if not model.input.layout:
        raise ImageError(f"the model's input {model.input.name} {model.input.shape} is not an image (not 4-D)")
    pre = preprocessing if isinstance(preprocessing, Preprocessing) else (
        Preprocessing.preset(preprocessing, layout=model.input.layout, channels=model.input.channels or 3)
        if preprocessing else model.preprocessing)
    if source is None or isinstance(source, (bytes, bytearray)):
        raise ImageError("load_image takes image paths or RGB [0, 1] HWC arrays (one, or a list), not "
                         f"{type(source).__name__}")
    if isinstance(source, np.ndarray) and source.ndim == 2:
        source = source[..., None]  # one grey image
    sources = [source] if isinstance(source, (str, os.PathLike)) or (
        isinstance(source, np.ndarray) and source.ndim == 3) else list(source)
    if not sources:
        raise ImageError("no images given: pass image paths or RGB [0, 1] HWC arrays")
    h, w = model.input_size
    batch, sizes = [], []
    for k, src in enumerate(sources):
        img = read_image(src) if isinstance(src, (str, os.PathLike)) else image_array(src, f"image {k}")
        sizes.append(tuple(img.shape[:2]))
        batch.append(pre.apply(resize(img, h, w)))
    return np.stack(batch).astype(model.input.dtype), sizes


def methods(name: str | None = None) -> list[dict[str, Any]]:
    """Registered methods (built-in and plugins): name, family, needs, options; broken ones with their error.
    With `name`, only that method (an unknown or broken name is a MethodError that suggests close ones)."""
    if name is not None:
        registry.get(name)
    rows = []
    for entry in registry.all_entries():
        if name is not None and entry.name != name:
            continue
        row: dict[str, Any] = {"name": entry.name, "distribution": entry.dist, "error": entry.error}
        if entry.conflict:
            row["error"] = f"also claimed by {entry.conflict}"
        if entry.cls is not None:
            cls = entry.cls
            row.update(family=cls.family, requires=cls.requires, needs_layer=cls.needs_layer, output=cls.output,
                       paper=cls.paper, summary=cls.summary or (cls.__doc__ or "").strip().split("\n")[0],
                       options=describe(cls.Options))
        rows.append(row)
    return rows


@dataclass
class Prepared:
    """A validated request: everything checked before any long computation starts."""

    model: Model
    method: Method
    opts: Any
    layer: Any
    estimator: Estimator | None = None  # gradients estimated through onnxruntime instead of torch


def _gradient_source(model: Model, cls: type[Method], gradient: str | Estimator) -> Estimator | None:
    """None for exact (torch) gradients, or the estimator: asked for, or the fallback when torch cannot run
    the graph (a warning says so)."""
    if gradient not in ("auto", "exact", "estimate") and not isinstance(gradient, Estimator):
        raise OptionError(f"gradient must be auto, exact or estimate, not {gradient!r}")
    if cls.requires != "gradients":
        return None
    estimator = gradient if isinstance(gradient, Estimator) else Estimator()
    wants_estimate = isinstance(gradient, Estimator) or gradient == "estimate"
    if wants_estimate and not cls.estimable:
        raise MethodError(f"{cls.name} needs layer gradients or modified ReLUs: it cannot use estimated gradients "
                          "(use --gradient exact, or a forward-only method such as scorecam or occlusion)")
    if wants_estimate:
        return estimator
    try:
        model.gradient_backend()
        return None
    except ConversionError as exc:  # a missing torch stays an error that says how to install it
        if gradient == "exact" or not cls.estimable:
            raise
        warnings.warn(f"onnxviz: {exc} Falling back to an {estimator.describe()}.", stacklevel=3)
        return estimator


def _check_input(model: Model, cls: type[Method]) -> None:
    """Methods that need an image, or gradients, refused with the reason when the model's input cannot give them."""
    spec = model.input
    if not spec.layout and (cls.needs_image or cls.needs_layer or cls.output == "map"):
        raise MethodError(f"{cls.name} explains images, but the model's input {spec.name!r} has shape "
                          f"{list(spec.shape)} (not N,C,H,W or N,H,W,C); for other inputs use saliency, "
                          "input_x_gradient, integrated_gradients, smoothgrad or finite_difference")
    if cls.requires == "gradients" and not np.issubdtype(spec.dtype, np.floating):
        raise MethodError(f"{cls.name} needs gradients, but the model's input is {spec.dtype}: no gradient flows "
                          "through an integer input. Use a forward-only method (occlusion, rise, finite_difference)")


def prepare(model: Model, method: str | type[Method] | Method, layer: str | None = None,
            options: dict[str, Any] | None = None, gradient: str | Estimator = "auto") -> Prepared:
    """Resolve the method, its options and its layer, and make sure its backend can run.

    gradient: "auto" (torch when it converts with parity, else an estimate for input-gradient methods),
    "exact" (torch or an error), "estimate" (NES through onnxruntime), or an Estimator.
    """
    if isinstance(method, str):
        cls = registry.get(method)
    else:
        cls = registry.validate(method if isinstance(method, type) else type(method), repr(method))
    _check_input(model, cls)
    instance = method if isinstance(method, Method) else cls()
    opts = build(cls.Options, options or {}, cls.name)
    resolved = model.layer(layer) if cls.needs_layer else None
    if layer is not None and not cls.needs_layer:
        raise MethodError(f"{cls.name} does not take a layer (it explains the input directly); drop --layer")
    return Prepared(model, instance, opts, resolved, _gradient_source(model, cls, gradient))


def _validate_output(result: np.ndarray | MethodOutput, cls: type[Method], x: np.ndarray) -> MethodOutput:
    out = result if isinstance(result, MethodOutput) else MethodOutput(np.asarray(result))
    attr = np.asarray(out.attributions)
    expected = x.shape if cls.output == "pixels" else None
    if expected is not None and attr.shape != expected:
        raise MethodError(f"method {cls.name} returned shape {attr.shape}; pixel methods must return {expected}")
    if cls.output == "map" and (attr.ndim != 3 or len(attr) != len(x)):
        raise MethodError(f"method {cls.name} returned shape {attr.shape}; map methods must return (N, h, w)")
    out.attributions = attr.astype(np.float32)
    return out


def _check_run_options(batch_size, seed, layer) -> None:
    for name, value, low in (("batch_size", batch_size, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise OptionError(f"{name} must be a whole number of at least {low}, not {value!r}")
    if layer is not None and not isinstance(layer, str):
        raise LayerError(f"layer must be a tensor or node name (a string, as `onnxviz layers` lists), not {layer!r}")


def _model_batch(x: np.ndarray, model: Model) -> np.ndarray:
    """A batch in the model's input shape (a single sample gets its batch axis), checked before any work."""
    spec = model.input
    if x.ndim == len(spec.shape) - 1:
        x = x[None]
    if len(x) == 0:
        raise ImageError("no images given: the batch is empty")
    if x.ndim != len(spec.shape) or any(isinstance(d, int) and d > 0 and d != got
                                        for d, got in zip(spec.shape[1:], x.shape[1:], strict=True)):
        layout = f" ({spec.layout})" if spec.layout else ""
        raise ImageError(f"the batch has shape {list(x.shape)}, but the model's input {spec.name!r} is "
                         f"{list(spec.shape)}{layout}; read images with onnxviz.load_image(paths, model)")
    try:
        return np.asarray(x, dtype=spec.dtype)
    except (TypeError, ValueError):
        raise ImageError(f"the batch holds {x.dtype} values; the model takes {spec.dtype}") from None


def numeric_warnings(attributions: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """NaN / Inf attributions set to 0, and what to tell the user about them and about all-zero maps."""
    notes = []
    bad = ~np.isfinite(attributions)
    if bad.any():
        notes.append(f"non-finite attribution: {int(bad.sum())} of {bad.size} values were NaN or Inf and are shown "
                     "as 0 (NaN/Inf in the model's weights or outputs propagate into gradients)")
        attributions = np.where(bad, 0.0, attributions).astype(np.float32)
    if not np.isfinite(scores).all():
        notes.append("non-finite model output: the target score is NaN or Inf for some images")
    flat = attributions.reshape(len(attributions), -1)
    zero = [i for i in range(len(flat)) if not flat[i].any()]
    if zero:
        notes.append(f"attribution is zero everywhere for image(s) {zero}: the target's score does not change "
                     "with the input there (dead units, a saturated output, or a constant model)")
    return attributions, notes


def explain(model: Model | str | os.PathLike, x: np.ndarray | ImageSource | Sequence[ImageSource],
            method: str | type[Method] | Method = "saliency", /, target=None, layer: str | None = None, *,
            batch_size: int = 32, seed: int = 0, progress: bool = True, prepared: Prepared | None = None,
            preprocessing: Preprocessing | None = None, gradient: str | Estimator = "auto",
            image_sizes: Sequence[tuple[int, int]] | None = None, **options: Any) -> Explanation:
    """Explain `x` (a batch in the model's layout, or image paths) with one method (model, x and method are
    positional, so a method may have an option called `method`).

    target: class index, a list (one per image), "top1" (default, resolved once on the clean input) or
    "softmax:281". layer: tensor name, node name or alias for layer methods (default: the last spatial layer).
    preprocessing: how image paths are read, and how inputs are shown (default: the model's).
    gradient: "auto", "exact", "estimate" or an Estimator (see `prepare`).
    image_sizes: the (height, width) of each original image when `x` is an already resized batch (for
    `K@photo:x0,y0,x1,y1` regions; known by itself when `x` is paths).
    """
    start = time.perf_counter()
    model = model if isinstance(model, Model) else load(model)
    _check_run_options(batch_size, seed, layer)
    if not isinstance(x, np.ndarray):
        x, image_sizes = read_batch(x, model, preprocessing)
    x = _model_batch(x, model)
    prep = prepared or prepare(model, method, layer, options, gradient)
    cls = type(prep.method)
    spec, indices = parse_targets(target, len(x))
    tensor, softmax = model.score_tensor(spec)
    ctx = Context(model, spec, np.zeros(len(x), np.int64), prep.layer, batch_size, seed, progress)
    ctx.estimator = prep.estimator
    clean = ctx.outputs(x, (tensor,))[0]
    if clean.ndim < 2:
        raise OnnxvizError(f"output {tensor!r} has shape {clean.shape}: no class axis to explain")
    predictions = clean.reshape(len(x), clean.shape[1], -1).sum(axis=2).argmax(axis=1)
    indices = predictions if indices is None else indices
    check_range(indices, clean.shape[1])
    photos = [tuple(int(v) for v in hw) for hw in image_sizes] if image_sizes is not None else None
    if photos is not None and len(photos) != len(x):
        raise TargetError(f"{len(photos)} image sizes given for {len(x)} images")
    masks = region_masks(spec.region, clean, indices, photos)
    ctx.targets, ctx.masks = indices, masks
    scores = pick(clean, indices, softmax, masks).astype(np.float32)  # the clean forward already has them
    ctx.clean_scores = scores
    prep_time = time.perf_counter() - start
    out = _validate_output(prep.method.explain(ctx, x, prep.opts), cls, x)
    attributions, notes = numeric_warnings(out.attributions, scores)
    for note in notes:
        warnings.warn(f"onnxviz: {cls.name}: {note}", NumericWarning, stacklevel=2)
    if notes:
        out.extras.setdefault("warnings", []).extend(notes)
    raw = out.raw
    if cls.output == "map":
        raw = attributions if raw is None else raw
        attributions = np.stack([resize(m, *model.input_size) for m in attributions])
    if model.parity is not None and "torch" in ctx.backends_used:
        out.extras.setdefault("parity_max_abs_diff", model.parity.max_abs_diff)
    if cls.unsigned_display:
        out.extras.setdefault("display", "unsigned")
    boxes = region_boxes(spec.region, len(x), tuple(clean.shape[2:4]), photos) if clean.ndim == 4 else None
    if boxes is not None:  # in the output's pixels, for the overlays to draw and for the user to check
        out.extras.setdefault("region_boxes", [list(b) for b in boxes])
        out.extras.setdefault("region_space", list(clean.shape[2:4]))
    if prep.estimator is not None:
        out.extras.setdefault("gradient", prep.estimator.describe())
        if "onnxruntime (estimated gradient)" in ctx.backends_used:
            ctx.backends_used.discard("onnxruntime")
    return Explanation(
        attributions=attributions, method=cls.name, kind=cls.output, inputs=x, targets=indices,
        scores=scores, predictions=predictions, target=str(spec), options=as_dict(prep.opts),
        layer=prep.layer.name if prep.layer else None, backend="+".join(sorted(ctx.backends_used)) or "none",
        model_name=model.name, model_hash=model.hash, preprocessing=asdict(preprocessing or model.preprocessing),
        timings={"prepare_s": prep_time, "explain_s": time.perf_counter() - start - prep_time},
        raw=raw, extras=out.extras,
    )
