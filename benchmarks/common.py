"""Shared pieces of the side-by-side benchmarks: timing, the resnet18 pair, real photos."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def best_of(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> float:
    """Best wall time of `repeat` runs after `warmup` untimed ones (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def torchvision_pair(arch: str = "resnet18", exporter: str = "legacy"):
    """(native torchvision network with seeded random weights, path of its ONNX export)."""
    from models.exports import export, torchvision_net

    net = torchvision_net(arch, seed=0)
    path = Path(tempfile.mkdtemp()) / f"{arch}_{exporter}.onnx"
    return net, export(net, path, exporter)


def resnet18_pair(exporter: str = "legacy"):
    return torchvision_pair("resnet18", exporter)


def photos(n: int) -> list[np.ndarray]:
    """n real photos from scikit-image (cycled), RGB float in [0, 1]."""
    from skimage import data

    pool = [data.chelsea(), data.astronaut(), data.coffee(), data.rocket()]
    return [pool[i % len(pool)].astype(np.float32) / 255.0 for i in range(n)]


def photo_folder(n: int) -> Path:
    """A new folder of n distinct PNG photos (the photos cycled, each cropped differently), for batch runs."""
    import cv2

    folder = Path(tempfile.mkdtemp()) / "photos"
    folder.mkdir()
    for i, img in enumerate(photos(n)):
        crop = img[i % 7 * 8:, i % 5 * 8:]
        cv2.imwrite(str(folder / f"photo_{i:03d}.png"), (crop[..., ::-1] * 255).astype(np.uint8))
    return folder


def report(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
