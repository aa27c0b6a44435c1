"""Cold start of the command line (issue 24, part 2): `onnxviz --help`, `onnxviz methods`, and `onnxviz explain
resnet18.onnx photo.jpg -m gradcam` in fresh processes — the cache off, the first run (empty cache) and the second
— each with where its time goes: imports, opening the model (the guard's check in its worker, or the marker that
the same bytes passed it), the model's set-up (onnxslim or the cached graph, onnxruntime's session, probes), torch's
import, the onnx2torch conversion, the parity probe, the method, writing the files. Beside it, in one process,
the method alone on a model already loaded (what the notebook, the API and `onnxviz serve` pay per call).

    python benchmarks/cold_explain.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib
from common import resnet18_pair

# the child times named steps by wrapping them where they are called; the rest of the wall time is imports,
# reading the image, targets and click
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from onnxviz.cli.app import cli
from onnxviz.cli import explain as command
from onnxviz import model as model_module, explainer as explainer_module
from onnxviz.backends import torch as torch_backend, torch_import
spent = {}
imported = time.perf_counter() - t0

def timed(owner, attribute, step):
    inner = getattr(owner, attribute)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[step] = spent.get(step, 0.0) + time.perf_counter() - start
    setattr(owner, attribute, wrapper)

timed(model_module, "open_model", "open (guard check)")
timed(model_module.Model, "_normalize", "graph (onnxslim / cache)")
timed(torch_import, "import_torch", "torch import")
timed(torch_backend, "import_torch", "torch import")
timed(torch_backend.TorchBackend, "__init__", "conversion (torch import included)")
timed(explainer_module.Explainer, "explain", "method (targets + gradcam)")
timed(command, "write_run", "writing files")
code = cli.main(sys.argv[1:], prog_name="onnxviz", standalone_mode=False)
spent["command imports"] = imported
spent["wall (in process)"] = time.perf_counter() - t0
print(json.dumps(spent))
"""


def wall(args: list[str], env: dict[str, str], runs: int) -> float:
    """Median wall time of `onnxviz ARGS` in fresh processes, interpreter start included."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "onnxviz", *args], check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def steps(args: list[str], env: dict[str, str], runs: int, before=lambda: None) -> dict[str, float]:
    """Median seconds per step over `runs` fresh processes (`before` runs ahead of each), and the process's wall."""
    seen: list[dict[str, float]] = []
    for _ in range(runs):
        before()
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, *args], check=True, capture_output=True, text=True,
                              env=env)
        spent = json.loads(done.stdout.strip().splitlines()[-1])
        spent["wall (process)"] = time.perf_counter() - start
        seen.append(spent)
    return {k: statistics.median(s.get(k, 0.0) for s in seen) for k in seen[0]}


def in_process(model_path: Path, photo: Path) -> tuple[float, float]:
    """(median seconds of Explainer.explain on a loaded model, of the method's own call) over 10 calls."""
    import onnxviz
    from onnxviz import registry

    model = onnxviz.load(model_path)
    explainer = onnxviz.Explainer(model, "gradcam", progress=False)
    x = onnxviz.load_image(photo, model)
    explainer.explain(x)
    method_cls = registry.get("gradcam")
    own = []
    original = method_cls.explain

    def timed(self, ctx, x, options):
        start = time.perf_counter()
        try:
            return original(self, ctx, x, options)
        finally:
            own.append(time.perf_counter() - start)

    method_cls.explain = timed
    calls = []
    for _ in range(10):
        start = time.perf_counter()
        explainer.explain(x)
        calls.append(time.perf_counter() - start)
    method_cls.explain = original
    return statistics.median(calls), statistics.median(own)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per figure (the median is shown)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    model = resnet18_pair("legacy")[1]
    photo = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    base = {**os.environ, "ONNXVIZ_CACHE_DIR": str(folder / "cache")}
    print(f"{os.cpu_count()} cores; resnet18 (legacy export, 224 x 224, random weights), {photo.name}")
    print(f"onnxviz --help    {wall(['--help'], base, args.runs):.2f} s")
    print(f"onnxviz methods   {wall(['methods'], base, args.runs):.2f} s")
    explain = ["explain", str(model), str(photo), "-m", "gradcam", "-q", "--overwrite"]
    explain += ["--out", str(folder / "out")]
    runs = {"cache off": steps(explain, {**base, "ONNXVIZ_CACHE": "off"}, args.runs),
            "first run": steps(explain, base, args.runs, lambda: shutil.rmtree(folder / "cache", ignore_errors=True)),
            "second run": steps(explain, base, args.runs)}
    names = sorted({k for r in runs.values() for k in r}, key=lambda k: -runs["cache off"].get(k, 0))
    print(f"\n{'onnxviz explain ... -m gradcam':<34}" + "".join(f"{s:>12}" for s in runs))
    for name in names:
        print(f"{name:<34}" + "".join(f"{runs[s].get(name, 0.0):>11.2f}s" for s in runs))
    call, own = in_process(model, photo)
    second = runs["second run"]["wall (process)"]
    print(f"\nin one process, model loaded: Explainer.explain {call * 1000:.0f} ms, of which the method "
          f"{own * 1000:.0f} ms ({call / own:.2f}x the method)")
    print(f"second run of the command: {second:.2f} s = {second / own:.0f}x the method")


if __name__ == "__main__":
    main()
