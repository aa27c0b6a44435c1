"""Sanity check by cascading randomization (Adebayo et al. 2018, https://arxiv.org/abs/1810.03292): the
weights of the model are replaced by random ones from the top layer down, one layer more at each step, and
the explanation is recomputed. A method that explains the model must change; one whose maps stay alike
(edge detectors, input-only methods) fails."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ..api import explain
from ..model import Model, load
from .agreement import spearman, ssim

PARAMETRIC = {"Conv", "Gemm", "MatMul", "ConvTranspose"}


@dataclass(frozen=True)
class Sanity:
    layers: list[str]  # the layer randomized last at each step (top first)
    spearman_abs: np.ndarray  # (steps,) mean rank correlation of |map| with the original
    ssim: np.ndarray  # (steps,)
    threshold: float

    @property
    def passed(self) -> bool:
        """The fully randomized model's maps no longer look like the original ones."""
        return bool(self.spearman_abs[-1] < self.threshold)


def parametric_layers(model: Model) -> list[tuple[str, list[str]]]:
    """(output tensor, weight initializers) of every Conv / Gemm / MatMul with constant weights, top first."""
    inits = {i.name for i in model.proto.graph.initializer}
    found = [(n.output[0], [i for i in n.input[1:] if i in inits]) for n in model.proto.graph.node
             if n.op_type in PARAMETRIC]
    return [f for f in reversed(found) if f[1]]


def randomized(proto: onnx.ModelProto, names: set[str], rng: np.random.Generator) -> onnx.ModelProto:
    """A copy whose initializers in `names` are Gaussian with each one's own standard deviation."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    for init in out.graph.initializer:
        if init.name in names:
            w = numpy_helper.to_array(init)
            fresh = rng.standard_normal(w.shape) * (float(w.std()) or 1e-2)
            init.CopyFrom(numpy_helper.from_array(fresh.astype(w.dtype), init.name))
    return out


def cascading_randomization(model: Model, x: np.ndarray, method: str, steps: int | None = None,
                            threshold: float = 0.5, seed: int = 0, **options) -> Sanity:
    """Similarity of the explanation of `x` (targets fixed on the original model) after each step."""
    original = explain(model, x, method, progress=False, **options)
    layers = parametric_layers(model)
    groups = np.array_split(np.arange(len(layers)), min(steps or len(layers), len(layers)))
    rng = np.random.default_rng(seed)
    names: set[str] = set()
    tops, rho, ss = [], [], []
    for group in groups:
        for k in group:
            names.update(layers[k][1])
        tops.append(layers[group[-1]][0])
        changed = load(randomized(model.proto, names, rng), layout=model.input.layout, device=model.device,
                       parity_tolerance=model.parity_tolerance, limits=model.limits)
        maps = explain(changed, x, method, target=original.targets.tolist(), progress=False, **options).maps()
        pairs = list(zip(np.abs(original.maps()), np.abs(maps), strict=True))
        rho.append(np.mean([spearman(a, b) for a, b in pairs]))
        ss.append(np.mean([ssim(a, b) for a, b in pairs]))
    return Sanity(tops, np.array(rho), np.array(ss), threshold)
