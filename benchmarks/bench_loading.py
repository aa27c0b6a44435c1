"""What the hostile-model defences cost at load time: onnxviz.load with the validator and the isolated worker
(a warm worker, and the first call that starts it) against the same load in this process, and against no
defences at all (onnx.load + Model), on the bundled digits CNN and torchvision resnet18 / mobilenet_v2 exports.

    python benchmarks/bench_loading.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import onnx
from common import best_of, report, torchvision_pair

import onnxviz
from onnxviz import Limits
from onnxviz.demo import demo_model_path
from onnxviz.guard.worker import WORKER


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    models = {"digits CNN": demo_model_path(), "resnet18": torchvision_pair("resnet18")[1],
              "mobilenet_v2": torchvision_pair("mobilenet_v2")[1]}
    rows = []
    for name, path in models.items():
        WORKER.stop()
        start = time.perf_counter()
        onnxviz.load(path)
        cold = time.perf_counter() - start
        isolated = best_of(lambda p=path: onnxviz.load(p), repeat=args.repeat)
        local = best_of(lambda p=path: onnxviz.load(p, limits=Limits(isolate=False)), repeat=args.repeat)
        bare = best_of(lambda p=path: onnxviz.Model(onnx.load(str(p)), str(p)), repeat=args.repeat)
        rows.append((name, f"isolated {isolated * 1000:.0f} ms, validated in-process {local * 1000:.0f} ms, "
                           f"no defences {bare * 1000:.0f} ms: isolation {isolated / local:.2f}x, all defences "
                           f"{isolated / bare:.2f}x (+{(isolated - bare) * 1000:.0f} ms); first call with a fresh "
                           f"worker {cold * 1000:.0f} ms"))
    report(rows)


if __name__ == "__main__":
    main()
