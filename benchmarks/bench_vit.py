"""Transformers side by side (issue 19): Grad-CAM on timm vit_tiny and swin_tiny (random weights, 224 x 224, batch
of 4 real photos) with onnxviz on the legacy export vs pytorch-grad-cam with its `reshape_transform` on the native
module, same layer and targets; the maps' largest difference; and the time `onnxviz.load` takes on each export
(where it goes: validation, onnxslim, shape inference, the observed-shape run), plus the rollout.

    python benchmarks/bench_vit.py
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from common import best_of, photos, report

import onnxviz

NETS = {"vit_tiny_patch16_224": (1, lambda net: net.blocks[-1].norm1),  # prefix tokens, the layer to explain
        "swin_tiny_patch4_window7_224": (None, lambda net: net.norm)}


def export(net, path: Path) -> Path:
    import torch

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, 224, 224),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path


def reshape_for(prefix: int | None):
    if prefix is None:  # Swin: (N, h, w, C)
        return lambda t: t.permute(0, 3, 1, 2)
    return lambda t: t[:, prefix:].reshape(t.size(0), 14, 14, t.size(2)).permute(0, 3, 1, 2)


def side_by_side(name: str, prefix: int | None, layer_of, folder: Path) -> list[tuple[str, str]]:
    import timm
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    net = timm.create_model(name, pretrained=False).eval()
    path = export(net, folder / f"{name}.onnx")
    start = time.perf_counter()
    model = onnxviz.load(path, preprocessing="imagenet")
    rows = [(f"{name} load", f"{time.perf_counter() - start:.2f} s (validate, onnxslim, shapes, layouts)")]
    x = onnxviz.load_image(photos(4), model)
    first = onnxviz.explain(model, x, "gradcam", progress=False)  # converts once (cached)
    targets = first.targets.tolist()
    ours = best_of(lambda: onnxviz.explain(model, x, "gradcam", target=targets, progress=False), repeat=2)
    cam = GradCAM(net, [layer_of(net)], reshape_transform=reshape_for(prefix))
    wanted = [ClassifierOutputTarget(t) for t in targets]
    xt = torch.from_numpy(x)
    theirs = best_of(lambda: cam(xt, wanted), repeat=2)
    maps = cam(xt, wanted)
    gap = np.abs(first.raw - maps).max() / np.abs(maps).max() if first.raw.shape == maps.shape else float("nan")
    rows.append((f"{name} gradcam (batch 4)", f"onnxviz {ours:.3f} s, pytorch-grad-cam {theirs:.3f} s: "
                                               f"{theirs / ours:.2f}x (goal >= 0.8x); max |diff| {gap:.1e} of max"))
    if prefix is not None:
        rollout = best_of(lambda: onnxviz.explain(model, x, "rollout", progress=False), repeat=2)
        recipro = best_of(lambda: onnxviz.explain(model, x, "vit_reciprocam", progress=False), repeat=1)
        rows.append((f"{name} rollout / vit_reciprocam", f"{rollout:.3f} s / {recipro:.3f} s (batch 4)"))
    return rows


def main() -> None:
    from pytorch_grad_cam import base_cam

    base_cam.scale_cam_image = lambda cam, target_size=None: np.float32(cam)  # raw maps, to compare them
    folder = Path(tempfile.mkdtemp())
    report([row for name, (prefix, layer_of) in NETS.items() for row in side_by_side(name, prefix, layer_of, folder)])


if __name__ == "__main__":
    main()
