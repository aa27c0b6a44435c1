"""Reading a classifier head off the ONNX graph: global average pooling followed by one linear layer. Global
pooling is any node that provably averages the whole map: GlobalAveragePool, ReduceMean over the spatial axes
(of the layer's own layout), or an AveragePool whose kernel is the map's size with no padding (tf2onnx writes
Keras' GlobalAveragePooling and Caffe's pool5 that way)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import MethodError

if TYPE_CHECKING:  # plugins import this through Context: onnx (0.6 s) and the model's code load with a model
    import onnx

    from .model import Model

_PASS_THROUGH = ("Flatten", "Reshape", "Squeeze", "Identity", "Dropout")


def _attr(node: onnx.NodeProto, name: str, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _averages_whole_map(node: onnx.NodeProto, layer, const) -> bool:
    """Whether `node` reduces the layer's (N, C, H, W) or (N, H, W, C) map to its per-channel means."""
    if node.op_type == "GlobalAveragePool":
        return True
    if node.op_type == "ReduceMean":
        axes = _attr(node, "axes", None)
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = const(node.input[1])
        if axes is None:
            return False
        wanted = set(layer.axes.spatial_axes)
        spatial = wanted | {a - 4 for a in wanted}
        given = {int(a) % 4 for a in np.asarray(axes).ravel()}
        return given == wanted and set(np.asarray(axes).ravel().tolist()) <= spatial
    if node.op_type == "AveragePool":
        hw = layer.spatial if layer.axes.channel_axis == 1 else None  # pooling ops read channels first
        kernel = tuple(_attr(node, "kernel_shape", ()))
        pads = tuple(_attr(node, "pads", ()))
        auto_pad = _attr(node, "auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        return (hw is not None and all(isinstance(d, int) for d in hw) and kernel == tuple(hw)
                and not any(pads) and auto_pad in ("NOTSET", "VALID"))
    return False


def _pointwise(node: onnx.NodeProto, const) -> tuple[np.ndarray, np.ndarray] | None:
    """(W (K, C), b (K,)) of a 1x1 convolution with stride 1, no padding and one group; None for anything else."""
    if node.op_type != "Conv" or len(node.input) < 2 or (weight := const(node.input[1])) is None:
        return None
    if weight.ndim != 4 or weight.shape[2:] != (1, 1) or _attr(node, "group", 1) != 1:
        return None
    if any(_attr(node, "pads", [0])) or any(s != 1 for s in _attr(node, "strides", [1])):
        return None
    bias = const(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(weight.shape[0])
    return weight[:, :, 0, 0], bias


def gap_linear_head(model: Model, layer: str, score_tensor: str) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) such that score_tensor = W @ mean_hw(layer) + b, or a MethodError naming what is there instead. Heads
    read: global pooling then a Gemm / MatMul (+ Add); global pooling of one channel per class (W = I: the class's
    own channel is its map); a 1x1 convolution then global pooling (W = its kernel)."""
    from onnx import numpy_helper

    graph = model.proto.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    inits = {i.name: i for i in graph.initializer}

    def const(name: str) -> np.ndarray | None:
        return numpy_helper.to_array(inits[name]) if name in inits else None

    def next_node(tensor: str) -> onnx.NodeProto:
        found = consumers.get(tensor, [])
        if len(found) != 1:
            raise MethodError(f"cam needs a global-average-pooling + linear head after {layer!r}, but {tensor!r} "
                              f"feeds {len(found)} nodes; use gradcam (same map for such heads) instead")
        return found[0]

    def refuse(node: onnx.NodeProto) -> MethodError:
        return MethodError(f"cam needs a global-average-pooling + linear head after {layer!r}; found {node.op_type} "
                           f"({node.name or node.output[0]}). Use gradcam, which needs no particular head.")

    node = next_node(layer)
    conv = _pointwise(node, const) if model.layer(layer).axes.channel_axis == 1 else None
    if conv is not None:  # a 1x1 convolution commutes with the average: its weights are the linear head
        node = next_node(node.output[0])
    if not _averages_whole_map(node, model.layer(layer), const):
        raise refuse(node)
    tensor = node.output[0]
    while tensor != score_tensor:
        node = next_node(tensor)
        if not (node.op_type in _PASS_THROUGH or (node.op_type == "Transpose" and _attr(node, "perm", [0])[0] == 0)):
            break
        tensor = node.output[0]
    bias: Any  # an array of constants, or 0
    if tensor == score_tensor:  # the pooled channels are the scores: one channel per class, read directly
        channels = int(model.layer(layer).axes.channels(model.layer(layer).shape))
        weight, bias = conv if conv is not None else (np.eye(channels, dtype=np.float32), 0.0)
        out = tensor
    elif conv is not None:
        raise refuse(node)
    elif node.op_type == "Gemm" and node.input[0] == tensor and const(node.input[1]) is not None:
        weight = const(node.input[1]) * _attr(node, "alpha", 1.0)
        weight = weight if _attr(node, "transB", 0) else weight.T
        bias = const(node.input[2]) * _attr(node, "beta", 1.0) if len(node.input) > 2 and node.input[2] else 0.0
        out = node.output[0]
    elif node.op_type == "MatMul" and node.input[0] == tensor and (matrix := const(node.input[1])) is not None:
        weight, bias, out = matrix.T, 0.0, node.output[0]
        follower = consumers.get(out, [])
        if len(follower) == 1 and follower[0].op_type == "Add":
            other = [i for i in follower[0].input if i != out]
            if other and const(other[0]) is not None:
                bias, out = const(other[0]), follower[0].output[0]
    else:
        raise refuse(node)
    if out != score_tensor:
        raise MethodError(f"the linear head after {layer!r} ends in {out!r}, not in the explained output "
                          f"{score_tensor!r}; use gradcam")
    bias = np.broadcast_to(np.asarray(bias, np.float32), (weight.shape[0],))
    return weight.astype(np.float32), bias.astype(np.float32)
