"""What onnx2torch needs to convert real exports: graph fixes, and the converters it lacks for newer
opsets, registered through onnx2torch's own `add_converter` registry (never a fork).

Measured with onnx2torch 1.5.15: legacy TorchScript exports fail on shared initializers behind Identity
nodes; every default (dynamo, opset 18+) export fails on ReduceMean-18 (axes as an input), Reshape-19
(allowzero=1), AveragePool-19, Gelu-20, Split-18; LayerNormalization is sized from the declared input shape,
which is symbolic in legacy Swin / MobileViT exports (`normalized_shape=[0]`). `benchmarks/op_coverage.py`
counts the onnx operator test cases that pass before and after this module.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from onnx2torch.node_converters import get_converter
from onnx2torch.node_converters import registry as converters
from onnx2torch.node_converters.reduce import _TORCH_FUNCTION_FROM_ONNX_TYPE
from onnx2torch.node_converters.registry import add_converter
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import OnnxMapping, OnnxToTorchModule, OperationConverterResult, onnx_mapping_from_node
from torch import nn

from . import batch_norm, quantized, resize

# Version bumps that only widened the accepted element types (bfloat16, float8, int4, ...): the newest
# converter onnx2torch has for the op is exactly right for them.
TYPE_ONLY_BUMPS: dict[int, tuple[str, ...]] = {
    16: ("GreaterOrEqual", "LessOrEqual"),
    19: ("Cast", "Constant", "Identity", "Reshape", "Shape", "Equal"),
    20: ("ConstantOfShape", "IsInf", "IsNaN"),
    21: ("Cast", "Constant", "ConstantOfShape", "Flatten", "Identity", "Reshape", "Shape", "Transpose", "Unsqueeze"),
    22: (
        "Acos", "Asin", "Atan", "Conv", "ConvTranspose", "Cos", "Dropout", "Elu", "EyeLike", "GlobalAveragePool",
        "HardSigmoid", "HardSwish", "InstanceNormalization", "MaxPool", "RoiAlign", "Round", "Selu", "Sin",
        "Softplus", "Softsign", "Tan",
    ),
    23: ("Cast", "Constant", "ConstantOfShape", "Flatten", "Identity", "Reshape", "Shape", "Squeeze", "Transpose",
         "Unsqueeze"),
    24: ("Cast", "Constant", "ConstantOfShape", "Flatten", "Identity", "Reshape", "Shape", "Squeeze", "Transpose",
         "Unsqueeze"),
    25: ("Cast", "Constant", "ConstantOfShape", "Flatten", "Identity", "Reshape", "Shape", "Squeeze", "Transpose",
         "Unsqueeze"),
    28: ("Cast", "Celu", "DepthToSpace", "Einsum", "Mod"),
}
REDUCE_OPS_WITH_AXES_INPUT = {
    18: ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
         "ReduceProd", "ReduceSumSquare"),
    20: ("ReduceMax", "ReduceMin"),
    28: ("ReduceLogSum", "ReduceLogSumExp"),
}


def _const(graph: OnnxGraph, name: str) -> np.ndarray | None:
    """The value of an initializer input, or None when it is computed at run time."""
    if name in graph.initializers:
        return graph.initializers[name].to_numpy()
    return None


class ReduceWithAxes(nn.Module, OnnxToTorchModule):
    """Reduce-18+: axes come as an (optional) input instead of an attribute."""

    def __init__(self, op_type: str, keepdims: bool, noop_with_empty_axes: bool):
        super().__init__()
        self.op_type, self.keepdims, self.noop = op_type, keepdims, noop_with_empty_axes

    def forward(self, x: torch.Tensor, axes: torch.Tensor | None = None) -> torch.Tensor:
        if axes is None or axes.numel() == 0:
            if self.noop:
                return x
            dims = list(range(x.dim()))
        else:
            dims = sorted(int(a) % x.dim() for a in axes.tolist())
        if self.op_type in ("ReduceMax", "ReduceMin"):
            fn = torch.amax if self.op_type == "ReduceMax" else torch.amin
            return fn(x, dim=dims, keepdim=self.keepdims)
        return _TORCH_FUNCTION_FROM_ONNX_TYPE[self.op_type](x, dim=dims, keepdim=self.keepdims)


def _reduce(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    module = ReduceWithAxes(
        node.operation_type,
        keepdims=bool(node.attributes.get("keepdims", 1)),
        noop_with_empty_axes=bool(node.attributes.get("noop_with_empty_axes", 0)),
    )
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


class ReshapeAllowZero(nn.Module, OnnxToTorchModule):
    """Reshape with allowzero=1: a 0 in the shape is a literal zero-sized dimension."""

    def forward(self, x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return torch.reshape(x, tuple(int(s) for s in shape.tolist()))


def _reshape(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    if node.attributes.get("allowzero", 0) == 1:
        return OperationConverterResult(torch_module=ReshapeAllowZero(), onnx_mapping=onnx_mapping_from_node(node))
    return get_converter("Reshape", 14)(node, graph)


class Gelu(nn.Module, OnnxToTorchModule):
    """Gelu-20 (exact, or the tanh approximation)."""

    def __init__(self, approximate: str):
        super().__init__()
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(x, approximate=self.approximate)


def _gelu(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    module = Gelu(node.attributes.get("approximate", "none"))
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


def _average_pool_19(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    dilations = node.attributes.get("dilations")
    if dilations and any(d != 1 for d in dilations):
        raise NotImplementedError("AveragePool with dilations != 1 is not supported by torch")
    return get_converter("AveragePool", 11)(node, graph)


class SplitEven(nn.Module, OnnxToTorchModule):
    """Split-18 with `num_outputs`: chunks of ceil(length / n), the last one smaller."""

    def __init__(self, axis: int, num_outputs: int):
        super().__init__()
        self.axis, self.num_outputs = axis, num_outputs

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(x, math.ceil(x.shape[self.axis] / self.num_outputs), dim=self.axis)


def _split_18(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    if "num_outputs" not in node.attributes:
        return get_converter("Split", 13)(node, graph)
    module = SplitEven(node.attributes.get("axis", 0), node.attributes["num_outputs"])
    mapping = OnnxMapping(inputs=node.input_values[:1], outputs=node.output_values)
    return OperationConverterResult(torch_module=module, onnx_mapping=mapping)


def _pad_18(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    if len(node.input_values) > 3 and node.input_values[3]:
        raise NotImplementedError("Pad with an `axes` input is not supported")
    return get_converter("Pad", 13)(node, graph)


def _resize_18(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    attrs = node.attributes
    if attrs.get("antialias", 0) and resize.accepts(attrs):
        return resize.converter(node, graph)
    if attrs.get("antialias", 0) or attrs.get("axes") or attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise NotImplementedError("Resize with antialias, axes or keep_aspect_ratio_policy is not supported")
    if attrs.get("coordinate_transformation_mode") == "half_pixel_symmetric":
        raise NotImplementedError("Resize with half_pixel_symmetric is not supported")
    return get_converter("Resize", 13)(node, graph)


class LayerNorm(nn.Module, OnnxToTorchModule):
    """LayerNormalization over axes `axis`.. of whatever shape comes in; scale and bias (parameters when they are
    initializers) broadcast over those axes as ONNX allows."""

    def __init__(self, axis: int, epsilon: float, scale: torch.Tensor | None, bias: torch.Tensor | None):
        super().__init__()
        self.axis, self.epsilon = axis, epsilon
        self.weight = None if scale is None else nn.Parameter(scale)
        self.bias = None if bias is None else nn.Parameter(bias)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        scale = self.weight if self.weight is not None else scale
        bias = self.bias if self.bias is not None else bias
        shape = x.shape[self.axis :]
        if scale is not None and scale.shape == shape and (bias is None or bias.shape == shape):
            return nn.functional.layer_norm(x, shape, scale, bias, self.epsilon)
        out = nn.functional.layer_norm(x, shape, eps=self.epsilon)
        out = out if scale is None else out * scale
        return out if bias is None else out + bias


def _layer_norm(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    if int(node.attributes.get("stash_type", 1)) != 1:
        raise NotImplementedError("LayerNormalization with stash_type other than float32 is not supported")
    inputs = list(node.input_values)
    names = [name for name in inputs[1:3] if name]
    values = [_const(graph, name) for name in names]
    if all(v is not None for v in values):  # initializers: the module owns them as parameters
        scale, bias = [*(torch.from_numpy(np.array(v)) for v in values), None][:2]
        mapping = OnnxMapping(inputs=(inputs[0],), outputs=node.output_values)
    else:
        scale = bias = None
        mapping = onnx_mapping_from_node(node)
    module = LayerNorm(int(node.attributes.get("axis", -1)), float(node.attributes.get("epsilon", 1e-5)), scale, bias)
    return OperationConverterResult(torch_module=module, onnx_mapping=mapping)


class Size(nn.Module, OnnxToTorchModule):
    """Size: the number of elements, an int64 scalar."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor(x.numel(), dtype=torch.int64, device=x.device)


def _size(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    return OperationConverterResult(torch_module=Size(), onnx_mapping=onnx_mapping_from_node(node))


def _replace(op_type: str, version: int, converter) -> None:
    """Register `converter` in place of onnx2torch's own for that op and version."""
    description = converters.OperationDescription(domain="", operation_type=op_type, version=version)
    converters._CONVERTER_REGISTRY.pop(description, None)
    add_converter(op_type, version)(converter)


def _alias(op_type: str, version: int) -> None:
    """Register the newest existing converter of `op_type` for a type-only version bump."""
    older = get_converter(op_type, version - 1)
    add_converter(op_type, version)(older)


_registered = False


def register() -> None:
    """Add our converters to onnx2torch's registry (idempotent)."""
    global _registered
    if _registered:
        return
    for version, ops in REDUCE_OPS_WITH_AXES_INPUT.items():
        for op in ops:
            add_converter(op, version)(_reduce)
    add_converter("AveragePool", 19)(_average_pool_19)
    add_converter("Gelu", 20)(_gelu)
    add_converter("Split", 18)(_split_18)
    add_converter("Resize", 18)(_resize_18)
    add_converter("Resize", 19)(_resize_18)
    for version in (18, 19, 21, 23, 24, 25):
        add_converter("Pad", version)(_pad_18)
    for version, ops in sorted(TYPE_ONLY_BUMPS.items()):
        for op in ops:
            if op == "Reshape":
                add_converter(op, version)(_reshape)
            else:
                _alias(op, version)
    add_converter("AveragePool", 22)(_average_pool_19)
    _replace("LayerNormalization", 17, _layer_norm)
    for version in quantized.VERSIONS:
        _replace("QuantizeLinear", version, quantized.quantize)
        _replace("DequantizeLinear", version, quantized.dequantize)
    _replace("DynamicQuantizeLinear", 11, quantized.dynamic_quantize)
    for version in (1, 13, 19, 21, 23, 24, 25):
        _replace("Size", version, _size)
    _replace("MatMulInteger", 10, quantized.matmul_integer)
    _replace("ConvInteger", 10, quantized.conv_integer)
    for version in batch_norm.VERSIONS:
        _replace("BatchNormalization", version, batch_norm.converter(version))
    _registered = True


def _same_pads(node: onnx.NodeProto, spatial: list[int]) -> list[int] | None:
    """Explicit pads equivalent to auto_pad SAME_UPPER / SAME_LOWER for known spatial sizes."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    mode = attrs.get("auto_pad", b"NOTSET")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in ("SAME_UPPER", "SAME_LOWER") or "kernel_shape" not in attrs:
        return None
    kernel = list(attrs["kernel_shape"])
    strides = list(attrs.get("strides", [1] * len(kernel)))
    dilations = list(attrs.get("dilations", [1] * len(kernel)))
    begins, ends = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begins.append(small if mode == "SAME_UPPER" else large)
        ends.append(large if mode == "SAME_UPPER" else small)
    return begins + ends


def _spatial_sizes(graph: onnx.GraphProto) -> dict[str, list[int]]:
    infos = [*graph.input, *graph.value_info, *graph.output]
    sizes = {}
    for info in infos:
        dims = info.type.tensor_type.shape.dim
        if len(dims) > 2 and all(d.HasField("dim_value") for d in dims[2:]):
            sizes[info.name] = [d.dim_value for d in dims[2:]]
    return sizes


def _fill_clip_bounds(node: onnx.NodeProto, graph: onnx.GraphProto, inits: dict) -> None:
    given = [i for i in node.input[1:3] if i]
    if len(given) == 2 or any(i not in inits for i in given):
        return
    dtype = numpy_helper.to_array(inits[given[0]]).dtype if given else np.dtype(np.float32)
    info: np.finfo | np.iinfo = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype)  # type: ignore[arg-type]
    while len(node.input) < 3:
        node.input.append("")
    for k, extreme in ((1, info.min), (2, info.max)):
        if not node.input[k]:
            name = f"{node.output[0]}__clip_{'min' if k == 1 else 'max'}"
            tensor = numpy_helper.from_array(np.array(extreme, dtype=dtype), name)
            graph.initializer.append(tensor)
            inits[name] = tensor
            node.input[k] = name


def fix_graph(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite patterns onnx2torch mishandles without changing any tensor name or result:

    - Identity nodes whose input is an initializer (the legacy exporter shares weights this way) become
      initializers of their own under the Identity's output name;
    - Reshape with allowzero=1 and a constant shape without zeros is the same as allowzero=0;
    - Conv / MaxPool / AveragePool with auto_pad SAME_* get the explicit pads it means (static shapes);
    - Dropout (inference: the identity) whose mask nobody reads becomes Identity;
    - Clip-11+ with an omitted min or max gets the dtype's extreme as a constant bound.
    """
    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    graph = fixed.graph
    if any(a.name == "auto_pad" for n in graph.node for a in n.attribute):
        try:
            fixed = onnx.shape_inference.infer_shapes(fixed)
            graph = fixed.graph
        except Exception:  # without shapes the SAME pads stay as they are
            pass
    sizes = _spatial_sizes(graph)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    inits = {i.name: i for i in graph.initializer}
    keep = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(inits[node.input[0]])
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
            inits[tensor.name] = tensor
            continue
        if node.op_type in ("Conv", "MaxPool", "AveragePool") and node.input[0] in sizes:
            pads = _same_pads(node, sizes[node.input[0]])
            half = len(pads or []) // 2
            excludes_pad = node.op_type == "AveragePool" and not any(
                a.name == "count_include_pad" and a.i for a in node.attribute)
            if pads is not None and not (excludes_pad and pads[:half] != pads[half:]):  # torch pads would count
                kept = [a for a in node.attribute if a.name not in ("auto_pad", "pads")]
                del node.attribute[:]
                node.attribute.extend([*kept, onnx.helper.make_attribute("pads", pads)])
        if node.op_type == "Dropout" and not (len(node.output) > 1 and node.output[1] in used):
            node.CopyFrom(onnx.helper.make_node("Identity", node.input[:1], node.output[:1], name=node.name))
        if node.op_type == "Clip" and not any(a.name in ("min", "max") for a in node.attribute):
            _fill_clip_bounds(node, graph, inits)
        if node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]])
            if not (shape == 0).any():
                for attr in node.attribute:
                    if attr.name == "allowzero":
                        attr.i = 0
        keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)
    return fixed
