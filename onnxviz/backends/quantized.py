"""Quantized graphs for the torch backend, as the float function they compute: QuantizeLinear is fake quantization
(round to the integer grid and clamp, values kept as floats) with a straight-through gradient inside the range and
none outside (the rule of torch.fake_quantize); DequantizeLinear maps back to floats (int8 weights dequantized as
they are read); DynamicQuantizeLinear, MatMulInteger and ConvInteger (onnxruntime's dynamic quantization) compute in
floats on the same integer grids. Gradients are then exact for what the int8 model computes, up to its rounding.
The graph-level part (folding int8 weights, refusing fused kernels, parity) is in `qdq`, which needs no torch."""

from __future__ import annotations

import numpy as np
import torch
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import OnnxToTorchModule, OperationConverterResult, onnx_mapping_from_node
from torch import nn

RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255), np.dtype(np.int16): (-32768, 32767),
          np.dtype(np.uint16): (0, 65535), np.dtype(np.int32): (-(2**31), 2**31 - 1)}
ONNX_TYPES = {3: np.int8, 2: np.uint8, 5: np.int16, 4: np.uint16, 6: np.int32}  # TensorProto element types
VERSIONS = (10, 13, 19, 21, 23, 24, 25)


def _along(value: torch.Tensor, axis: int, like: torch.Tensor) -> torch.Tensor:
    """A per-tensor (scalar) or per-axis (1-D) quantization parameter shaped to broadcast against `like`."""
    value = value.to(torch.float32)
    if value.dim() == 0 or value.numel() == 1:
        return value.reshape(())
    shape = [1] * like.dim()
    shape[axis % like.dim()] = -1
    return value.reshape(shape)


def _round(x: torch.Tensor) -> torch.Tensor:
    """Round half to even (as ONNX), the gradient passing straight through."""
    return x + (torch.round(x) - x).detach()


class FakeQuantize(nn.Module, OnnxToTorchModule):
    """QuantizeLinear on floats: clamp(round(x / scale) + zero_point, low, high), still a float tensor."""

    def __init__(self, axis: int, low: int, high: int):
        super().__init__()
        self.axis, self.low, self.high = axis, low, high

    def forward(self, x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | None = None) -> torch.Tensor:
        q = _round(x / _along(scale, self.axis, x))
        if zero_point is not None:
            q = q + _along(zero_point, self.axis, x)
        return q.clamp(self.low, self.high)


class Dequantize(nn.Module, OnnxToTorchModule):
    """DequantizeLinear: (x - zero_point) * scale, in float32 whatever x's integer type."""

    def __init__(self, axis: int):
        super().__init__()
        self.axis = axis

    def forward(self, x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | None = None) -> torch.Tensor:
        x = x.to(torch.float32)
        if zero_point is not None:
            x = x - _along(zero_point, self.axis, x)
        return x * _along(scale, self.axis, x)


class DynamicQuantize(nn.Module, OnnxToTorchModule):
    """DynamicQuantizeLinear: the uint8 grid spanning [min(x, 0), max(x, 0)], the values on it (floats), its scale
    and zero point."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        low, high = x.detach().min().clamp(max=0), x.detach().max().clamp(min=0)
        scale = (high - low) / 255
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        zero = torch.round(-low / scale).clamp(0, 255)
        return (_round(x / scale) + zero).clamp(0, 255), scale, zero


class IntegerMatMul(nn.Module, OnnxToTorchModule):
    """MatMulInteger in floats: (A - a_zero) @ (B - b_zero), B's zero point per output column."""

    def forward(self, a: torch.Tensor, b: torch.Tensor, a_zero: torch.Tensor | None = None,
                b_zero: torch.Tensor | None = None) -> torch.Tensor:
        a, b = a.to(torch.float32), b.to(torch.float32)
        if a_zero is not None:
            a = a - a_zero.to(torch.float32).reshape(-1, 1) if a_zero.numel() > 1 else a - a_zero.to(torch.float32)
        if b_zero is not None:
            b = b - b_zero.to(torch.float32)
        return a @ b


class IntegerConv(nn.Module, OnnxToTorchModule):
    """ConvInteger in floats: conv(x - x_zero, w - w_zero), w's zero point per output channel."""

    def __init__(self, stride: list[int], padding: list[int], dilation: list[int], groups: int):
        super().__init__()
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def forward(self, x: torch.Tensor, w: torch.Tensor, x_zero: torch.Tensor | None = None,
                w_zero: torch.Tensor | None = None) -> torch.Tensor:
        x, w = x.to(torch.float32), w.to(torch.float32)
        if x_zero is not None:
            x = x - x_zero.to(torch.float32)
        if w_zero is not None:
            w = w - _along(w_zero, 0, w)
        half = len(self.padding) // 2
        begin, end = self.padding[:half], self.padding[half:]
        if begin != end:
            pairs = [p for b, e in zip(reversed(begin), reversed(end), strict=True) for p in (b, e)]
            x, padding = nn.functional.pad(x, pairs), [0] * half
        else:
            padding = begin
        conv = {1: nn.functional.conv1d, 2: nn.functional.conv2d, 3: nn.functional.conv3d}[w.dim() - 2]
        return conv(x, w, None, self.stride, padding, self.dilation, self.groups)


def _range(node: OnnxNode, graph: OnnxGraph) -> tuple[int, int]:
    """The integer grid of a QuantizeLinear: its zero point's type, else output_dtype, else uint8 (the default)."""
    inputs = node.input_values
    if len(inputs) > 2 and inputs[2] and inputs[2] in graph.initializers:
        kind = np.dtype(graph.initializers[inputs[2]].to_numpy().dtype)
    else:
        kind = np.dtype(ONNX_TYPES.get(int(node.attributes.get("output_dtype", 2)), np.uint8))
    if kind not in RANGES:
        raise NotImplementedError(f"QuantizeLinear to {kind} is not supported (int8, uint8, int16, uint16, int32 are)")
    return RANGES[kind]


def _check(node: OnnxNode) -> None:
    if node.attributes.get("block_size", 0):
        raise NotImplementedError(f"{node.operation_type} with block_size (blocked quantization) is not supported")


def quantize(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    _check(node)
    module = FakeQuantize(int(node.attributes.get("axis", 1)), *_range(node, graph))
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


def dequantize(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    _check(node)
    module = Dequantize(int(node.attributes.get("axis", 1)))
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


def dynamic_quantize(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    return OperationConverterResult(torch_module=DynamicQuantize(), onnx_mapping=onnx_mapping_from_node(node))


def matmul_integer(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    return OperationConverterResult(torch_module=IntegerMatMul(), onnx_mapping=onnx_mapping_from_node(node))


def conv_integer(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    attrs = node.attributes
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise NotImplementedError("ConvInteger with auto_pad SAME is not supported")
    weight = graph.initializers.get(node.input_values[1])
    spatial = (weight.to_numpy().ndim - 2) if weight is not None else 2
    module = IntegerConv(list(attrs.get("strides", [1] * spatial)), list(attrs.get("pads", [0] * 2 * spatial)),
                         list(attrs.get("dilations", [1] * spatial)), int(attrs.get("group", 1)))
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))

