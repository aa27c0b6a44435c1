"""Occlusion (224x224, window 32, stride 16: 169 windows, one image) on resnet18, mobilenet_v2 and vgg11:
onnxviz on onnxruntime vs Captum's Occlusion on the native torchvision model (its best
perturbations_per_eval), and vs the floor (windows x onnxruntime's batched time per image).

    python benchmarks/bench_occlusion.py [resnet18 mobilenet_v2 vgg11]
"""

from __future__ import annotations

import sys

import numpy as np
from common import best_of, photos, report, torchvision_pair

import onnxviz

WINDOW, STRIDE = 32, 16


def bench(arch: str) -> list[tuple[str, str]]:
    import torch
    from captum.attr import Occlusion

    net, path = torchvision_pair(arch)
    model = onnxviz.load(path)
    x = onnxviz.load_image(photos(1), model)
    target = int(onnxviz.explain(model, x, "occlusion", window=(112,), stride=(112,), progress=False).targets[0])
    windows = ((224 - WINDOW) // STRIDE + 1) ** 2
    repeat = 1 if arch == "vgg11" else 3

    ours = best_of(lambda: onnxviz.explain(model, x, "occlusion", target=target, window=(WINDOW,),
                                           stride=(STRIDE,), progress=False), repeat=repeat)
    batch = np.repeat(x, 32, axis=0)
    per_image = best_of(lambda: model.ort.run(batch, (model.outputs[0],)), repeat=repeat) / len(batch)
    floor = windows * per_image
    xt = torch.from_numpy(x)
    occlusion = Occlusion(net)
    captum = {}
    for ppe in (1, 16, 32, 64) if arch != "vgg11" else (16, 32):
        with torch.no_grad():
            captum[ppe] = best_of(lambda p=ppe: occlusion.attribute(
                xt, sliding_window_shapes=(3, WINDOW, WINDOW), strides=(3, STRIDE, STRIDE), target=target,
                perturbations_per_eval=p), repeat=1)
    best = min(captum, key=captum.get)
    return [(f"{arch}", f"onnxviz {ours:.2f} s ({windows / ours:.0f} images/s); captum {captum[best]:.2f} s "
                        f"(ppe {best}) -> {captum[best] / ours:.2f}x (goal >= 1.5x); floor {floor:.2f} s -> "
                        f"{floor / ours:.0%} of it (goal >= 85%)")]


def main() -> None:
    rows = []
    for arch in sys.argv[1:] or ["resnet18", "mobilenet_v2", "vgg11"]:
        rows += bench(arch)
    report(rows)


if __name__ == "__main__":
    main()
