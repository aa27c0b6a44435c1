"""The latency table: every registered method on resnet18, mobilenet_v3_large and vit_tiny (random weights,
224 x 224, real photos), batch 1 and 8, CPU threads = cores: ms per image, peak memory above the resident set before
the call, rows through the graph per image (forward and backward), the share of the onnxruntime forward floor for
forward-only methods, and beside it the peer on the native module where one exists, with the ratio; then every
attack on one photo (latency_attacks.py). Writes docs/latency.md; machine and versions on top.

    python benchmarks/latency.py                       # the whole table (an hour or more on 2 cores)
    python benchmarks/latency.py --models resnet18 --batches 1 --methods gradcam,scorecam --attacks none
    python benchmarks/latency.py --batches 1 --methods none --attacks fgsm,pgd
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import latency_attacks
import numpy as np
import torch
from common import photos, torchvision_pair
from latency_peers import PEERS, Native

import onnxviz
from onnxviz import registry
from onnxviz.backends.ort import OrtBackend
from onnxviz.backends.torch import TorchBackend
from onnxviz.method import Method

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ("resnet18", "mobilenet_v3_large", "vit_tiny")
SKIPPED_FAMILIES = {"attack", "synthesis"}
OVERRIDES = {"finite_difference": {"granularity": "patch:16"}}  # its default, every pixel, is 100 352 passes
PERTURBATION_ROWS = 10  # forward rows per image from which a method is held to the floor goal
GOALS = {"scorecam": 2.0, "ablationcam": 3.0}  # peer / onnxviz at least; other gradient methods 0.9, floor 0.85


# -- what a call costs -------------------------------------------------------------------------------------------
@dataclass
class Rows:
    """Rows of images through the graph, counted by wrapping the backends: forward (whole graph or from a layer)
    and backward (gradient calls)."""

    forward: int = 0
    from_layer: int = 0
    backward: int = 0
    inside: bool = False
    patches: list = field(default_factory=list)

    def __enter__(self) -> Rows:
        def count(owner, name, rows_of, kind):
            original = getattr(owner, name)

            def wrapped(*args, **kw):
                if self.inside:  # a rule's own gradient inside a backward pass, or a forward within a forward
                    return original(*args, **kw)
                setattr(self, kind, getattr(self, kind) + rows_of(*args, **kw))
                self.inside = True
                try:
                    return original(*args, **kw)
                finally:
                    self.inside = False

            setattr(owner, name, wrapped)
            self.patches.append((owner, name, original))

        count(OrtBackend, "run", lambda s, x, *a, **k: len(x), "forward")
        count(OrtBackend, "run_from", lambda s, layer, acts, *a, **k: len(acts[0] if isinstance(acts, tuple)
                                                                           else acts), "from_layer")
        count(TorchBackend, "forward", lambda s, x, *a, **k: int(x.shape[0]), "forward")
        count(torch.autograd, "grad", lambda outputs, inputs, *a, **k: _rows(inputs), "backward")
        count(torch.Tensor, "backward", lambda t, *a, **k: 1, "backward")
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self.patches):
            setattr(owner, name, original)


def _rows(inputs) -> int:
    first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
    return int(first.shape[0]) if getattr(first, "ndim", 0) else 1


def _status(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(fn: Callable[[], object], repeat: bool = True) -> tuple[float, float]:
    """(seconds: one run, or the best of three when one takes under a second and `repeat`; peak MiB above the RSS
    before)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets the high-water mark (Linux)
    before = _status("VmRSS")
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    peak = _status("VmHWM") - before
    if repeat and seconds < 1.0:
        for _ in range(2):
            start = time.perf_counter()
            fn()
            seconds = min(seconds, time.perf_counter() - start)
    return seconds, peak


# -- the networks ---------------------------------------------------------------------------------------------------
def network(arch: str) -> tuple[torch.nn.Module, Path, torch.nn.Module, Callable | None]:
    """(native net, its legacy ONNX export, the CAM layer module, the reshape of that layer's output to NCHW)."""
    if arch == "vit_tiny":
        import timm
        from bench_vit import export, reshape_for

        torch.manual_seed(0)
        net = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
        path = export(net, Path(tempfile.mkdtemp()) / "vit_tiny.onnx")
        return net, path, net.blocks[-1].norm1, reshape_for(1)
    net, path = torchvision_pair(arch)
    return net, path, net.layer4 if arch == "resnet18" else net.features[-1], None


def methods(chosen: list[str] | None) -> list[str]:
    names = [n for n in registry.names(Method) if getattr(registry.get(n), "family", "") not in SKIPPED_FAMILIES]
    return [n for n in names if n != "drise" and (not chosen or n in chosen)]


# -- the table ------------------------------------------------------------------------------------------------------
def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:90]


def run_arch(arch: str, batches: list[int], names: list[str], peers: bool, lines: list[str],
             save: Callable[[], None], attacks: list[str] | None = None) -> None:
    """The model's section, appended to `lines` row by row (`save` writes them: a stopped run keeps what it did)."""
    net, path, layer, reshape = network(arch)
    model = onnxviz.load(path)
    pool = photos(max(batches))
    lines.append(f"\n## {arch}\n")
    x64 = onnxviz.load_image(photos(32), model)
    forward = lambda: model.run(x64, (model.outputs[0],), batch_size=32)  # noqa: E731
    forward()  # the session is made on the first run
    floor = min(measure(forward)[0] for _ in range(3)) / len(x64)
    lines.append(f"onnxruntime forward floor: **{floor * 1e3:.2f} ms per image** (batch 32). "
                 f"Torch conversion: {'yes' if _converts(model) else 'no'}.\n")
    for batch in batches if names else []:
        x = onnxviz.load_image(pool[:batch], model)
        (logits,) = model.run(x, (model.outputs[0],))
        targets = logits.reshape(len(x), -1).argmax(1).tolist()
        native = Native(arch, net, torch.from_numpy(x), targets, layer, reshape)
        lines += [f"\n### batch {batch}\n",
                  "| method | ms / image | peak MiB | fwd rows / image | bwd rows / image | share of floor | peer "
                  "| peer ms / image | peer / onnxviz | goal |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name in names:
            lines.append(row(name, model, x, targets, native, floor, peers))
            print(lines[-1], flush=True)
            save()
    if attacks is not None:  # [] = every registered attack
        lines += latency_attacks.rows(model, net, pool[0], floor, peers, measure, one_line, attacks)
        save()


def _converts(model) -> bool:
    try:
        model.torch  # noqa: B018  (converted once, before any timing)
        return True
    except Exception:
        return False


def row(name: str, model, x: np.ndarray, targets: list[int], native: Native, floor: float, peers: bool) -> str:
    cls = registry.get(name)
    n = len(x)
    options = OVERRIDES.get(name, {})

    def call() -> object:
        return onnxviz.explain(model, x, name, target=targets, progress=False, **options)

    try:
        with Rows() as rows:  # one call, its passes counted
            seconds, peak = measure(call, repeat=False)
        if seconds < 5:  # measured again without one-time costs (sessions, views); slow methods hardly have them
            seconds, peak = measure(call)
    except Exception as exc:
        return f"| {name} | n/a: {one_line(exc)} | | | | | | | | |"
    ms = seconds / n * 1e3
    forward_only = getattr(cls, "requires", "") == "forward"
    share = f"{rows.forward * floor / seconds:.0%}" if forward_only and rows.forward else ""
    peer_name, peer_ms, ratio, goal = "", "", "", ""
    if forward_only and rows.forward >= PERTURBATION_ROWS * n:  # the floor goal is for methods made of many passes
        goal = "✓" if rows.forward * floor / seconds >= 0.85 else "✗ (< 85 % of the floor)"
    entry = PEERS.get(name)
    if peers and entry and (entry[2] is None or native.arch in entry[2]):
        peer_name = entry[0]
        try:
            fn = entry[1](native)
            theirs, _ = measure(fn)
            if theirs < 5:
                theirs, _ = measure(fn)
            peer_ms = f"{theirs / n * 1e3:.1f}"
            ratio_value = theirs / seconds
            ratio = f"{ratio_value:.2f}x"
            if not forward_only or name in GOALS:
                wanted = GOALS.get(name, 0.9)
                goal = "✓" if ratio_value >= wanted else f"✗ (< {wanted}x)"
        except Exception as exc:
            peer_ms = f"n/a: {one_line(exc)}"
    passes = f"{rows.forward / n:.0f}" + (f" + {rows.from_layer / n:.0f} from the layer" if rows.from_layer else "")
    name += "".join(f" ({k} {v})" for k, v in options.items())
    return (f"| {name} | {ms:.1f} | {peak:.0f} | {passes} | {rows.backward / n:.0f} | {share} | "
            f"{peer_name} | {peer_ms} | {ratio} | {goal} |")


def header() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    versions = ", ".join(f"{p} {_version(p)}" for p in ("onnxviz", "onnxruntime", "torch", "onnx2torch", "captum",
                                                           "grad-cam", "zennit", "timm"))
    return ["# Latency of every method",
            "",
            f"Written by `python benchmarks/latency.py` on {datetime.date.today()}: {cpu}, {os.cpu_count()} cores, "
            f"torch threads {torch.get_num_threads()}, Python {platform.python_version()}; {versions}.",
            "",
            "ms / image: the call's wall time divided by the batch (best of three under a second). Peak MiB: the "
            "resident set's high-water mark during the call above the resident set before it. Rows: images "
            "through the graph per input image: whole forward passes (+ passes from the CAM layer on, which cost "
            "a fraction of one) and backward passes. Share of floor: whole passes x the onnxruntime forward time "
            "per image at batch 32, over the method's time (forward-only methods; goal 85 % for those of 10 or "
            "more passes). Peer / onnxviz: the peer's time on the native PyTorch module "
            "over ours (above 1: onnxviz is faster; goals 0.9x for gradient methods, 2x Score-CAM, 3x "
            "Ablation-CAM). Default options everywhere except where the method's name says otherwise; the peers get "
            "the same steps, samples, windows and layer.",
            ""]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ARCHS), help=f"comma-separated, of {', '.join(ARCHS)}")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--methods", default="", help="comma-separated (default: every registered method)")
    parser.add_argument("--attacks", default="all", help="comma-separated attacks, all (default) or none")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "docs" / "latency.md"))
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    names = methods([m for m in args.methods.split(",") if m])
    attacks = None if args.attacks == "none" else [a for a in args.attacks.split(",") if a and a != "all"]
    lines = header()
    save = lambda: Path(args.out).write_text("\n".join(lines) + "\n")  # noqa: E731
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        for arch in args.models.split(","):
            run_arch(arch, [int(b) for b in args.batches.split(",")], names, not args.no_peers, lines, save,
                     attacks)
    print(f"wrote {args.out}", file=sys.stdout)


if __name__ == "__main__":
    main()
