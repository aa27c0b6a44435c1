"""Gradient methods on vit_tiny (random weights, legacy export, one 224 x 224 photo) against Captum on the timm module,
calls interleaved round by round so a noisy machine slows both sides alike: the median of each side and their ratio;
and the same onnxviz calls with the exported GELU left unfused (the five-module erf chain), to show what fusing it
buys.

    python benchmarks/bench_vit_gradients.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from bench_vit import export
from common import photos, report

import onnxviz
from onnxviz.backends import fusion

METHODS = {"saliency": ("Saliency", {}), "input_x_gradient": ("InputXGradient", {}),
           "integrated_gradients": ("IntegratedGradients", {"n_steps": 50})}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    import captum.attr
    import timm

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    net = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        path = export(net, Path(tempfile.mkdtemp()) / "vit_tiny.onnx")
    fused, unfused = onnxviz.load(path), onnxviz.load(path)
    original = fusion.fuse_gelu
    fusion.fuse_gelu = lambda *a: 0  # the second model's views are built now, without the fusion
    x = onnxviz.load_image(photos(1), unfused)
    target = int(fused.run(x, (fused.outputs[0],))[0].argmax())
    calls = {}
    for name in METHODS:
        onnxviz.explain(unfused, x, name, target=target, progress=False)
        calls[name] = {"unfused": lambda n=name: onnxviz.explain(unfused, x, n, target=target, progress=False)}
    fusion.fuse_gelu = original
    xt = torch.from_numpy(x)
    for name, (peer, kw) in METHODS.items():
        method = getattr(captum.attr, peer)(net)
        calls[name]["onnxviz"] = lambda n=name: onnxviz.explain(fused, x, n, target=target, progress=False)
        calls[name]["captum"] = lambda m=method, k=kw: m.attribute(xt.clone().requires_grad_(), target=target, **k)
    rows = []
    for name, sides in calls.items():
        for fn in sides.values():
            fn()  # warm: views, sessions
        times: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(args.rounds):
            for side, fn in sides.items():
                times[side].append(timed(fn))
        med = {side: statistics.median(t) * 1e3 for side, t in times.items()}
        rows.append((name, f"onnxviz {med['onnxviz']:.1f} ms (GELU unfused {med['unfused']:.1f} ms), Captum "
                           f"{med['captum']:.1f} ms: Captum / onnxviz {med['captum'] / med['onnxviz']:.2f}x "
                           f"(unfused {med['captum'] / med['unfused']:.2f}x); medians of {args.rounds} rounds"))
    report(rows)


if __name__ == "__main__":
    main()
