"""What the run bounds cost (issue 15): every onnxruntime pass runs inside a memory window (soft RLIMIT_AS), a
deadline watched by a thread and a signal wakeup pipe; every torch pass inside the memory window. Measured side
by side in one run against the same passes with the bounds switched off (the bare session / module call), per
pass and for a whole occlusion explanation, on the bundled digits CNN (tiny: the worst case for a fixed cost)
and resnet18.

    python benchmarks/bench_run_limits.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib

import numpy as np
from common import best_of, report, resnet18_pair

import onnxviz
from onnxviz.backends import ort as ort_backend
from onnxviz.backends import torch as torch_backend
from onnxviz.demo import demo_model_path


@contextlib.contextmanager
def unbounded():
    """The same code path with the bounds replaced by plain calls."""
    saved = ort_backend.run_onnxruntime, torch_backend.torch_pass
    ort_backend.run_onnxruntime = lambda fn, limits, what: fn(None)
    torch_backend.torch_pass = lambda limits, what: contextlib.nullcontext()
    try:
        yield
    finally:
        ort_backend.run_onnxruntime, torch_backend.torch_pass = saved


def per_pass(model: onnxviz.Model, batch: int, repeat: int, calls: int) -> tuple[float, float]:
    x = model.probe_input(batch)
    names = tuple(model.outputs)

    def run():
        for _ in range(calls):
            model.ort.run(x, names)

    bounded = best_of(run, repeat=repeat) / calls
    with unbounded():
        bare = best_of(run, repeat=repeat) / calls
    return bounded, bare


def torch_pass(model: onnxviz.Model, batch: int, repeat: int, calls: int) -> tuple[float, float]:
    import torch

    backend = model.gradient_backend()
    xt = backend.to_tensor(model.probe_input(batch))
    names = tuple(model.outputs)

    def run():
        with torch.no_grad():
            for _ in range(calls):
                backend.forward(xt, names)

    bounded = best_of(run, repeat=repeat) / calls
    with unbounded():
        bare = best_of(run, repeat=repeat) / calls
    return bounded, bare


def occlusion(model: onnxviz.Model, x: np.ndarray, repeat: int, **options) -> tuple[float, float]:
    def run():
        onnxviz.explain(model, x, "occlusion", progress=False, **options)

    bounded = best_of(run, repeat=repeat)
    with unbounded():
        bare = best_of(run, repeat=repeat)
    return bounded, bare


def row(label: str, bounded: float, bare: float, unit: str = "us") -> tuple[str, str]:
    scale = 1e6 if unit == "us" else 1e3
    return label, (f"bounded {bounded * scale:.1f} {unit}, bare {bare * scale:.1f} {unit}: "
                   f"+{(bounded - bare) * 1e6:.0f} us per call, ratio {bounded / bare:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    digits = onnxviz.load(demo_model_path())
    _, path = resnet18_pair()
    resnet = onnxviz.load(path)
    rows = [row("digits, onnxruntime pass, batch 1", *per_pass(digits, 1, args.repeat, 2000)),
            row("digits, onnxruntime pass, batch 32", *per_pass(digits, 32, args.repeat, 500)),
            row("resnet18, onnxruntime pass, batch 1", *per_pass(resnet, 1, args.repeat, 20)),
            row("resnet18, onnxruntime pass, batch 8", *per_pass(resnet, 8, args.repeat, 5)),
            row("digits, torch pass, batch 1", *torch_pass(digits, 1, args.repeat, 500)),
            row("resnet18, torch pass, batch 8", *torch_pass(resnet, 8, args.repeat, 5))]
    x = onnxviz.load_image(np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32), digits)
    rows.append(row("digits, occlusion (window 4, stride 2)", *occlusion(digits, x, args.repeat, window=4, stride=2),
                    unit="ms"))
    xr = resnet.probe_input(1)
    rows.append(row("resnet18, occlusion (window 32, stride 32)", *occlusion(resnet, xr, args.repeat, window=32,
                                                                              stride=32), unit="ms"))
    report(rows)


if __name__ == "__main__":
    main()
