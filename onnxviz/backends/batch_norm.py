"""ONNX BatchNormalization at inference as one affine map per channel, x * scale + shift, instead of torch's
BatchNorm kernels: on CPU (PyTorch 2.x) BatchNorm2d's eval backward returns a wrong input gradient when the
incoming gradient has channels-last strides with an odd batch stride (N = 1), which a flatten-transpose after it
produces (LeViT's stem; tests/test_backbones.py shows the native module hitting it). Training-mode nodes and
statistics computed at run time keep onnx2torch's converter."""

from __future__ import annotations

import numpy as np
import torch
from onnx2torch.node_converters import get_converter
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import OnnxMapping, OnnxToTorchModule, OperationConverterResult
from torch import nn

VERSIONS = (9, 14, 15)


class ChannelAffine(nn.Module, OnnxToTorchModule):
    """y = x * scale[c] + shift[c] along axis 1, whatever the rank."""

    def __init__(self, scale: np.ndarray, shift: np.ndarray):
        super().__init__()
        self.scale = nn.Parameter(torch.from_numpy(scale))
        self.shift = nn.Parameter(torch.from_numpy(shift))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.scale.view(shape) + self.shift.view(shape)


def converter(version: int):
    original = get_converter("BatchNormalization", version)

    def convert(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
        inputs = list(node.input_values)
        stats = [graph.initializers.get(name) for name in inputs[1:5]]
        if node.attributes.get("training_mode", 0) or len(node.output_values) > 1 or any(s is None for s in stats):
            return original(node, graph)
        scale, bias, mean, var = (s.to_numpy().astype(np.float64) for s in stats)
        factor = scale / np.sqrt(var + float(node.attributes.get("epsilon", 1e-5)))
        dtype = stats[0].to_numpy().dtype
        module = ChannelAffine(factor.astype(dtype), (bias - mean * factor).astype(dtype))
        return OperationConverterResult(torch_module=module,
                                        onnx_mapping=OnnxMapping(inputs=(inputs[0],), outputs=node.output_values))

    return convert
