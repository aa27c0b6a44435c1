"""LIME, KernelSHAP, Shapley value sampling and feature ablation on resnet18 (224 x 224, one photo, 50 superpixels):
onnxviz against the onnxruntime floor (the same number of forward passes, batched) and against Captum's Lime,
KernelShap, ShapleyValueSampling and FeatureAblation on the native torch module with the same segments and samples,
at Captum's default of one perturbation per forward pass and at the same batch as onnxviz's.

    python benchmarks/bench_coalitions.py
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import FeatureAblation, KernelShap, Lime, ShapleyValueSampling
from common import best_of, photos, report, resnet18_pair

import onnxviz
from onnxviz.methods.coalitions import BLOCK
from onnxviz.segments import group_labels

SEGMENTS = "superpixel:50"
RUNS = {"lime": (Lime, {"n_samples": 200}), "kernel_shap": (KernelShap, {"n_samples": 200}),
        "shapley_sampling": (ShapleyValueSampling, {"n_samples": 2}), "feature_ablation": (FeatureAblation, {})}


def passes(name: str, groups: int, options: dict) -> int:
    return {"shapley_sampling": options.get("n_samples", 0) * (groups + 1), "feature_ablation": groups + 1}.get(
        name, options.get("n_samples", 0))


def main() -> None:
    torch.set_num_threads(torch.get_num_threads())
    net, path = resnet18_pair()
    net.eval()
    model = onnxviz.load(path)
    x = onnxviz.load_image(photos(1), model)
    target = int(onnxviz.explain(model, x, "occlusion", window=(224,), progress=False).targets[0])
    labels = group_labels(x[0], SEGMENTS, "NCHW")
    groups = int(labels.max()) + 1
    batch = np.repeat(x, BLOCK, axis=0)
    per_image = best_of(lambda: model.ort.run(batch, (model.outputs[0],))) / len(batch)
    rows = [("onnxruntime floor", f"{per_image * 1000:.1f} ms per image at batch {BLOCK}; {groups} superpixels")]

    def native(inputs):
        with torch.no_grad():
            return net(inputs)

    tensor, mask = torch.from_numpy(x), torch.from_numpy(labels[None])
    for name, (reference, options) in RUNS.items():
        ours = best_of(lambda n=name, o=options: onnxviz.explain(model, x, n, target=target, granularity=SEGMENTS,
                                                                 progress=False, **o), repeat=1)
        count = passes(name, groups, options)
        rows.append((name, f"{count} passes in {ours:.2f} s, {count * per_image / ours:.0%} of the floor "
                           f"(goal >= 85%)"))
        for per_eval in (1, BLOCK):
            theirs = best_of(lambda r=reference, o=options, p=per_eval: r(native).attribute(
                tensor, target=target, baselines=0.0, feature_mask=mask, perturbations_per_eval=p, **o),
                repeat=1, warmup=0)
            rows.append((f"  vs Captum {reference.__name__}, {per_eval} per pass",
                         f"{theirs:.2f} s -> onnxviz {theirs / ours:.2f}x faster (goal >= 1.5x)"))
    report(rows)


if __name__ == "__main__":
    main()
