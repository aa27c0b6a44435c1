"""Export PyTorch modules to ONNX the way users do: the legacy TorchScript exporter (dynamic batch) and the
current default dynamo exporter (fixed batch of 1), plus an NHWC wrapper that ends in Softmax (a Keras-style
graph)."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
import torchvision
from torch import nn


class Nhwc(nn.Module):
    """Takes NHWC input and returns the wrapped network's outputs: the same function, laid out channels-last."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.permute(0, 3, 1, 2))


class FlattenHead(nn.Module):
    """Two convolutions and a Flatten -> Linear head: every position reaches the head through its own weights, so
    gradients vary over space (unlike global-average-pooling heads). For height x width inputs, 5 classes."""

    def __init__(self, height: int, width: int, seed: int = 0, head_scale: float = 1.0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(8 * (height // 2) * (width // 2), 5)
        with torch.no_grad():
            self.head.weight.mul_(head_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class NhwcSoftmax(nn.Module):
    """Takes NHWC input and returns probabilities, as TF/Keras exports do."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x.permute(0, 3, 1, 2)), dim=1)


def export(net: nn.Module, path: str | Path, exporter: str = "legacy", size: int = 224, channels: int = 3,
           nhwc: bool = False, opset: int | None = None) -> Path:
    """legacy: TorchScript exporter, dynamic batch. dynamo: the default exporter, its fixed batch of 1."""
    path = Path(path)
    net = net.eval()
    shape = (1, size, size, channels) if nhwc else (1, channels, size, size)
    x = torch.rand(*shape)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=opset or 17, input_names=["input"],
                              output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        elif exporter == "dynamo":
            program = torch.onnx.export(net, (x,), dynamo=True, opset_version=opset or 20, verbose=False)
            program.save(str(path))
        else:
            raise ValueError(f"exporter must be legacy or dynamo, not {exporter!r}")
    return path


def torchvision_net(name: str, seed: int = 0, **kwargs) -> nn.Module:
    """A random-weight torchvision architecture (seeded), in eval mode."""
    torch.manual_seed(seed)
    builder = getattr(torchvision.models, name, None) or getattr(torchvision.models.segmentation, name)
    return builder(weights=None, **kwargs).eval()
