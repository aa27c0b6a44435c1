"""Occlusion on resnet18 (224x224, window 32, stride 16, one image): onnxviz on onnxruntime vs Captum's
Occlusion on the native torchvision model (its best perturbations_per_eval), and vs the floor
(windows x onnxruntime's batched time per image).

    python benchmarks/bench_occlusion.py
"""

from __future__ import annotations

import numpy as np
from common import best_of, photos, report, resnet18_pair

import onnxviz

WINDOW, STRIDE = 32, 16


def main() -> None:
    import torch
    from captum.attr import Occlusion

    net, path = resnet18_pair()
    model = onnxviz.load(path)
    x = onnxviz.load_image(photos(1), model)
    target = int(onnxviz.explain(model, x, "occlusion", window=(112,), stride=(112,), progress=False).targets[0])
    windows = ((224 - WINDOW) // STRIDE + 1) ** 2

    ours = best_of(lambda: onnxviz.explain(model, x, "occlusion", target=target, window=(WINDOW,),
                                           stride=(STRIDE,), progress=False))
    batch = np.repeat(x, 32, axis=0)
    per_image = best_of(lambda: model.ort.run(batch, (model.outputs[0],))) / len(batch)
    floor = windows * per_image

    xt = torch.from_numpy(x)
    captum = {}
    occlusion = Occlusion(net)
    for ppe in (1, 16, 32, 64, windows):
        with torch.no_grad():
            captum[ppe] = best_of(lambda p=ppe: occlusion.attribute(
                xt, sliding_window_shapes=(3, WINDOW, WINDOW), strides=(3, STRIDE, STRIDE), target=target,
                perturbations_per_eval=p), repeat=2)
    best_ppe = min(captum, key=captum.get)
    report([
        ("windows", str(windows)),
        ("onnxviz occlusion", f"{ours:.3f} s"),
        ("captum Occlusion (best ppe)", f"{captum[best_ppe]:.3f} s (perturbations_per_eval={best_ppe}); all: "
                                        + ", ".join(f"{k}: {v:.2f}" for k, v in captum.items())),
        ("floor (windows x ort per image)", f"{floor:.3f} s ({per_image * 1000:.1f} ms per image at batch 32)"),
        ("speed-up vs captum", f"{captum[best_ppe] / ours:.2f}x (goal >= 1.5x)"),
        ("share of the floor", f"{floor / ours:.0%} (goal >= 85%)"),
    ])


if __name__ == "__main__":
    main()
