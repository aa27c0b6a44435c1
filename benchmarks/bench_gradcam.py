"""Grad-CAM on resnet18, batch of 8 real photos: onnxviz (torch backend via onnx2torch) vs pytorch-grad-cam on
the native torchvision model, same layer (layer4[-1]) and the same target classes.

    python benchmarks/bench_gradcam.py
"""

from __future__ import annotations

import numpy as np
from common import best_of, photos, report, resnet18_pair

import onnxviz


def main() -> None:
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    net, path = resnet18_pair()
    model = onnxviz.load(path)
    x = onnxviz.load_image(photos(8), model)
    first = onnxviz.explain(model, x, "gradcam", progress=False)  # converts once (cached)
    targets = first.targets.tolist()

    ours = best_of(lambda: onnxviz.explain(model, x, "gradcam", target=targets, progress=False))
    xt = torch.from_numpy(x)
    cam = GradCAM(net, [net.layer4[-1]])
    wanted = [ClassifierOutputTarget(t) for t in targets]
    reference = best_of(lambda: cam(xt, wanted))
    maps = cam(xt, wanted)
    agreement = min(np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(first.attributions, maps, strict=True))
    report([
        ("onnxviz gradcam (batch 8)", f"{ours:.3f} s"),
        ("pytorch-grad-cam GradCAM", f"{reference:.3f} s"),
        ("onnxviz speed relative", f"{reference / ours:.2f}x (goal >= 0.8x)"),
        ("lowest per-image Pearson r", f"{agreement:.5f}"),
    ])


if __name__ == "__main__":
    main()
