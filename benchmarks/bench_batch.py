"""onnxviz batch throughput: images/s for occlusion and gradcam on resnet18 (random weights, 224x224 photos) with
the local engine at 1 and 2 workers (scaling efficiency) and with Ray on this machine, beside the single-image
API on the same chunks (the per-image overhead of the batch machinery: reading, manifest, arrays).

    python benchmarks/bench_batch.py [--images 32] [--chunk 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import photos, report, torchvision_pair

import onnxviz
from onnxviz.batch import batch

METHODS = {"occlusion": {"window": 32, "stride": 32}, "gradcam": {}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=8)
    args = parser.parse_args()
    _, model_path = torchvision_pair("resnet18")
    folder = Path(tempfile.mkdtemp())
    for i, img in enumerate(photos(args.images)):
        crop = img[i % 7 * 8:, i % 5 * 8:]  # distinct images
        cv2.imwrite(str(folder / f"photo_{i:03d}.png"), (crop[..., ::-1] * 255).astype(np.uint8))
    paths = sorted(folder.glob("*.png"))
    model = onnxviz.load(model_path)
    rows = []
    for method, options in METHODS.items():
        onnxviz.explain(model, paths[:2], method, progress=False, **options)  # warm-up: conversion, sessions
        start = time.perf_counter()
        for i in range(0, len(paths), args.chunk):
            onnxviz.explain(model, paths[i:i + args.chunk], method, progress=False, **options)
        api = len(paths) / (time.perf_counter() - start)
        rates = {}
        for engine, workers in (("local", 1), ("local", 2), ("ray", 2)):
            out = Path(tempfile.mkdtemp()) / "run"
            result = batch(str(model_path), str(folder), method, str(out), engine=engine, workers=workers,
                           batch_size=args.chunk, options={method: options}, progress=False)
            assert result.done == len(paths), result.summary()
            rates[engine, workers] = len(paths) / result.seconds
        one, two = rates["local", 1], rates["local", 2]
        rows.append((f"{method} single-image API", f"{api:.1f} images/s (chunks of {args.chunk})"))
        rows.append((f"{method} local, 1 worker", f"{one:.1f} images/s: overhead {api / one - 1:+.1%} per image"))
        rows.append((f"{method} local, 2 workers", f"{two:.1f} images/s: {two / one:.2f}x, scaling efficiency "
                                                   f"{two / one / 2:.0%}"))
        rows.append((f"{method} ray, 2 actors", f"{rates['ray', 2]:.1f} images/s: {rates['ray', 2] / one:.2f}x "
                                                "the 1-worker rate (start-up included)"))
    report(rows)


if __name__ == "__main__":
    main()
