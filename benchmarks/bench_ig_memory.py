"""Peak memory of integrated_gradients on resnet18, batch of 8 real photos: n_steps=50 vs n_steps=300, each
in a fresh process (ru_maxrss). The path is walked in chunks of --batch-size inputs, so the two should differ
by a small constant only.

    python benchmarks/bench_ig_memory.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import report, resnet18_pair

CHILD = """
import resource, sys, time
sys.path.insert(0, sys.argv[3])
import onnxviz
from common import photos
model = onnxviz.load(sys.argv[1])
x = onnxviz.load_image(photos(8), model)
onnxviz.explain(model, x[:1], "saliency", progress=False)  # conversion and sessions: the same in both runs
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
onnxviz.explain(model, x, "integrated_gradients", n_steps=int(sys.argv[2]), batch_size=32, progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base / 1024, peak / 1024, time.perf_counter() - start)
"""


def main() -> None:
    _, path = resnet18_pair()
    here = Path(__file__).resolve().parent
    rows, peaks = [], {}
    for steps in (50, 300):
        out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(steps), str(here)], capture_output=True,
                             text=True, check=True, cwd=here.parent).stdout.split()
        base, peak, seconds = (float(v) for v in out)
        peaks[steps] = peak
        rows.append((f"n_steps={steps}", f"peak RSS {peak:.0f} MiB (before the call {base:.0f} MiB), {seconds:.1f} s"))
    rows.append(("difference", f"{peaks[300] - peaks[50]:+.0f} MiB"))
    report(rows)


if __name__ == "__main__":
    main()
