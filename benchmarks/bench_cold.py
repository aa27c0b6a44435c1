"""Cold start on resnet18, each exporter in a fresh process: import, load (check + onnxslim + comparison),
torch conversion + parity probe, first gradient call (saliency on one image).

    python benchmarks/bench_cold.py
"""

from __future__ import annotations

import subprocess
import sys
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


def main() -> None:
    rows = []
    for exporter in ("legacy", "dynamo"):
        _, path = resnet18_pair(exporter)
        out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent.parent).stdout.split()
        rows.append((f"resnet18 {exporter}", f"import {out[0]} s, load {out[1]} s, convert+parity {out[2]} s, "
                                             f"first saliency {out[3]} s; total {out[4]} s"))
    report(rows)


if __name__ == "__main__":
    main()
