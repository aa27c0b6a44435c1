"""Peak memory of integrated gradients, n_steps=200, on densenet121 (random weights, one 224 x 224 photo): onnxviz
(the path walked in chunks of --batch-size) against Captum's IntegratedGradients on the native module, with its
default internal_batch_size=None (all 200 path points in one forward and backward) and with 32. Each runs in a
fresh process after a warm-up call; the figure is the resident high-water mark above the warmed-up process.
Captum's child may map at most --cap-gib GiB more than its warmed-up self, so that an allocation it cannot make
fails in the child instead of waking the kernel's OOM killer.

    python benchmarks/bench_ig_densenet.py [--steps 200] [--cap-gib 16]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from common import report, torchvision_pair

HERE = str(Path(__file__).resolve().parent)
PRELUDE = """
import resource, sys, time
sys.path.insert(0, {here!r})
import numpy as np
from common import photos
def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""
OURS = PRELUDE + """
import onnxviz
model = onnxviz.load(sys.argv[1])
x = onnxviz.load_image(photos(1), model)
onnxviz.explain(model, x, "integrated_gradients", n_steps=4, progress=False)  # conversion, sessions, warm-up
base = peak_mib()
start = time.perf_counter()
onnxviz.explain(model, x, "integrated_gradients", n_steps=int(sys.argv[2]), progress=False)
print(base, peak_mib(), time.perf_counter() - start)
"""
CAPTUM = PRELUDE + """
import torch
from captum.attr import IntegratedGradients
sys.path.insert(0, {root!r})
from models.exports import torchvision_net
net = torchvision_net("densenet121", seed=0)
mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
x = torch.from_numpy(((photos(1)[0][:224, :224] - mean) / std).transpose(2, 0, 1)[None].astype(np.float32))
ig = IntegratedGradients(net)
ig.attribute(x, target=0, n_steps=4)
base = peak_mib()
mapped = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
cap = mapped + int(float(sys.argv[2]) * 2**30)  # this much more address space than the warmed-up process maps
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
chunk = None if sys.argv[3] == "none" else int(sys.argv[3])  # None: Captum's default
start = time.perf_counter()
try:
    ig.attribute(x, target=0, n_steps=int(sys.argv[1]), internal_batch_size=chunk)
    print(base, peak_mib(), time.perf_counter() - start)
except (RuntimeError, MemoryError) as exc:
    print(base, -1, time.perf_counter() - start, type(exc).__name__)
"""


def child(code: str, *args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return done.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--cap-gib", type=float, default=16.0)
    args = parser.parse_args()
    _, path = torchvision_pair("densenet121")
    root = str(Path(HERE).parent)
    ours = child(OURS.format(here=HERE), str(path), str(args.steps))
    ours_peak = float(ours[1]) - float(ours[0])
    rows = [("onnxviz integrated_gradients", f"n_steps={args.steps}, --batch-size 32: peak +{ours_peak:.0f} MiB "
                                             f"over the warmed-up process, {float(ours[2]):.1f} s")]
    for chunk in ("none", "32"):
        theirs = child(CAPTUM.format(here=HERE, root=root), str(args.steps), str(args.cap_gib), chunk)
        name = f"Captum IntegratedGradients, internal_batch_size={chunk.capitalize()}"
        if float(theirs[1]) < 0:
            rows.append((name, f"cannot allocate {args.cap_gib:g} GiB beyond the warmed-up process ({theirs[3]} "
                               f"after {float(theirs[2]):.1f} s; the cap keeps the kernel's OOM killer away)"))
            continue
        theirs_peak = float(theirs[1]) - float(theirs[0])
        rows.append((name, f"peak +{theirs_peak:.0f} MiB ({theirs_peak / ours_peak:.2f}x onnxviz's), "
                           f"{float(theirs[2]):.1f} s ({float(theirs[2]) / float(ours[2]):.2f}x onnxviz's time)"))
    report(rows)


if __name__ == "__main__":
    main()
