"""Explainer: prepare once, explain many. The method, its options, the layer and the gradient source are resolved
when it is built (every user error surfaces there, before any long computation); `explain(x, target)` then runs
on any number of batches, as Captum's attribution objects do."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from . import resolve, targets
from .clean_forward import CleanForward
from .context import Context
from .errors import ImageError, InputWarning, LayerError, MethodError, NumericWarning, OptionError, TargetError
from .estimate import Estimator
from .explanation import Explanation
from .io import resize
from .method import Method, MethodOutput
from .model import Model, load
from .options import as_dict
from .preprocess import Preprocessing
from .reading import ImageSource, preprocessing_of, read_batch
from .targets import ClassScore, Target, parse_targets, region_boxes
from .targets.spec import TargetSpec


def check_run_options(batch_size: object, seed: object, layer: object) -> None:
    for name, value, low in (("batch_size", batch_size, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise OptionError(f"{name} must be a whole number of at least {low}, not {value!r}")
    if layer is not None and not isinstance(layer, str):
        raise LayerError(f"layer must be a tensor or node name (a string, as `onnxviz layers` lists), not {layer!r}")


def model_batch(x: np.ndarray, model: Model) -> np.ndarray:
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
        return np.asarray(x, dtype=spec.batch_dtype)
    except (TypeError, ValueError):
        raise ImageError(f"the batch holds {x.dtype} values; the model takes {spec.dtype}") from None


def numeric_warnings(attributions: np.ndarray, scores: np.ndarray, family: str = "attribution"
                     ) -> tuple[np.ndarray, list[str]]:
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
    if zero and family == "cam":
        notes.append(f"the map is zero everywhere for image(s) {zero}: the weighted sum of the layer's channels is "
                     "<= 0 at every position and the CAM's ReLU keeps only positive evidence (negative: the layer "
                     "holds evidence against the class; zero: the score does not depend on it); try another --layer, "
                     "another method or another target")
    elif zero:
        notes.append(f"attribution is zero everywhere for image(s) {zero}: the target's score does not change "
                     "with the input there (dead units, a saturated output, or a constant model)")
    return attributions, notes


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


def _check_pixel_range(x: np.ndarray, model: Model) -> None:
    """A graph that divides its input by 255 itself, fed values that look already scaled: say so (once per call)."""
    block = model.baked_preprocessing
    if block is not None and block.pixels == 255 and float(np.abs(x).max(initial=0)) <= 3:
        warnings.warn(f"onnxviz: {model.name}: {block.describe()}, but this batch holds values in "
                      f"[{float(x.min()):.3g}, {float(x.max()):.3g}]: feed pixels 0..255 (onnxviz.load_image reads "
                      "images so)", InputWarning, stacklevel=3)


class Explainer:
    """One method on one model, resolved once: `Explainer(model, "gradcam", layer=..., **options)`, then
    `.explain(x, target)` for every batch (model and method are positional, so a method may have an option
    called `method`). gradient: "auto" (torch when the graph converts with parity, else an
    estimate for input-gradient methods, with a warning), "exact", "estimate" or an Estimator."""

    def __init__(self, model: Model | str | os.PathLike, method: str | type[Method] | Method = "saliency", /, *,
                 layer: str | None = None, gradient: str | Estimator = "auto", batch_size: int = 32, seed: int = 0,
                 progress: bool = True, **options: Any):
        self.model = model if isinstance(model, Model) else load(model)
        check_run_options(batch_size, seed, layer)
        cls, self.method = resolve.plugin(method, Method)
        self.cls: type[Method] = cls
        resolve.check_input(self.model, cls)
        self.options = resolve.options(cls, options)
        if layer is not None and not cls.needs_layer:
            raise MethodError(f"{cls.name} does not take a layer (it explains the input directly); drop --layer")
        self.layer = self.model.layer(layer) if cls.needs_layer else None
        self.estimator = resolve.gradient_source(self.model, cls, gradient)
        self.batch_size, self.seed, self.progress = batch_size, seed, progress

    def __repr__(self) -> str:
        at = f" at {self.layer.name}" if self.layer else ""
        return f"Explainer({self.cls.name}{at} on {self.model.name}, {as_dict(self.options)})"

    def explain(self, x: np.ndarray | ImageSource | Sequence[ImageSource], target: TargetSpec = None, *,
                image_sizes: Sequence[tuple[int, int]] | None = None,
                preprocessing: Preprocessing | None = None) -> Explanation:
        """Explain `x` (a batch in the model's layout, or image paths / arrays). target: a class index, a list
        (one per image), "top1" (default, resolved once on the clean input), "softmax:281", or a region of a
        segmentation output. image_sizes: the (height, width) of each original image when `x` is a resized batch
        (for photo: regions; known by itself when `x` is paths). preprocessing: how paths are read and inputs
        shown (default: the model's)."""
        start = time.perf_counter()
        model, cls = self.model, self.cls
        if not isinstance(x, np.ndarray):
            x, image_sizes = read_batch(x, model, preprocessing)
        preprocessing = preprocessing or preprocessing_of(x)  # a batch from load_image remembers how it was read
        x = model_batch(x, model)
        _check_pixel_range(x, model)
        self._check_token_grid(x)
        ctx, found, photos = self._context(x, target, image_sizes)
        prep_time = time.perf_counter() - start
        out = _validate_output(self.method.explain(ctx, x, self.options), cls, x)
        if isinstance(found, CleanForward):  # the clean forward was left to the method's first torch pass
            found = self._clean_forward(ctx, found, photos)
        scores = found.scores
        attributions, notes = numeric_warnings(out.attributions, scores, cls.family)
        for note in notes:
            warnings.warn(f"onnxviz: {cls.name}: {note}", NumericWarning, stacklevel=2)
        if notes:
            out.extras.setdefault("warnings", []).extend(notes)
        raw = out.raw
        if cls.output == "map":
            raw = attributions if raw is None else raw
            attributions = np.stack([resize(m, *ctx.input_size(x)) for m in attributions])
        self._extras(out.extras, ctx, found, photos, len(x), tuple(x.shape[1:]))
        if preprocessing is None or preprocessing == model.preprocessing:
            out.extras.setdefault("assumptions", model.assumptions())
        return Explanation(
            attributions=attributions, method=cls.name, kind=cls.output, inputs=x, targets=ctx.targets,
            scores=scores, predictions=found.predictions, target=str(ctx.target), options=as_dict(self.options),
            layer=self.layer.name if self.layer else None, backend="+".join(sorted(ctx.backends_used)) or "none",
            model_name=model.name, model_hash=model.hash,
            preprocessing=asdict(preprocessing or model.preprocessing),
            timings={"prepare_s": prep_time, "explain_s": time.perf_counter() - start - prep_time},
            raw=raw, extras=out.extras,
        )

    def _check_token_grid(self, x: np.ndarray) -> None:
        """A token layer's grid was read at the model's input size; a batch of another size (a graph whose size is
        open) has another grid, so say how to read the layers at its size instead of failing inside the method."""
        if self.layer is None or not self.layer.tokens or not self.model.input.layout:
            return
        size, read = tuple(int(d) for d in self.model.input.axes.size(x.shape)), self.model.input_size
        if size != read:
            raise LayerError(f"layer {self.layer.name} is a token grid read at the {read[0]}x{read[1]} input size; "
                             f"this batch is {size[0]}x{size[1]}: load the model at that size (Python: "
                             f"load(..., size=({size[0]}, {size[1]})); command line: --size {size[0]}x{size[1]})")

    def _context(self, x: np.ndarray, target: TargetSpec, image_sizes: Sequence[tuple[int, int]] | None
                 ) -> tuple[Context, targets.Resolved | CleanForward, list[tuple[int, int]] | None]:
        """The complete Context: the clean forward, targets resolved on it (top1, regions), clean scores; or, when
        the method's first torch pass can be the clean forward, the CleanForward that will hold it."""
        spec, indices = parse_targets(target, len(x))
        photos = [(int(hw[0]), int(hw[1])) for hw in image_sizes] if image_sizes is not None else None
        if photos is not None and len(photos) != len(x):
            raise TargetError(f"{len(photos)} image sizes given for {len(x)} images")
        deferred = self._deferred(spec, indices, len(x))
        if deferred is not None:
            clean = CleanForward(x.copy())
            ctx = Context(self.model, spec, deferred.classes, self.layer, self.batch_size, self.seed, self.progress,
                          estimator=self.estimator, scorer=deferred, clean=clean)
            return ctx, clean, photos
        found = targets.resolve(self.model, spec, x, indices, photos, self.batch_size)
        score = found.score
        explained = found.explained if found.explained is not None else getattr(score, "classes", found.predictions)
        ctx = Context(self.model, spec, explained, self.layer, self.batch_size,
                      self.seed, self.progress, masks=getattr(score, "masks", None), clean_scores=found.scores,
                      estimator=self.estimator, backends_used={"onnxruntime"}, scorer=score)  # + the clean forward
        return ctx, found, photos

    def _deferred(self, spec: Target, indices: np.ndarray | None, n: int) -> ClassScore | None:
        """The target's score when the clean forward can wait for the method's first torch pass: a gradient method
        on the torch backend, given classes of a plain float32 classifier output (see clean_forward.py): a half or
        quantized graph's scores are what onnxruntime computes, not its float32 torch copy."""
        if self.cls.requires != "gradients" or self.estimator is not None or self.model.precision != "float32":
            return None
        kind = targets.kind_for(spec)
        return kind.deferred(self.model, spec, indices, n) if isinstance(kind, targets.ClassKind) else None

    def _clean_forward(self, ctx: Context, clean: CleanForward, photos: list[tuple[int, int]] | None
                       ) -> targets.Resolved:
        """The clean forward's targets, scores and predictions: the torch pass's outputs when it saw the clean batch,
        else onnxruntime's forward now, on the batch as given (the method may have changed its input in place)."""
        if clean.outputs is not None:
            return targets.ClassKind().from_clean(self.model, ctx.target, clean.outputs[0], ctx.targets, photos)
        ctx.backends_used.add("onnxruntime")
        return targets.resolve(self.model, ctx.target, clean.batch, ctx.targets, photos, self.batch_size)

    def _extras(self, extras: dict, ctx: Context, found: targets.Resolved, photos: list[tuple[int, int]] | None,
                n: int, sample: tuple[int, ...]) -> None:
        """What the engine adds to every result: parity, display hints, the region drawn, the gradient source."""
        model = self.model
        if model.parity is not None and "torch" in ctx.backends_used:
            extras.setdefault("parity_max_abs_diff", model.parity.max_abs_diff)
            if model.precision != "float32":  # a half-precision or quantized graph: say what gradients are of
                extras.setdefault("precision", model.precision)
        if self.cls.unsigned_display:
            extras.setdefault("display", "unsigned")
        elif self.cls.display != "auto":
            extras.setdefault("display", self.cls.display)
        for key, value in found.extras.items():  # what the target kind found: detections, boxes
            extras.setdefault(key, value)
        if found.labels is not None:
            extras.setdefault("explained", found.labels)
        clean = found.clean
        region = ctx.target.region if ctx.target.kind == "class" and ctx.target.region != "all" else None
        boxes = region_boxes(region, n, tuple(clean.shape[2:4]), photos) if clean.ndim == 4 else None
        if boxes is not None:  # in the output's pixels, for the overlays to draw and for the user to check
            extras.setdefault("region_boxes", [list(b) for b in boxes])
            extras.setdefault("region_space", list(clean.shape[2:4]))
        if self.estimator is not None:
            rows, cols = model.input.axes.spatial_axes
            spatial = (rows - 1, cols - 1) if model.input.layout else None
            extras.setdefault("gradient", self.estimator.describe(sample, spatial))
            if "onnxruntime (estimated gradient)" in ctx.backends_used:
                ctx.backends_used.discard("onnxruntime")
