"""Half-precision graphs for the torch backend: the same graph computed in float32. A model converted to fp16 (or
bf16) keeps its precision on onnxruntime, what production runs; its gradients are taken on this float32 copy (the
function up to fp16 rounding), where PyTorch's CPU kernels and autograd are exact, instead of feeding float32
batches to half-precision weights. Parity with onnxruntime is then checked at a tolerance scaled to the dtype."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

HALF: set[int] = {TensorProto.FLOAT16, TensorProto.BFLOAT16}
# relative error of one rounding, and a few dozen of them through a network: what parity allows on top of float32's
EPSILON: dict[int, float] = {TensorProto.FLOAT16: 2.0**-10, TensorProto.BFLOAT16: 2.0**-7}
ROUNDINGS = 32


def _tensor(tensor: TensorProto) -> None:
    if tensor.data_type in HALF:
        values = numpy_helper.to_array(tensor).astype(np.float32)
        tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))


def _value(value: onnx.ValueInfoProto) -> None:
    t = value.type.tensor_type
    if t.elem_type in HALF:
        t.elem_type = TensorProto.FLOAT


def _graph(graph: onnx.GraphProto) -> None:
    for tensor in graph.initializer:
        _tensor(tensor)
    for value in [*graph.input, *graph.output, *graph.value_info]:
        _value(value)
    for node in graph.node:
        for attr in node.attribute:
            if attr.name in ("to", "dtype", "output_dtype") and attr.type == onnx.AttributeProto.INT and attr.i in HALF:
                attr.i = TensorProto.FLOAT
            if attr.type == onnx.AttributeProto.TENSOR:
                _tensor(attr.t)
            if attr.type == onnx.AttributeProto.GRAPH:
                _graph(attr.g)
            for sub in attr.graphs:
                _graph(sub)


def half_types(proto: onnx.ModelProto) -> set[int]:
    """The half-precision element types the graph computes in (its input, outputs and weights)."""
    graph = proto.graph
    found = {v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]}
    found |= {t.data_type for t in graph.initializer}
    found |= {a.i for n in graph.node for a in n.attribute if a.name == "to" and a.type == onnx.AttributeProto.INT}
    return found & HALF


def as_float32(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with every float16 / bfloat16 weight, constant, cast and declared type made float32 (the proto
    itself when it has none)."""
    if not half_types(proto):
        return proto
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    _graph(copy.graph)
    return copy


def parity_tolerance(proto: onnx.ModelProto, tolerance: float) -> float:
    """`tolerance` (relative to max(1, |output|)), widened to what a half-precision graph's roundings allow."""
    found = half_types(proto)
    return max([tolerance, *(ROUNDINGS * EPSILON[t] for t in found)])
