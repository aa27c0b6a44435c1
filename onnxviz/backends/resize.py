"""Resize-18+ with `antialias=1`, which onnx2torch lacks: what PyTorch's own antialiased interpolation exports to
(timm's ViTs with a dynamic image size resample their position embedding with `_upsample_bicubic2d_aa`). It maps
back to `F.interpolate(..., antialias=True)`: the bilinear triangle filter, or the bicubic filter with a = -0.5
(Keys' kernel as PyTorch and Pillow use it when they antialias), half-pixel centres, weights renormalized at the
borders (`exclude_outside=1`). Anything else stays refused; parity with onnxruntime checks what is converted."""

from __future__ import annotations

import math

import torch
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import OnnxToTorchModule, OperationConverterResult, onnx_mapping_from_node
from torch import nn

MODES = {"linear": "bilinear", "cubic": "bicubic"}
CENTRES = ("half_pixel", "pytorch_half_pixel")


class AntialiasResize(nn.Module, OnnxToTorchModule):
    """An antialiased 2-D resize of an (N, C, H, W) tensor to the `sizes` input, or to floor(side x `scales`)."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor, roi: torch.Tensor | None = None, scales: torch.Tensor | None = None,
                sizes: torch.Tensor | None = None) -> torch.Tensor:
        if sizes is not None and sizes.numel():
            target = [int(v) for v in sizes.tolist()]
        elif scales is not None and scales.numel():
            target = [math.floor(side * float(s)) for side, s in zip(x.shape, scales.tolist(), strict=True)]
        else:
            raise ValueError("Resize needs scales or sizes")
        if x.dim() != 4 or target[:2] != list(x.shape[:2]):
            raise NotImplementedError("antialiased Resize of anything but the two last axes of a 4-D tensor")
        return nn.functional.interpolate(x, size=target[2:], mode=self.mode, align_corners=False, antialias=True)


def accepts(attrs: dict) -> bool:
    """Whether an antialiased Resize node's attributes are what `F.interpolate(antialias=True)` computes."""
    mode = attrs.get("mode", "nearest")
    cubic_ok = mode != "cubic" or attrs.get("cubic_coeff_a", -0.75) == -0.5
    return (mode in MODES and cubic_ok and attrs.get("exclude_outside", 0) == 1
            and attrs.get("coordinate_transformation_mode", "half_pixel") in CENTRES
            and not attrs.get("axes") and attrs.get("keep_aspect_ratio_policy", "stretch") == "stretch")


def converter(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    return OperationConverterResult(torch_module=AntialiasResize(MODES[node.attributes["mode"]]),
                                    onnx_mapping=onnx_mapping_from_node(node))
