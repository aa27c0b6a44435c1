"""Cold start, each step in a fresh process: import, load (check + onnxslim + its comparison), torch conversion +
parity probe, first gradient call (saliency on one image) — with the graph cache off, on its first load (empty
cache) and on the second load of the same file. resnet18 from both exporters and timm's swin_tiny (legacy), where
onnxslim's passes dominate the load.

    python benchmarks/bench_cold.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import report, resnet18_pair

CHILD = """
import time, sys
t0 = time.perf_counter()
import onnxviz
t1 = time.perf_counter()
model = onnxviz.load(sys.argv[1])
t2 = time.perf_counter()
model.torch
t3 = time.perf_counter()
x = model.probe_input(1)
onnxviz.explain(model, x, "saliency", progress=False)
t4 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {t3 - t2:.2f} {t4 - t3:.2f} {t4 - t0:.2f}")
"""
ROOT = Path(__file__).resolve().parent.parent


def swin_tiny(folder: Path) -> Path:
    import timm
    import torch
    from bench_vit import export

    torch.manual_seed(0)
    return export(timm.create_model("swin_tiny_patch4_window7_224", pretrained=False).eval(), folder / "swin.onnx")


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    models = {"resnet18 legacy": resnet18_pair("legacy")[1], "resnet18 dynamo": resnet18_pair("dynamo")[1],
              "swin_tiny legacy": swin_tiny(folder)}
    rows = []
    for name, path in models.items():
        cache = folder / f"cache-{name.replace(' ', '-')}"
        for state, env in (("cache off", {"ONNXVIZ_CACHE": "off"}), ("first load", {"ONNXVIZ_CACHE_DIR": str(cache)}),
                           ("second load", {"ONNXVIZ_CACHE_DIR": str(cache)})):
            out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True,
                                 cwd=ROOT, env={**os.environ, **env}).stdout.split()
            rows.append((f"{name}, {state}", f"import {out[0]} s, load {out[1]} s, convert+parity {out[2]} s, "
                                             f"first saliency {out[3]} s; total {out[4]} s"))
    report(rows)


if __name__ == "__main__":
    main()
