"""Hand-built ONNX graphs with analytic answers (oracles)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _model(nodes, inputs, outputs, inits, opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="onnxviz-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def linear(weights: np.ndarray, bias: np.ndarray, shape: tuple[int, int, int] = (1, 4, 4), batch: int | str = "N",
           softmax: bool = False) -> onnx.ModelProto:
    """logits = W @ flatten(x) + b for x of shape (N, *shape); W has shape (classes, prod(shape))."""
    classes = weights.shape[0]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, *shape])
    out_name = "probs" if softmax else "logits"
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [batch, classes])
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "b"], ["logits"], transB=1),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
    return _model(nodes, [x], [y], {"W": weights.astype(np.float32), "b": bias.astype(np.float32)})


def gap_net(conv_w: np.ndarray, fc_w: np.ndarray, size: int | tuple[int, int] = 6,
            batch: int | str = "N") -> onnx.ModelProto:
    """x -> Conv(3x3, pad 1) -> Relu -> GlobalAveragePool -> Flatten -> Gemm: a CAM-shaped network."""
    in_channels = conv_w.shape[1]
    classes = fc_w.shape[0]
    h, w = (size, size) if isinstance(size, int) else size
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, in_channels, h, w])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])
    nodes = [
        helper.make_node("Conv", ["x", "Wc"], ["conv"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["conv"], ["act"]),
        helper.make_node("GlobalAveragePool", ["act"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "Wf"], ["logits"], transB=1),
    ]
    return _model(nodes, [x], [y], {"Wc": conv_w.astype(np.float32), "Wf": fc_w.astype(np.float32)})


def pooled_net(conv_w: np.ndarray, fc_w: np.ndarray, size: tuple[int, int] = (6, 10), pool: str = "average",
               transpose: bool = False) -> onnx.ModelProto:
    """x -> Conv(3x3, pad 1) -> Relu -> pooling -> [Transpose to NHWC] -> Flatten -> MatMul + Add, on a non-square
    map. pool: "average" (AveragePool with the map's size as kernel: global, as tf2onnx writes it), "partial"
    (a kernel of half the map: not global), "padded" (the map's size but padded: not an average of the map)."""
    in_channels, classes = conv_w.shape[1], fc_w.shape[0]
    h, w = size
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", in_channels, h, w])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])
    kernel = {"average": [h, w], "partial": [h // 2, w // 2], "padded": [h, w]}[pool]
    pads = [1, 1, 1, 1] if pool == "padded" else [0, 0, 0, 0]
    nodes = [
        helper.make_node("Conv", ["x", "Wc"], ["conv"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["conv"], ["act"]),
        helper.make_node("AveragePool", ["act"], ["pool"], kernel_shape=kernel, pads=pads, strides=kernel),
    ]
    last = "pool"
    if transpose:
        nodes.append(helper.make_node("Transpose", ["pool"], ["pool_nhwc"], perm=[0, 2, 3, 1]))
        last = "pool_nhwc"
    nodes += [helper.make_node("Flatten", [last], ["flat"], axis=1),
              helper.make_node("MatMul", ["flat", "Wf"], ["mm"]), helper.make_node("Add", ["mm", "bf"], ["logits"])]
    bias = np.arange(classes, dtype=np.float32)
    return _model(nodes, [x], [y], {"Wc": conv_w.astype(np.float32), "Wf": fc_w.T.astype(np.float32), "bf": bias})


def conv3x3(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The gap_net convolution in numpy: (C, H, W) -> (K, H, W), cross-correlation with zero padding 1."""
    _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    return sum(np.einsum("kc,chw->khw", weights[:, :, dy, dx], padded[:, dy : dy + h, dx : dx + w])
               for dy in range(3) for dx in range(3))
