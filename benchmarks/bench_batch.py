"""onnxviz batch throughput on resnet18 (random weights, 224x224 photos), occlusion and gradcam: the single-image
API on the same chunks; the local engine with 1 worker (all cores, and pinned to 1 thread), 2 workers x 1 thread
(scaling efficiency against the pinned single worker); Ray with 2 actors on this machine. Steady rates count from
the first finished chunk to the last; the start-up (worker processes, model loads, Ray) is reported apart.

    python benchmarks/bench_batch.py [--images 64] [--chunk 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import photo_folder, report, torchvision_pair

import onnxviz
from onnxviz.batch import batch

METHODS = {"occlusion": {"window": 32, "stride": 32}, "gradcam": {}}
ENGINES = {"local, 1 worker x 1 thread": ("local", 1, 1),
           "local, 2 workers x 1 thread": ("local", 2, 1), "ray, 2 actors x 1 thread": ("ray", 2, 1)}


def _run(model: Path, folder: Path, method: str, engine: str, workers: int, threads: int | None, chunk: int):
    """(steady images/s from the first finished chunk to the last, start-up until the first chunk, seconds)."""
    out = Path(tempfile.mkdtemp()) / "run"
    result = batch(str(model), str(folder), method, str(out), engine=engine, workers=workers, threads=threads,
                   batch_size=chunk, options={method: METHODS[method]}, progress=False)
    assert result.failed == 0, result.summary()
    (t0, n0), (t1, n1) = result.timeline[0], result.timeline[-1]
    rate = (n1 - n0) / (t1 - t0)
    return rate, t0 - n0 / rate, result.seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=8)
    args = parser.parse_args()
    _, model_path = torchvision_pair("resnet18")
    folder = photo_folder(args.images)
    paths = sorted(folder.glob("*.png"))
    model = onnxviz.load(model_path)
    rows = []
    for method, options in METHODS.items():
        onnxviz.explain(model, paths[:2], method, progress=False, **options)  # warm-up: conversion, sessions
        api, local = [], []
        for _ in range(2):  # interleaved: the API and the in-process engine, each after the other
            start = time.perf_counter()
            for i in range(0, len(paths), args.chunk):
                onnxviz.explain(model, paths[i:i + args.chunk], method, progress=False, **options)
            api.append(time.perf_counter() - start)
            local.append(_run(model_path, folder, method, "local", 1, None, args.chunk)[2])
        rows.append((f"{method}: single-image API", f"{len(paths) / min(api):.2f} images/s (chunks of {args.chunk})"))
        rows.append((f"{method}: local, 1 worker", f"{len(paths) / min(local):.2f} images/s: overhead "
                                                   f"{min(local) / min(api) - 1:+.1%} per image vs the API"))
        rates = {}
        for name, (engine, workers, threads) in ENGINES.items():
            rate, startup, _ = _run(model_path, folder, method, engine, workers, threads, args.chunk)
            rates[name] = rate
            rows.append((f"{method}: {name}", f"{rate:.2f} images/s steady, start-up {startup:.1f} s"))
        pinned, two = rates["local, 1 worker x 1 thread"], rates["local, 2 workers x 1 thread"]
        rows.append((f"{method}: scaling, 2 workers", f"{two / pinned:.2f}x one pinned worker (efficiency "
                                                      f"{two / pinned / 2:.0%}); {two * min(local) / len(paths):.2f}x "
                                                      "one all-core worker"))
        rows.append((f"{method}: ray", f"{rates['ray, 2 actors x 1 thread'] / two:.2f}x the local 2-worker rate"))
    report(rows)


if __name__ == "__main__":
    main()
