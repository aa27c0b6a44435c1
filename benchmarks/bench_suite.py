"""The attribution suite on resnet18 vs the peers on the native torchvision model, one run, ratios:
integrated_gradients (n_steps=50, batch of 4) vs Captum IntegratedGradients; scorecam and ablationcam at
layer4 (one image) vs pytorch-grad-cam's ScoreCAM and AblationCAM (their batch size 64).

    python benchmarks/bench_suite.py
"""

from __future__ import annotations

import numpy as np
from common import best_of, photos, report, resnet18_pair

import onnxviz


def main() -> None:
    import torch
    from captum.attr import IntegratedGradients
    from pytorch_grad_cam import AblationCAM, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    net, path = resnet18_pair()
    model = onnxviz.load(path)
    x = onnxviz.load_image(photos(4), model)
    targets = onnxviz.explain(model, x, "gradcam", progress=False).targets
    xt, tt = torch.from_numpy(x), torch.from_numpy(targets)
    rows = []

    ours = best_of(lambda: onnxviz.explain(model, x, "integrated_gradients", target=targets.tolist(), n_steps=50,
                                           progress=False), repeat=2)
    ig = IntegratedGradients(net)
    theirs = best_of(lambda: ig.attribute(xt, baselines=0.0, target=tt, n_steps=50, internal_batch_size=32),
                     repeat=2)
    rows.append(("integrated_gradients n=50, 4 images", f"onnxviz {ours:.2f} s, captum {theirs:.2f} s: "
                                                        f"{theirs / ours:.2f}x (goal >= 0.9x)"))
    one, wanted = x[:1], [ClassifierOutputTarget(int(targets[0]))]
    for name, reference, goal in (("scorecam", ScoreCAM, 1.5), ("ablationcam", AblationCAM, 3.0)):
        ours = best_of(lambda n=name: onnxviz.explain(model, one, n, target=[int(targets[0])], batch_size=64,
                                                      progress=False), repeat=2)
        cam = reference(net, [net.layer4[-1]])
        cam.batch_size = 64

        def run(c=cam):
            return c(xt[:1], wanted)

        theirs = best_of(run, repeat=2, warmup=0)
        agreement = np.corrcoef(onnxviz.explain(model, one, name, target=[int(targets[0])], batch_size=64,
                                                progress=False).attributions.ravel(), run().ravel())[0, 1]
        rows.append((f"{name} layer4, 1 image", f"onnxviz {ours:.2f} s, pytorch-grad-cam {theirs:.2f} s: "
                                                f"{theirs / ours:.2f}x (goal >= {goal}x), Pearson r {agreement:.4f}"))
    report(rows)


if __name__ == "__main__":
    main()
