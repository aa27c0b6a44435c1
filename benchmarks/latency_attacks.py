"""The attacks' table for benchmarks/latency.py: every registered attack on the model's photos (224 x 224, batch 1,
untargeted, eps 8/255), its queries and gradient steps per image, the share of the onnxruntime floor for the
black-box ones, and the peer: torchattacks on the native module (FGSM, PGD: the same steps, step size and loss) or
ART on the same onnxruntime session (SimBA, Square, HopSkipJump, one-pixel: the same budget), with the ratio of
time per query for those, whose query counts differ."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from bench_attacks import OURS, Counted, art_attack

import onnxviz
from onnxviz import registry
from onnxviz.attacks.base import Attack

EPS = 8 / 255
# per-image budgets small enough for a table row, the same on both sides
QUERIES = {"simba": 1000, "square": 500, "one_pixel": 2000, "hopskipjump": 1000}
HEADER = ["| attack | ms / image | peak MiB | queries / image | gradient steps / image | share of floor | fooled "
          "| peer | peer ms / image | peer queries / image | peer fooled | peer / onnxviz | goal |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]


def options(name: str) -> dict:
    if name == "fgsm":
        return {"eps": EPS}
    if name == "pgd":
        return {"eps": EPS, "steps": 10, "random_start": False}
    budget = {**OURS[name], "max_queries": QUERIES[name]}
    if name in ("simba", "square"):
        budget["eps"] = EPS
    if name == "hopskipjump":
        budget["eps"] = 20.0  # L2; a random-weight net's boundary is far
    return budget


def _normalized(net: torch.nn.Module, pre) -> torch.nn.Module:
    """The native net taking [0, 1] NCHW images, with the ONNX model's preprocessing in front (for torchattacks)."""
    mean = torch.tensor(pre.mean).reshape(1, -1, 1, 1)
    std = torch.tensor(pre.std).reshape(1, -1, 1, 1)
    return torch.nn.Sequential(_Affine(pre.scale, mean, std), net).eval()


class _Affine(torch.nn.Module):
    def __init__(self, scale: float, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.scale, self.mean, self.std = scale, mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.scale - self.mean) / self.std


def _torchattacks(name: str, net: torch.nn.Module, model, images: np.ndarray):
    import torchattacks

    wrapped = _normalized(net, model.preprocessing)
    if name == "fgsm":
        attack = torchattacks.FGSM(wrapped, eps=EPS)
    else:
        attack = torchattacks.PGD(wrapped, eps=EPS, alpha=EPS / 4, steps=10, random_start=False)
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))

    def run() -> tuple[int, float]:  # the same task as ours: label the photo, attack it, say if it was fooled
        with torch.no_grad():
            y = wrapped(x).argmax(1)
        adversarial = attack(x, y)
        with torch.no_grad():
            fooled = float((wrapped(adversarial).argmax(1) != y).float().mean())
        return 0, fooled
    return run


def _art(name: str, model, images: np.ndarray, labels: np.ndarray):
    from art.estimators.classification import BlackBoxClassifierNeuralNetwork

    counted = Counted(model)
    n_classes = int(counted(images[:1]).shape[1])
    classifier = BlackBoxClassifierNeuralNetwork(counted, images.shape[1:], n_classes, channels_first=False,
                                                 clip_values=(0.0, 1.0))
    attack = art_attack(name, classifier, EPS if name != "hopskipjump" else 20.0, QUERIES[name])

    def run() -> tuple[int, float]:
        counted.calls = 0
        adversarial = attack(images)
        spent = counted.calls
        return spent, float((counted(adversarial).argmax(axis=1) != labels).mean())
    return run


def peer(name: str, net, model, images: np.ndarray, labels: np.ndarray) -> tuple[str, Callable] | None:
    if name in ("fgsm", "pgd"):
        return f"torchattacks {name.upper()}", _torchattacks(name, net, model, images)
    if name in QUERIES:
        return {"simba": "ART SimBA (px)", "square": "ART SquareAttack", "one_pixel": "ART PixelAttack",
                "hopskipjump": "ART HopSkipJump"}[name], _art(name, model, images, labels)
    return None


def rows(model, net, photo: np.ndarray, floor: float, peers: bool,
         measure: Callable, one_line: Callable, chosen: list[str] | None) -> list[str]:
    """The attacks section for one model: one photo, attacked alone."""
    from onnxviz.attacks.run import read_images

    images, _ = read_images([photo], model)
    x = onnxviz.load_image([photo], model)
    single = min(measure(lambda: model.run(x, (model.outputs[0],)))[0] for _ in range(3))
    lines = ["\n### attacks (batch 1)\n",
             f"One photo, untargeted, eps 8/255 (HopSkipJump: L2 20). Each side labels the photo, attacks it and "
             f"checks the result. Queries are onnxruntime forward passes; black-box attacks that query one image at "
             f"a time pay onnxruntime's batch-1 time, **{single * 1e3:.2f} ms** here, against the floor's "
             f"{floor * 1e3:.2f} ms per image at batch 32. Black-box peers (ART) query the same onnxruntime "
             f"session; their ratio is of time per query.\n", *HEADER]
    for name in registry.names(Attack):
        if chosen and name not in chosen:
            continue
        lines.append(row(name, model, net, images, floor, peers, measure, one_line))
        print(lines[-1], flush=True)
    return lines


def row(name: str, model, net, images: np.ndarray, floor: float, peers: bool, measure: Callable,
        one_line: Callable) -> str:
    n = len(images)
    found: list = []
    opts = options(name)

    def call() -> None:
        found[:] = [onnxviz.attack(model, images, name, progress=False, **opts)]

    try:
        seconds, peak = measure(call)
    except Exception as exc:
        return f"| {name} | n/a: {one_line(exc)} |" + " |" * 11
    result = found[0]
    queries, steps = result.queries.sum() / n, result.iterations.sum() / n
    black_box = registry.get(name).requires == "forward"
    share = queries * n * floor / seconds
    goal = ("✓" if share >= 0.85 else "✗ (< 85 % of the floor)") if black_box else ""
    cells = ["", "", "", "", ""]  # the peer's: name, ms / image, queries / image, fooled, ratio
    entry = peer(name, net, model, images, result.labels) if peers else None
    if entry is not None:
        label, run = entry
        spent: list = []
        try:
            theirs, _ = measure(lambda: spent.append(run()))
            their_queries, their_fooled = spent[-1]
            if black_box:  # time per query: the budgets match, the queries spent need not
                ratio = (theirs / max(their_queries, 1)) / (seconds / max(queries * n, 1))
            else:
                ratio = theirs / seconds
                goal = "✓" if ratio >= 0.9 else "✗ (< 0.9x)"
            cells = [label, f"{theirs / n * 1e3:.1f}", f"{their_queries / n:.0f}" if black_box else "",
                     f"{their_fooled:.0%}", f"{ratio:.2f}x" + (" per query" if black_box else "")]
        except Exception as exc:
            cells = [label, f"n/a: {one_line(exc)}", "", "", ""]
    return (f"| {name} | {seconds / n * 1e3:.1f} | {peak:.0f} | {queries:.0f} | {steps:.0f} | "
            f"{f'{share:.0%}' if black_box else ''} | {result.success_rate:.0%} | " + " | ".join([*cells, goal]) + " |")
