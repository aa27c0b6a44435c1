"""Seeded detectors for the detection-target tests: ultralytics YOLOv8n / YOLO11n / YOLOv10n built from their yaml
(random weights, nothing downloaded), their class scores spread so that random weights give detections, and a tiny
YOLOv5-style head `(N, A, 5 + C)` with objectness. Each is exported by the legacy exporter with a dynamic batch."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import torch
from torch import nn

SIZE = (128, 160)  # non-square: a transposed grid or swapped box coordinates fail


def yolo(config: str = "yolov8n.yaml", classes: int = 3, seed: int = 0, end2end: bool = False) -> nn.Module:
    """An ultralytics detection model in export mode (it returns (N, 4 + C, A), or (N, 300, 6) with `end2end`).
    ultralytics starts its class biases at a prior of ~0.01; they are set so that random weights score candidates
    around 0.3, with spread, some above the 0.25 confidence of a detection and none saturated."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = DetectionModel(config, nc=classes, verbose=False).eval()
    calibrate(net)
    head = net.model[-1]
    with torch.no_grad():
        for branch in [*head.cv3, *getattr(head, "one2one_cv3", [])]:
            branch[-1].bias.fill_(-1.0)
            branch[-1].weight.mul_(0.1)  # logits of a few units: no sigmoid saturates (its gradient would vanish)
    head.export, head.format = True, "onnx"
    if end2end:
        head.end2end = True
    return net


def calibrate(net: nn.Module, size: tuple[int, int] = SIZE) -> None:
    """Every BatchNorm set to the statistics of one seeded random batch (momentum 1), so that activations keep unit
    scale through the network: with PyTorch's default init they shrink ~3x a layer, to 1e-9 at the head."""
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = 1.0
    net.train()
    with torch.no_grad():
        net(torch.rand(8, 3, *size, generator=torch.Generator().manual_seed(1)))
    net.eval()


class TinyV5(nn.Module):
    """A YOLOv5-style decoded head on a stride-8 grid: (N, A, 5 + C) with centre and size in input pixels, then
    objectness and C class probabilities (sigmoids); a detection's score is objectness x class probability."""

    def __init__(self, classes: int = 2, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.SiLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.SiLU(),
                                      nn.Conv2d(16, 16, 3, 2, 1), nn.SiLU())
        self.predict = nn.Conv2d(16, 5 + classes, 1)
        with torch.no_grad():  # confident enough that some candidates pass the 0.25 of a detection, with spread
            self.predict.weight.mul_(40.0)
            self.predict.bias[4] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.predict(self.features(x))
        _n, _k, h, w = p.shape
        p = p.flatten(2).transpose(1, 2)  # (N, A, 5 + C), row-major cells
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        grid = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1).to(p.dtype)
        centre = (p[..., :2].sigmoid() + grid) * 8
        size = p[..., 2:4].sigmoid() * 64 + 8
        return torch.cat([centre, size, p[..., 4:].sigmoid()], dim=-1)


class TopDetections(nn.Module):
    """A detector that selects inside the graph, as end-to-end exports do: the `k` best candidates of a YOLOv5-style
    head as rows of x0, y0, x1, y1, score, label (N, k, 6), best first."""

    def __init__(self, head: nn.Module, k: int = 20):
        super().__init__()
        self.head, self.k = head, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(x)
        score, label = (out[..., 4:5] * out[..., 5:]).max(dim=-1)
        top, index = score.topk(self.k, dim=1)
        boxes = torch.cat([out[..., :2] - out[..., 2:4] / 2, out[..., :2] + out[..., 2:4] / 2], dim=-1)
        chosen = boxes.gather(1, index[..., None].expand(-1, -1, 4))
        return torch.cat([chosen, top[..., None], label.gather(1, index)[..., None].to(top.dtype)], dim=-1)


class SplitHead(nn.Module):
    """SSD / RetinaNet style: two outputs, corner boxes in [0, 1] of the image (N, A, 4) and class scores (N, A, C),
    from a YOLOv5-style head (objectness x class probability)."""

    def __init__(self, head: nn.Module, size: tuple[int, int] = SIZE):
        super().__init__()
        self.head, self.size = head, size

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(x)
        corners = torch.cat([out[..., :2] - out[..., 2:4] / 2, out[..., :2] + out[..., 2:4] / 2], dim=-1)
        scale = torch.tensor([self.size[1], self.size[0]] * 2, dtype=out.dtype)
        return corners / scale, out[..., 4:5] * out[..., 5:]


class WithNms(nn.Module):
    """Detections after an NMS inside the graph, as torchvision's detection exports give them for one image:
    boxes (K, 4), labels (K,), scores (K,), best first."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        import torchvision

        out = self.head(x)[0]
        score, label = (out[:, 4:5] * out[:, 5:]).max(dim=-1)
        boxes = torch.cat([out[:, :2] - out[:, 2:4] / 2, out[:, :2] + out[:, 2:4] / 2], dim=-1)
        keep = torchvision.ops.batched_nms(boxes, score, label, 0.45)
        return boxes[keep], label[keep], score[keep]


def export(net: nn.Module, path: str | Path, size: tuple[int, int] = SIZE, output: str | list[str] = "output0",
           batch: bool = True) -> Path:
    """The legacy exporter, opset 17, a dynamic batch (`batch`: outputs keep it on their first axis)."""
    outputs = [output] if isinstance(output, str) else output
    axes = {"images": {0: "batch"}, **({o: {0: "batch"} for o in outputs} if batch else {})}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, *size),), str(path), dynamo=False, opset_version=17,
                          input_names=["images"], output_names=outputs, dynamic_axes=axes)
    return Path(path)
