"""How good an estimated gradient is, by input size and query budget: the cosine of NES estimates with the exact
gradient (torch) on models where both exist, per pixel and on the cells `--gradient estimate` picks by default,
beside the cosine the estimator announces. The table in the README comes from here.

    python benchmarks/bench_estimate.py
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from common import photos  # noqa: F401  (puts the repository first on sys.path)

import onnxviz
from onnxviz.demo import demo_images, demo_model_path
from onnxviz.estimate import Estimator, expected_cosine


def cell_means(grad: np.ndarray, side: int, spatial: tuple[int, int]) -> np.ndarray:
    """Each value replaced by the mean over its side x side cell."""
    out = np.empty_like(grad)
    h, w = grad.shape[spatial[0]], grad.shape[spatial[1]]
    for y in range(0, h, side):
        for x in range(0, w, side):
            index = [slice(None)] * grad.ndim
            index[spatial[0]], index[spatial[1]] = slice(y, y + side), slice(x, x + side)
            out[tuple(index)] = grad[tuple(index)].mean(axis=spatial, keepdims=True)
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


def models(folder: Path) -> list[tuple[str, onnxviz.Model, np.ndarray]]:
    import torch
    import torchvision
    from skimage import data

    from models.exports import export

    found = []
    digits = onnxviz.load(demo_model_path())
    found.append(("digits CNN 1x32x32", digits, onnxviz.load_image(demo_images()[:2], digits)))
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10).eval()
    for size in (64, 224):
        model = onnxviz.load(export(net, folder / f"resnet18_{size}.onnx", "legacy", size=size))
        x = onnxviz.load_image([data.chelsea() / 255.0, data.coffee() / 255.0], model)
        found.append((f"resnet18 3x{size}x{size}", model, x))
    return found


def main() -> None:
    warnings.simplefilter("ignore")
    print(f"python {sys.version.split()[0]}, onnxruntime via onnxviz; NES, sigma 0.01, mean over 2 images")
    print(f"{'model':<22}{'queries':>8}{'cells':>7}{'cosine':>9}{'announced':>11}{'s/image':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for name, model, x in models(Path(folder)):
            exact = onnxviz.explain(model, x, "saliency", abs=False, progress=False).attributions
            spatial = (1, 2)
            for queries in (200, 1000, 4000):
                if "224" in name and queries > 1000:
                    continue  # minutes per image on 2 cores
                for cells in (1, "auto"):
                    estimator = Estimator("nes", queries, cells=cells)
                    side = estimator.cell(tuple(x.shape[1:]), spatial)
                    start = time.perf_counter()
                    est = onnxviz.explain(model, x, "saliency", abs=False, gradient=estimator,
                                          progress=False).attributions
                    seconds = (time.perf_counter() - start) / len(x)
                    found = np.mean([cosine(e, cell_means(g, side, spatial)) for e, g in zip(est, exact, strict=True)])
                    announced = expected_cosine(estimator, tuple(x.shape[1:]), spatial, side)
                    print(f"{name:<22}{queries:>8}{side:>7}{found:>9.2f}{announced:>11.2f}{seconds:>9.1f}")


if __name__ == "__main__":
    main()
