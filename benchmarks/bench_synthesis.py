"""Activation maximization speed: steps/s for 512 steps at 224x224 on resnet18 (random weights), with the
objective in the last block (most of the network runs) and in the first block (the graph is cut there), and
the speed-up the cut gives. Runs on CUDA too when asked and available.

    python benchmarks/bench_synthesis.py [--steps 512] [--device cuda]
"""

from __future__ import annotations

import argparse

from common import report, resnet18_pair

import onnxviz


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    _, path = resnet18_pair()
    model = onnxviz.load(path, device=args.device)
    convs = [layer.name for layer in model.layers if layer.op_type == "Conv"]
    rows, rates = [], {}
    for where, layer in (("last block", convs[-1]), ("first block", convs[1]), ("class logit", None)):
        spec = f"{layer}:0" if layer else "class:1"
        onnxviz.synthesize(model, "maximize", spec, steps=2, progress=False)  # warm-up (conversion, caches)
        result = onnxviz.synthesize(model, "maximize", spec, steps=args.steps, progress=False)
        rates[where] = args.steps / result.seconds
        rows.append((f"{where} ({spec[:40]})", f"{args.steps} steps in {result.seconds:.1f} s = "
                                                f"{rates[where]:.1f} steps/s ({model.torch.device})"))
    rows.append(("cut at the first block", f"{rates['first block'] / rates['class logit']:.2f}x the steps/s of "
                                           f"the full network, {rates['first block'] / rates['last block']:.2f}x "
                                           "the last block's"))
    report(rows)


if __name__ == "__main__":
    main()
