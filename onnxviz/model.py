"""Model: load + validate + normalize + inspect an ONNX file. Backends are built lazily from it."""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, replace
from functools import cached_property
from html import escape
from pathlib import Path

import numpy as np
import onnx

from . import baked, graph_cache, preprocess
from .backends import precision, qdq, specialize, unroll
from .backends.batching import run_batched
from .backends.graph import cut_from
from .backends.ort import OrtBackend
from .backends.torch import TorchBackend
from .errors import ConversionError, InputWarning, ModelError, OnnxvizError, OptionError, TargetError, first_line
from .guard import Limits, open_model
from .layers import Layer, default_cam_layer, dims, layer_table, resolve_layer
from .layout import Layout
from .layout import layout as layout_of
from .targets import Target

DEFAULT_SIZE = 224
DEFAULT_PARITY_TOLERANCE = 1e-3
LAYERS_SHOWN = 200  # rows of the layer table a notebook shows


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple  # ints, or strings for symbolic dimensions
    dtype: np.dtype
    layout: str  # "NCHW", "NHWC", or "" for inputs that are not images
    fixed_batch: int | None  # the batch the graph insists on (very often 1); None when dynamic

    @property
    def axes(self) -> Layout:
        return layout_of(self.layout)

    @property
    def batch_dtype(self) -> np.dtype:
        """The dtype of onnxviz's batches for this input: its own, but float32 for integer inputs (uint8 pixels
        are kept as floats 0..255 and rounded only where onnxruntime is fed)."""
        return np.dtype(np.float32) if np.issubdtype(self.dtype, np.integer) else self.dtype

    @property
    def channel_axis(self) -> int:
        return self.axes.channel_axis

    @property
    def channels(self) -> int | None:
        c = self.axes.channels(self.shape) if len(self.shape) == 4 else None
        return c if isinstance(c, int) else None

    @property
    def spatial(self) -> tuple:
        return self.axes.size(self.shape)


@dataclass(frozen=True)
class Parity:
    """Largest difference between onnxruntime and the torch conversion on a probe input."""

    max_abs_diff: float
    output_scale: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance * max(1.0, self.output_scale)

    def __str__(self) -> str:
        verdict = "ok" if self.ok else f"OFF (tolerance {self.tolerance:g} x max(1, |output|))"
        diff, scale = self.max_abs_diff, self.output_scale
        return f"max |onnxruntime - torch| = {diff:.3g} on outputs up to {scale:.3g}: {verdict}"


def _input_spec(proto: onnx.ModelProto, layout: str | None) -> InputSpec:
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    if not inputs:
        raise ModelError("the graph has no inputs")
    if len(inputs) > 1:
        raise ModelError(f"the model has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); onnxviz explains "
                         "models with one image input. Turn the other inputs into initializers (constants) "
                         "first")
    value = inputs[0]
    ttype = value.type.tensor_type
    shape = dims(value)
    if ttype.elem_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED) or not value.type.HasField(
            "tensor_type"):
        kind = "text (strings)" if ttype.elem_type == onnx.TensorProto.STRING else "not a tensor of numbers"
        raise ModelError(f"the model's input {value.name!r} is {kind}: onnxviz explains models whose input is an "
                         "image or another array of numbers")
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type))
    if layout not in (None, "NCHW", "NHWC"):
        raise ModelError(f"layout must be NCHW or NHWC, not {layout!r}")
    detected = layout or _detect_layout(proto, value.name, shape)
    batch = shape[0] if shape else None
    return InputSpec(value.name, shape, dtype, detected, batch if isinstance(batch, int) and batch > 0 else None)


def _detect_layout(proto: onnx.ModelProto, name: str, shape: tuple) -> str:
    if len(shape) != 4:
        return ""

    def small(d) -> bool:
        return isinstance(d, int) and 1 <= d <= 4

    if small(shape[1]) and not small(shape[3]):
        return "NCHW"
    if small(shape[3]) and not small(shape[1]):
        return "NHWC"
    for node in proto.graph.node:
        if name in node.input:
            perm = next((tuple(a.ints) for a in node.attribute if a.name == "perm"), None)
            if node.op_type == "Transpose" and perm == (0, 3, 1, 2):
                return "NHWC"
    return "NCHW"


# where an infinite constant is a bound or a padding value, not a weight (MaxPool's -inf padding, an open Clip)
_BOUNDS: dict[str, set[int] | None] = {
    "Pad": {2}, "Clip": {1, 2}, "Max": None, "Min": None, "Where": {1, 2}, "Less": None, "Greater": None,
    "LessOrEqual": None, "GreaterOrEqual": None, "Equal": None,
}


def _nonfinite_weights(proto: onnx.ModelProto) -> list[str]:
    """Names of floating-point initializers holding NaN, or Inf where it is not a bound or a padding value."""
    from onnx import numpy_helper

    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE}
    uses: dict[str, list[tuple[str, int]]] = {}
    for node in proto.graph.node:
        for k, name in enumerate(node.input):
            uses.setdefault(name, []).append((node.op_type, k))

    def only_bounds(name: str) -> bool:
        found = uses.get(name, [])
        return bool(found) and all(op in _BOUNDS and k in (_BOUNDS[op] or {k}) for op, k in found)

    bad = []
    for i in proto.graph.initializer:
        if i.data_type not in floats or i.data_location == onnx.TensorProto.EXTERNAL:
            continue
        values = numpy_helper.to_array(i)
        if np.isnan(values).any() or (np.isinf(values).any() and not only_bounds(i.name)):
            bad.append(i.name)
    return bad


SHAPE_ONLY = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"}  # ops that move no value across rows


def _softmax_tails(proto: onnx.ModelProto) -> dict[str, str]:
    """{graph output produced by a class-axis Softmax, directly or through shape-only ops (a PyTorch export's
    Softmax -> Reshape): the logits tensor feeding that Softmax}."""
    graph = proto.graph
    producer = {o: n for n in graph.node for o in n.output}
    shapes = {v.name: list(dims(v)) for v in [*graph.input, *graph.value_info, *graph.output]
              if v.type.tensor_type.HasField("shape")}
    tails = {}
    for out in graph.output:
        node, hops = producer.get(out.name), 0
        while node is not None and node.op_type in SHAPE_ONLY and hops < 8:
            node, hops = producer.get(node.input[0]), hops + 1
        if node is None or node.op_type != "Softmax":
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
        shape = shapes.get(node.output[0]) or shapes.get(out.name, [])
        rank = len(shape)
        if not ((rank in (0, 2) and axis in (-1, 1)) or (rank > 2 and axis in (1, 1 - rank))):
            continue
        if hops and not _keeps_the_class_axis(shape, shapes.get(out.name, [])):
            continue
        tails[out.name] = node.input[0]
    return tails


def _keeps_the_class_axis(softmax: list, output: list) -> bool:
    """A shape-only tail after a Softmax over axis 1 still gives class probabilities: the output is (N, C) with
    the Softmax's C, and every other Softmax axis is 1 (or a shape is unknown, and nothing says otherwise)."""
    if len(softmax) < 2 or len(output) != 2:
        return len(output) == 2 or not output
    classes, rest = softmax[1], softmax[2:]
    known = isinstance(classes, int) and isinstance(output[1], int)
    return (not known or classes == output[1]) and all(not isinstance(d, int) or d == 1 for d in rest)


def _max_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| over finite values; NaN and Inf must sit at the same places in both (else infinite)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    finite_a, finite_b = np.isfinite(a), np.isfinite(b)
    if not ((finite_a == finite_b).all() and np.array_equal(a[~finite_a], b[~finite_b], equal_nan=True)):
        return float("inf")
    return float(np.abs(a[finite_a] - b[finite_a]).max(initial=0))


def _outputs_have_batch_one(proto: onnx.ModelProto) -> bool:
    """Every output declares a literal first dimension of 1: the graph gives one row whatever it is fed (a
    ReduceSum over the batch, a Reshape to 1 x ...), so inputs must be run one at a time."""
    shapes = [list(dims(o)) for o in proto.graph.output if o.type.tensor_type.HasField("shape")]
    return bool(shapes) and len(shapes) == len(proto.graph.output) and all(s[:1] == [1] for s in shapes)


def _selects_per_image(proto: onnx.ModelProto, batch) -> bool:
    """A detector that runs NMS and returns one image's detections with no batch axis (torchvision's exports:
    boxes (K, 4), labels (K,), scores (K,)): no output starts with the input's batch dimension."""
    if not any(node.op_type == "NonMaxSuppression" for node in proto.graph.node):
        return False
    shapes = [dims(o) for o in proto.graph.output]
    return all(0 < len(s) <= 2 and s[0] != batch and s[0] != 1 for s in shapes)


def _infer_shapes(proto: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(proto)
    except Exception:  # inference is a nicety for the layer table; the graph runs without it
        return proto


def _normalize(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """onnxslim's cleaned graph, or the original (with a note) when slimming fails."""
    try:
        import onnxslim

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            slim = onnxslim.slim(proto)
        if slim is None or not slim.graph.node:
            raise ValueError("onnxslim returned an empty graph")
        for out, ref in zip(slim.graph.output, proto.graph.output, strict=True):
            if out.name != ref.name:
                raise ValueError(f"onnxslim renamed output {ref.name!r}")
        return slim, "onnxslim"
    except Exception as exc:  # onnxslim raises anything from anywhere; normalization is optional
        return proto, f"kept the original graph (onnxslim failed: {type(exc).__name__})"


class Model:
    """A normalized ONNX model and everything onnxviz needs to know about it. Built by `load`, whose guard has
    already parsed, validated and checked the model (onnx.checker included) in the loader process."""

    def __init__(self, original: onnx.ModelProto, source: str, *, layout: str | None = None, normalize: bool = True,
                 device: str = "cpu", parity_tolerance: float = DEFAULT_PARITY_TOLERANCE, limits: Limits | None = None,
                 preprocessing: preprocess.Preprocessing | str | None = None, size: tuple[int, int] | None = None):
        self.source = source
        self.limits = limits or Limits()
        self.name = Path(source).stem if not source.startswith("<") else "model"
        self._digest = hashlib.sha256(original.SerializeToString()).hexdigest()
        self.hash = self._digest[:16]
        self.device = device
        self.parity_tolerance = parity_tolerance
        self._size_given = False  # --size / a Preprocessing with a size (else the size is the graph's or metadata's)
        self.input = _input_spec(original, layout)
        self.opset = next((o.version for o in original.opset_import if o.domain in ("", "ai.onnx")), None)
        self.producer = f"{original.producer_name} {original.producer_version}".strip()
        self.metadata = {p.key: p.value for p in original.metadata_props}
        self.proto, self.normalization = original, "none"
        self.use_preprocessing(preprocessing, size=size)  # before any probe runs: an open size is probed at it
        if normalize:
            self._normalize()
        else:
            self.proto = _infer_shapes(original)
        self.outputs = [o.name for o in self.proto.graph.output]
        self.batched_outputs = not _selects_per_image(self.proto, self._batch_dim)
        if self.input.fixed_batch is None and (_outputs_have_batch_one(self.proto) or not self.batched_outputs):
            self.input = replace(self.input, fixed_batch=1)  # its outputs keep one row whatever it is fed
        self.softmax_tails = _softmax_tails(self.proto)
        self._tables: dict[tuple | None, tuple[list[Layer], Layer | None]] = {}
        self.parity: Parity | None = None
        self.conversion_error: str | None = None
        self._heads: dict[tuple, TorchBackend] = {}
        self.nonfinite_weights = _nonfinite_weights(self.proto)
        if self.nonfinite_weights:
            warnings.warn(f"onnxviz: {self.name} has NaN or Inf in its weights ({', '.join(self.nonfinite_weights[:5])}"
                          f"{' ...' if len(self.nonfinite_weights) > 5 else ''}): outputs and attributions may be "
                          "non-finite", stacklevel=3)

    @property
    def _image_size(self) -> tuple[int, int] | None:
        """The (H, W) layer layouts are read for: the graph's own size, else the size images are read at (--size,
        the metadata, or the 224 guess) when the graph leaves it open; None for inputs that are not images."""
        return self.input_size if self.input.layout else None

    @property
    def layers(self) -> list[Layer]:
        """The layer table at the input size (a graph whose size is open is read at the size images are read at,
        so a ViT with a dynamic image size still gets its token grids)."""
        return self._layer_table()[0]

    def _repr_html_(self) -> str:
        """The model's facts and layer table, for Jupyter (every name escaped: they come from the file)."""
        inp = self.input
        facts = [("model", self.name), ("file", self.source),
                 ("input", f"{inp.name} {list(inp.shape)} {np.dtype(inp.dtype).name} {inp.layout or 'not an image'}"),
                 ("outputs", ", ".join(self.outputs)),
                 ("preprocessing", f"{self.preprocessing.to_json()} ({self.preprocessing_source})"),
                 ("default layer", self.default_layer.name if self.default_layer else "none"),
                 ("layers", str(len(self.layers)))]
        rows = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
        shown = self.layers[:LAYERS_SHOWN]
        table = "".join(f"<tr><td>{escape(layer.name)}</td><td>{escape(layer.op_type)}</td>"
                        f"<td>{escape(str(list(layer.shape)))}</td><td>{escape(layer.layout)}</td></tr>"
                        for layer in shown)
        more = (f"<p>{len(self.layers) - len(shown)} more layers: model.layers lists them all</p>"
                if len(self.layers) > len(shown) else "")
        return (f"<table>{rows}</table><details><summary>layers</summary><table><tr><th>tensor</th><th>op</th>"
                f"<th>shape</th><th>layout</th></tr>{table}</table>{more}</details>")

    @property
    def default_layer(self) -> Layer | None:
        """The layer CAM methods use when none is named."""
        return self._layer_table()[1]

    def _layer_table(self) -> tuple[list[Layer], Layer | None]:
        size = self._image_size
        if size not in self._tables:
            table = layer_table(self.proto, self.input.layout, size, self._batch_dim, self._observed_shapes())
            self._tables[size] = (table, default_cam_layer(table, self.proto))
        return self._tables[size]

    @property
    def _batch_dim(self):
        """The input's declared first dimension: an int, a symbolic name, or None."""
        return self.input.shape[0] if self.input.shape else None

    def _observed_shapes(self) -> dict[str, tuple]:
        """Shapes of the tensors shape inference left symbolic beyond the batch, read off one run at batch 1 (a
        legacy export with a dynamic batch hides its token and window shapes behind Reshapes, a graph with an open
        image size hides them all, and layouts are read from shapes). For images only; {} when nothing is symbolic
        or the run fails."""
        batch = self._batch_dim
        if self._image_size is None:
            return {}
        infos = {v.name: dims(v) for v in [*self.proto.graph.value_info, *self.proto.graph.output]}

        def hidden(shape: tuple) -> bool:  # a symbolic side, or a first axis that may not be the batch
            return len(shape) in (3, 4) and (any(isinstance(d, str) for d in shape[1:]) or (
                isinstance(shape[0], str) and shape[0] != batch))

        names = tuple(out for node in self.proto.graph.node for out in node.output
                      if out and (out not in infos or hidden(infos[out])))
        if not names:
            return {}
        try:
            outs = OrtBackend(self.proto, self.input.name, self.input.dtype, "cpu", self.limits).run(
                self.probe_input(self.input.fixed_batch or 1), names)
        except Exception:  # a nicety for the layer table: the declared shapes stay
            return {}
        return {name: tuple(int(d) for d in out.shape) for name, out in zip(names, outs, strict=True)
                if isinstance(out, np.ndarray)}

    def _normalize(self) -> None:
        """onnxslim's graph, adopted only when onnxruntime gives the same outputs on it (it trusts declared shapes);
        what was decided is kept in the graph cache for the next load of the same model."""
        entry = f"{self._digest}:{self.input}"  # the check's probe follows the input (a --layout changes it)
        cached = graph_cache.read(entry)
        if cached is not None:
            self.proto, self.normalization = cached
            return
        self.proto = _infer_shapes(self.proto)
        self._normalize_checked()
        graph_cache.write(entry, self.proto, self.normalization)

    def _normalize_checked(self) -> None:
        original = self.proto
        candidate, note = _normalize(original)
        if candidate is original:
            self.normalization = note
            return
        probe = self.probe_input()
        names = tuple(o.name for o in original.graph.output)
        try:
            ref = OrtBackend(original, self.input.name, self.input.dtype, "cpu", self.limits).run(probe, names)
        except ModelError as exc:
            raise ModelError(f"{exc}{self._size_advice()}") from None
        self.proto = _infer_shapes(candidate)
        got = self.ort.run(probe, names)
        def same(a: np.ndarray, b: np.ndarray) -> bool:  # a reshaped output is a changed output
            scale = max(1.0, float(np.abs(a).max(initial=0)))
            return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-4, atol=1e-5 * scale))

        if all(same(a, b) for a, b in zip(ref, got, strict=True)):
            self.normalization = note
        else:
            self.proto, self.normalization = original, "kept the original graph (onnxslim changed the outputs)"
            self.__dict__.pop("ort", None)

    @property
    def precision(self) -> str:
        """How the graph computes and what gradients are taken on: "float32", or a half-precision or quantized
        graph with how its gradients are made exact for what it computes (read once per graph: each explain asks)."""
        proto, found = self.__dict__.get("_precision", (None, ""))
        if proto is not self.proto:
            found = self._read_precision()
            self.__dict__["_precision"] = (self.proto, found)
        return found

    def _read_precision(self) -> str:
        halves = sorted(onnx.helper.tensor_dtype_to_np_dtype(t).name for t in precision.half_types(self.proto))
        quantized = qdq.kind(self.proto)
        notes = []
        if halves:
            notes.append(f"{'/'.join(halves)} (onnxruntime runs it so; gradients on a float32 copy)")
        if quantized == "fused kernels":
            notes.append("int8 fused kernels (no gradients: quantize in the QDQ format)")
        elif quantized:
            notes.append(f"int8 {quantized} (gradients through fake quantization, straight-through rounding)")
        return "; ".join(notes) or "float32"

    # -- inputs -----------------------------------------------------------------------------------------
    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the model takes: each side the graph fixes, else --size / the metadata, else 224 (a
        guess). An OCR model fixed at height 64 with an open width is read 64 high."""
        fixed = self._fixed_size
        if fixed is not None:
            return fixed
        hint = self.preprocessing.size or (DEFAULT_SIZE, DEFAULT_SIZE)
        graph = self._graph_sides
        return (graph[0] or hint[0], graph[1] or hint[1])

    @property
    def _graph_sides(self) -> tuple[int | None, int | None]:
        """(H, W) where the graph fixes each (None where it leaves it open)."""
        h, w = self.input.spatial if self.input.layout else (None, None)
        return (h if isinstance(h, int) and h > 0 else None, w if isinstance(w, int) and w > 0 else None)

    @property
    def _fixed_size(self) -> tuple[int, int] | None:
        h, w = self.input.spatial if self.input.layout else (None, None)
        return (h, w) if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0 else None

    @property
    def size_source(self) -> str:
        """Where the input size comes from: "graph", "given", "metadata", or "default ..." (a guess)."""
        if self._fixed_size is not None:
            return "graph"
        if self.preprocessing.size is not None:
            return "given" if self._size_given else "metadata"
        h, w = self._graph_sides
        if h or w:
            fixed, open_side = ("height", "width") if h else ("width", "height")
            return (f"default {open_side} {DEFAULT_SIZE} (the graph fixes the {fixed} at {h or w} and leaves the "
                    f"{open_side} open: a guess)")
        return f"default {DEFAULT_SIZE}x{DEFAULT_SIZE} (the graph leaves the size open: a guess)"

    def _size_advice(self) -> str:
        """For a probe that failed: how to give the size when it was a guess for a graph that leaves it open."""
        if not self.input.layout or not self.size_source.startswith("default"):
            return ""
        h, w = self.input_size
        return (f". The graph leaves its input size open and was tried at {h}x{w} (a guess); if it runs at one "
                "size only, load it at that size: --size HxW (Python: load(..., size=(height, width)))")

    def assumptions(self) -> list[str]:
        """What onnxviz guessed about how to feed this model, each with how to correct it; [] when nothing was."""
        found = []
        if self.input.layout and self.preprocessing_source.startswith("default"):
            found.append(f"preprocessing: {self.preprocessing_source}; if the model was trained otherwise, pass "
                         "--preprocess (imagenet, unit, symmetric, caffe) and/or --mean/--std")
        if self.input.layout and self.size_source.startswith("default"):
            found.append(f"input size: {self.size_source}; pass --size HxW with the size the model was trained at")
        return found

    @property
    def preprocessing(self) -> preprocess.Preprocessing:
        """Given to `load` or `use_preprocessing`; else from the model's metadata when it has valid metadata; else
        imagenet for RGB models, unit for grey ones (`preprocessing_source` says which)."""
        return self._preprocessing[0]

    @property
    def preprocessing_source(self) -> str:
        """Where the preprocessing comes from: "given", "metadata", or "default ..." with the reason."""
        return self._preprocessing[1]

    @cached_property
    def _preprocessing(self) -> tuple[preprocess.Preprocessing, str]:
        channels = self.input.channels or 3
        default = "unit" if channels == 1 else "imagenet"
        try:
            fields, source = preprocess.from_metadata(self.metadata), "metadata"
        except preprocess.MetadataError as exc:
            key = preprocess.METADATA_KEY
            fields, source = None, f"default {default}: the model's {key} metadata is ignored ({exc})"
            warnings.warn(f"onnxviz: {self.name}: {source}; pass --preprocess, --mean and --std if {default} is "
                          "wrong", stacklevel=3)
        block = self.baked_preprocessing
        if fields is None and block is not None:
            fields, source = block.fields, f"detected: {block.describe()}"
        elif fields is None and np.issubdtype(self.input.dtype, np.integer):
            fields, source = {"mean": (0.0,), "std": (1.0,), "scale": 255.0}, \
                f"raw pixels 0..255: the input is {self.input.dtype}"
        if fields is None:
            fields = preprocess.PRESETS[default]
            source = source if source != "metadata" else f"default {default} (no metadata: a guess)"
        layout = self.input.layout or "NCHW"
        return preprocess.Preprocessing(**{**fields, "layout": layout, "channels": channels}), source

    @property
    def pixels_cast_to_float(self) -> bool:
        """An integer image input that the graph only casts to a float type: gradients with respect to its pixel
        values exist (onnxviz keeps such batches as floats, and the converted graph's Cast passes them through)."""
        floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE}
        readers = [n for n in self.proto.graph.node if self.input.name in n.input]
        return bool(self.input.layout) and bool(readers) and all(
            n.op_type == "Cast" and any(a.name == "to" and a.i in floats for a in n.attribute) for n in readers)

    @cached_property
    def baked_preprocessing(self) -> baked.Block | None:
        """The normalization the graph does itself at its start (then it is fed raw pixels), or None."""
        if not self.input.layout:
            return None
        return baked.detect(self.proto, self.input.name, self.input.channels or 3)

    def use_request(self, request: preprocess.Request) -> None:
        """What a command line asked for (--preprocess, --mean, --std, --size), over the model's own."""
        self.use_preprocessing(request.preset, mean=request.mean, std=request.std, size=request.size)

    def use_preprocessing(self, pre: preprocess.Preprocessing | str | None = None, *, mean=None, std=None,
                          size: tuple[int, int] | None = None) -> None:
        """Read and show images with this preprocessing from now on: a Preprocessing, a preset name, and/or a
        mean and std over the current one (the model's input layout and channels are kept); `size` (height,
        width) for a graph whose size is open (a fixed size cannot change)."""
        if size is not None:
            size = preprocess.check_size(size)
            fixed = self._fixed_size
            if fixed is not None and fixed != size:
                raise OptionError(f"the model's input is fixed at {fixed[0]}x{fixed[1]}; --size {size[0]}x{size[1]} "
                                  "cannot change it (drop --size)")
            for side, given, graph in zip(("height", "width"), size, self._graph_sides, strict=True):
                if graph is not None and given != graph:
                    raise OptionError(f"the model's input {side} is fixed at {graph}; --size {size[0]}x{size[1]} "
                                      f"cannot change it (keep the {side} at {graph})")
            self._size_given = True
        if pre is None and mean is None and std is None:
            if size is not None:
                self._preprocessing = (self.preprocessing.with_(size=size), self.preprocessing_source)
            return
        base = self.preprocessing
        if isinstance(pre, str):
            base = preprocess.Preprocessing.preset(pre, size=base.size)
        elif isinstance(pre, preprocess.Preprocessing):
            base = pre
        elif pre is not None:
            raise OptionError("preprocessing must be a Preprocessing or a preset name "
                              f"({', '.join(preprocess.PRESETS)}), not {type(pre).__name__}")
        if isinstance(pre, preprocess.Preprocessing) and pre.size is not None:
            self._size_given = True
        base = base.with_(mean=mean, std=std, layout=self.input.layout or "NCHW", channels=self.input.channels or 3,
                          size=size)
        block = self.baked_preprocessing
        wanted = preprocess.Preprocessing(**{**block.fields, "layout": base.layout, "channels": base.channels}) \
            if block is not None else None
        if block is not None and wanted is not None and not (np.allclose(base._stats()[0], wanted._stats()[0]) and
                                                             np.allclose(base._stats()[1], wanted._stats()[1]) and
                                                             base.scale == wanted.scale):
            warnings.warn(f"onnxviz: {self.name}: {block.describe()}; the preprocessing given (mean {base.mean}, std "
                          f"{base.std}) normalizes it a second time", InputWarning, stacklevel=3)
        self._preprocessing = (base, "given")

    def probe_input(self, n: int | None = None, seed: int = 0) -> np.ndarray:
        """A deterministic random input of the model's shape (batch `n`, else the fixed batch or 2)."""
        n = n or self.input.fixed_batch or 2
        shape = list(self.input.shape)
        if self.input.layout:
            h, w = self.input_size
            rows, cols = self.input.axes.spatial_axes
            shape[rows], shape[cols] = h, w
        shape = [n, *(d if isinstance(d, int) and d > 0 else 1 for d in shape[1:])]
        rng = np.random.default_rng(seed)
        if np.issubdtype(self.input.dtype, np.integer):  # integers of its type, as the graph will be fed them
            top = min(255, int(np.iinfo(self.input.dtype).max))
            return rng.integers(0, top + 1, shape).astype(self.input.batch_dtype)
        return rng.standard_normal(shape).astype(self.input.batch_dtype)

    # -- outputs and targets ----------------------------------------------------------------------------
    def score_tensor(self, target: Target) -> tuple[str, bool]:
        """(tensor to score, whether to apply softmax): the logits behind a trailing Softmax by default."""
        if target.output is None and len(self.outputs) > 1:
            shapes = {o.name: list(dims(o)) for o in self.proto.graph.output}
            listed = ", ".join(f"{k} {v}" for k, v in shapes.items())
            raise TargetError(f"the model has {len(self.outputs)} outputs ({listed}); choose the one to explain with "
                              f"--output NAME (Python: Target(k, output=NAME))")
        output = target.output or self.outputs[0]
        if output not in self.outputs:
            raise TargetError(f"no output named {output!r}; the model's outputs are: {', '.join(self.outputs)}")
        self._check_scores(output)
        if output in self.softmax_tails:
            return (output, False) if target.softmax else (self.softmax_tails[output], False)
        return output, target.softmax

    def _check_scores(self, output: str) -> None:
        """Refuse an output that cannot hold per-image scores, by its declared type and shape."""
        value = next(o for o in self.proto.graph.output if o.name == output)
        elem = value.type.tensor_type.elem_type
        floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
        shape = list(dims(value)) if value.type.tensor_type.HasField("shape") else None
        if elem not in floats:
            kind = onnx.helper.tensor_dtype_to_string(elem).replace("TensorProto.", "").lower()
            raise TargetError(f"output {output!r} holds {kind} values (class labels or indices?), not scores; "
                              "onnxviz explains scores such as logits or probabilities: choose that output with "
                              "--output, or export the model without its final ArgMax")
        if shape is not None and len(shape) == 0:
            raise TargetError(f"output {output!r} is a single number for the whole batch, not one score per image; "
                              "explain an output with a batch axis first")
        if shape is not None and len(shape) >= 2 and shape[1] == 0:
            raise TargetError(f"output {output!r} has shape {shape}: no classes to explain")

    # -- layers -----------------------------------------------------------------------------------------
    def layer(self, name: str | None) -> Layer:
        """Resolve a tensor name, node name or alias; None means the default CAM layer."""
        return resolve_layer(self.layers, name or "auto", self.source, self._image_size, self.default_layer)

    # -- backends ---------------------------------------------------------------------------------------
    def run(self, x: np.ndarray, names: tuple[str, ...], batch_size: int = 32) -> list[np.ndarray]:
        """Tensors `names` for a batch of any size through onnxruntime, in chunks (a fixed batch respected)."""
        names = tuple(names)
        return run_batched(lambda xb: self.ort.run(xb, names), (x,), batch_size, self.input.fixed_batch, names=names)

    @cached_property
    def ort(self) -> OrtBackend:
        return OrtBackend(self.proto, self.input.name, self.input.dtype, self.device, self.limits)

    @cached_property
    def torch(self):
        """The onnx2torch conversion, checked against onnxruntime on a probe input (see `parity`)."""
        try:  # If nodes that branch on shapes alone take their branch at the probe's shape (onnx2torch has no If)
            def evaluate(names: tuple[str, ...]) -> list[np.ndarray]:
                return self.ort.run(self.probe_input(), names)

            specialized = unroll.unroll_loops(specialize.inline_ifs(self.proto, evaluate), evaluate)
            backend = TorchBackend(specialized, self.device, self.limits)
        except ConversionError as exc:
            self.conversion_error = str(exc)
            raise
        import torch

        probe = self.probe_input()
        names = tuple(self.outputs)
        ref = self.ort.run(probe, names)
        try:
            with torch.no_grad():
                got = [t.detach().cpu().numpy() for t in backend.forward(backend.to_tensor(probe), names)]
        except OnnxvizError:
            raise
        except Exception as exc:  # a converted graph that cannot run is a conversion problem, said in one line
            self.conversion_error = f"the PyTorch conversion fails to run: {type(exc).__name__}: {first_line(exc)}"
            raise ConversionError(f"{self.conversion_error[:400]}. Gradient methods need it; forward-only methods "
                                  "(occlusion, rise, scorecam) still work") from None
        diff = max(_max_difference(a, b) for a, b in zip(ref, got, strict=True))
        scale = max(float(np.abs(a[np.isfinite(a)]).max(initial=0)) for a in ref)
        tolerance = qdq.parity_tolerance(self.proto, precision.parity_tolerance(self.proto, self.parity_tolerance))
        self.parity = Parity(diff, scale, tolerance)
        return backend

    def gradient_backend(self):
        """The torch backend, refused when it disagrees with onnxruntime beyond the tolerance."""
        backend = self.torch
        if not self.parity.ok:
            raise ConversionError(
                f"the PyTorch conversion disagrees with onnxruntime ({self.parity}); gradient methods would explain "
                "a different function. If the difference is acceptable, raise the tolerance: "
                "load(..., parity_tolerance=...) or --parity-tol."
            )
        return backend

    def torch_from(self, layer: str, outputs: tuple[str, ...]) -> TorchBackend:
        """The converted subgraph computing `outputs` from tensor `layer` alone (cached): the head, to run on other
        tensors of that shape. Refused when a branch after `layer` also reads the image."""
        key = (layer, tuple(outputs))
        if key not in self._heads:
            self.gradient_backend()  # the whole graph converts with parity first
            sub = cut_from(self.proto, layer, tuple(outputs))
            extra = [i.name for i in sub.graph.input if i.name != layer]
            if extra:
                raise ConversionError(f"the network after {layer} also reads {', '.join(extra)}: its head cannot run "
                                      "on another tensor alone")
            self._heads[key] = TorchBackend(sub, self.device, self.limits)
        return self._heads[key]

    def __repr__(self) -> str:
        return f"Model({self.source!r}, input={self.input.shape} {self.input.layout}, outputs={self.outputs})"


def load(source: str | os.PathLike | bytes | onnx.ModelProto, *, layout: str | None = None, normalize: bool = True,
         device: str = "cpu", parity_tolerance: float = DEFAULT_PARITY_TOLERANCE, limits: Limits | None = None,
         preprocessing: preprocess.Preprocessing | str | None = None, size: tuple[int, int] | None = None) -> Model:
    """Load an ONNX model from a path, bytes or a ModelProto: validate it (in a worker process, within `limits`),
    then check, normalize and inspect it. `preprocessing` (a Preprocessing or a preset name) overrides what the
    model's metadata says; every image read for this model uses it. `size` (height, width): the input size of a
    graph that leaves it open (it is probed and its layers are read at that size; default: the metadata's, or
    224 x 224)."""
    if not isinstance(source, (str, os.PathLike, bytes, bytearray, onnx.ModelProto)):
        raise ModelError(f"load takes a path, bytes or an onnx.ModelProto, not {type(source).__name__}")
    if device not in ("cpu", "cuda"):
        raise ModelError(f"device must be cpu or cuda, not {device!r}")
    if limits is not None and not isinstance(limits, Limits):
        raise ModelError(f"limits must be an onnxviz.Limits, not {type(limits).__name__}")
    proto, name = open_model(source, limits)
    return Model(proto, name, layout=layout, normalize=normalize, device=device, parity_tolerance=parity_tolerance,
                 limits=limits, preprocessing=preprocessing, size=size)
