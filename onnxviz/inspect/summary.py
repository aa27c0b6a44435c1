"""Model summary: parameters, a FLOPs estimate and the receptive field of every layer.

FLOPs count multiply-adds twice, for one image: Conv 2 * (C_in / groups) * kH * kW * C_out * H_out * W_out,
Gemm / MatMul 2 * M * K * N; other ops are not counted (they are a small share of a CNN's work).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from ..errors import OnnxvizError
from ..model import Model
from ..text import count_text, shape_text
from .receptive import Field, receptive_fields

FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}


@dataclass(frozen=True)
class LayerSummary:
    name: str
    op_type: str
    shape: tuple
    params: int
    flops: int
    field: Field | None


def _numel(dims) -> int:
    return int(np.prod([d for d in dims], dtype=np.int64)) if len(dims) else 1


def _shape_of(name: str, shapes: dict[str, tuple]) -> tuple:
    return tuple(d if isinstance(d, int) and d > 0 else 1 for d in shapes.get(name, ()))


def _flops(node: onnx.NodeProto, shapes: dict[str, tuple], inits: dict[str, tuple]) -> int:
    out = _shape_of(node.output[0], shapes) if node.output else ()
    if node.op_type == "Conv" and len(node.input) > 1 and len(out) >= 3:
        w = inits.get(node.input[1]) or _shape_of(node.input[1], shapes)
        if len(w) < 3:
            return 0
        # w = (C_out, C_in / groups, kH, kW): each output value costs C_in / groups * kH * kW multiply-adds
        return 2 * _numel(w[1:]) * _numel(out[1:])
    if node.op_type in ("Gemm", "MatMul") and len(node.input) > 1:
        a = _shape_of(node.input[0], shapes)
        b = inits.get(node.input[1]) or _shape_of(node.input[1], shapes)
        if len(a) < 2 or len(b) < 2 or not out:
            return 0
        k = a[-1] if not any(x.name == "transA" and x.i for x in node.attribute) else a[-2]
        return 2 * k * _numel(out[1:]) if len(out) > 1 else 2 * k * out[0]
    return 0


def _pinned_shapes(model: Model) -> dict[str, tuple]:
    """Tensor shapes for one image at the model's input size: a graph that leaves H and W open is shape-inferred
    again with them pinned (else its FLOPs would be counted at 1 x 1)."""
    shapes = {layer.name: layer.shape for layer in model.layers}
    if not model.input.layout or all(isinstance(d, int) for d in model.input.shape[1:]):
        return shapes
    pinned = onnx.ModelProto()
    pinned.CopyFrom(model.proto)
    value = next(v for v in pinned.graph.input if v.name == model.input.name)
    concrete = [1, *(d if isinstance(d, int) and d > 0 else 1 for d in model.input.shape[1:])]
    rows, cols = model.input.axes.spatial_axes
    concrete[rows], concrete[cols] = model.input_size
    for dim, size in zip(value.type.tensor_type.shape.dim, concrete, strict=True):
        dim.Clear()
        dim.dim_value = size
    del pinned.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(pinned, data_prop=True)
    except Exception:  # inference errors are the checker's and onnxruntime's to report
        return shapes
    for v in [*inferred.graph.value_info, *inferred.graph.output]:
        if v.type.tensor_type.HasField("shape"):
            shapes[v.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                                   for d in v.type.tensor_type.shape.dim)
    shapes[model.input.name] = tuple(concrete)
    return shapes


def summarize(model: Model) -> list[LayerSummary]:
    """One row per node output, in graph order (shapes for one image at the model's input size)."""
    proto = model.proto
    inits = {i.name: tuple(i.dims) for i in proto.graph.initializer if i.data_type in FLOATS}
    shapes = _pinned_shapes(model)
    shapes.update({i.name: tuple(d.dim_value or 1 for d in i.type.tensor_type.shape.dim) for i in proto.graph.input
                   if i.name not in shapes})
    fields = receptive_fields(proto)
    rows = []
    for node in proto.graph.node:
        params = sum(_numel(inits[i]) for i in node.input if i in inits)
        if node.op_type == "Constant":
            params = 0
        flops = _flops(node, shapes, inits)
        for out in node.output[:1]:
            rows.append(LayerSummary(out, node.op_type, shapes.get(out, ()), params, flops, fields.get(out)))
    return rows


def totals(model: Model) -> tuple[int, int]:
    """(parameters: floating-point initializers and Constant tensors, not integer shapes or axes; FLOPs
    estimate per image)."""
    proto = model.proto
    tensors = list(proto.graph.initializer)
    for node in proto.graph.node:
        value = next((a for a in node.attribute if a.name == "value"), None) if node.op_type == "Constant" else None
        if value is not None:
            tensors.append(helper.get_attribute_value(value))
    params = sum(_numel(t.dims) for t in tensors if t.data_type in FLOATS)
    return params, sum(row.flops for row in summarize(model))


def facts(model: Model, with_torch: bool = True) -> list[tuple[str, str]]:
    """What `onnxviz info` and the HTML report say about a model: (key, value) rows."""
    spec = model.input
    batch = f"fixed at {spec.fixed_batch} (larger batches are split)" if spec.fixed_batch else "dynamic"
    rows = [
        ("model", f"{model.source}  (sha256 {model.hash})"),
        ("producer", model.producer or "unknown"),
        ("opset", str(model.opset)),
        ("input", f"{spec.name}  {spec.dtype}  {shape_text(spec.shape)}  layout {spec.layout or 'n/a'}  batch {batch}"),
        ("outputs", ", ".join(model.outputs)),
        ("graph", model.normalization),
        ("precision", model.precision),
    ]
    for out, logits in model.softmax_tails.items():
        rows.append(("softmax", f"{out} ends in Softmax: targets explain the logits {logits!r} "
                                "(use softmax:N for probabilities)"))
    layer = model.default_layer
    rows.append(("CAM layer", f"{layer.name} ({layer.op_type}, {shape_text(layer.shape)})" if layer else "none"))
    pre = model.preprocessing
    colour = "grey" if pre.channels == 1 else pre.channel_order
    rows.append(("preprocess", f"mean {pre.mean} std {pre.std} scale {pre.scale} {colour} "
                               f"size {model.input_size[0]}x{model.input_size[1]}"))
    rows.append(("  from", f"preprocessing: {model.preprocessing_source}; size: {model.size_source}"))
    for note in model.assumptions():
        rows.append(("GUESS", note))
    if model.nonfinite_weights:
        rows.append(("weights", f"NaN or Inf in {', '.join(model.nonfinite_weights[:5])}"))
    params, flops = totals(model)
    h, w = model.input_size
    rows.append(("size", f"{count_text(params)} parameters, {count_text(flops)} FLOPs per {h}x{w} image "
                         "(Conv + Gemm/MatMul)"))
    if not with_torch:
        rows.append(("torch", "not checked (--no-torch)"))
        return rows
    try:
        model.torch  # noqa: B018  (converts and measures parity)
        rows.append(("torch", f"converted; {model.parity}"))
    except OnnxvizError as exc:
        rows.append(("torch", f"unavailable: {exc}"))
    return rows
