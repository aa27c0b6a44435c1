"""Quantized graphs, at the graph level (no torch): int8 weights folded to the floats they stand for, the fused
quantized operators that have no float counterpart named, and the parity tolerance a QDQ graph's grids allow."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

FUSED = ("QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearAveragePool", "QLinearGlobalAveragePool",
         "QLinearConcat", "QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftmax", "QGemm", "QAttention")


def fold_weights(proto: onnx.ModelProto) -> onnx.ModelProto:
    """DequantizeLinear nodes whose inputs are all initializers (int8 weights and biases) replaced by the float
    initializers they compute: exact, and what onnx2torch's Conv / Gemm converters need (their weights as
    constants)."""
    inits = {i.name: i for i in proto.graph.initializer}
    constant = [n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input
                and all(not name or name in inits for name in n.input)]
    if not constant:
        return proto
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    inits = {i.name: i for i in copy.graph.initializer}
    keep = []
    for node in copy.graph.node:
        if node.op_type != "DequantizeLinear" or not all(not name or name in inits for name in node.input):
            keep.append(node)
            continue
        _check_blocks(node)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        q = numpy_helper.to_array(inits[node.input[0]]).astype(np.float64)
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        zero = (numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
                if len(node.input) > 2 and node.input[2] else np.zeros_like(scale))
        shape = [1] * q.ndim
        if scale.size > 1:
            shape[axis % q.ndim] = -1
        values = (q - zero.reshape(shape)) * scale.reshape(shape)
        copy.graph.initializer.append(numpy_helper.from_array(values.astype(np.float32), node.output[0]))
    del copy.graph.node[:]
    copy.graph.node.extend(keep)
    return copy


def _check_blocks(node) -> None:
    if any(a.name == "block_size" and a.i for a in node.attribute):
        raise NotImplementedError("DequantizeLinear with block_size (blocked quantization) is not supported")


def fused_operators(proto: onnx.ModelProto) -> list[str]:
    """Quantized operators that fuse integer kernels (QOperator format), which have no converter: their names."""
    return sorted({n.op_type for n in proto.graph.node if n.op_type in FUSED})


LSBS = 4  # onnxruntime's fused int8 kernels requantize with fixed-point multipliers: a step or two apart, compounded


def parity_tolerance(proto: onnx.ModelProto, tolerance: float) -> float:
    """`tolerance`, widened to a few steps of the coarsest grid an output is dequantized from (a QDQ graph)."""
    inits = {i.name: i for i in proto.graph.initializer}
    producer = {out: node for node in proto.graph.node for out in node.output}
    steps = []
    for output in proto.graph.output:
        node = producer.get(output.name)
        if node is not None and node.op_type == "DequantizeLinear" and node.input[1] in inits:
            steps.append(float(np.max(numpy_helper.to_array(inits[node.input[1]]))))
    return max([tolerance, *(LSBS * step for step in steps)])


def kind(proto: onnx.ModelProto) -> str:
    """How the graph is quantized: "QDQ", "dynamic", "fused kernels", or "" (not quantized)."""
    ops = {n.op_type for n in proto.graph.node}
    if ops & set(FUSED):
        return "fused kernels"
    if "DynamicQuantizeLinear" in ops:
        return "dynamic"
    return "QDQ" if ops & {"QuantizeLinear", "DequantizeLinear"} else ""
