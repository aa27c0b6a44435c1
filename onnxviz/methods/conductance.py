"""Conductance: how much of the score's change from a baseline flows through each neuron of a layer (layer
conductance), or through one neuron from each input value (neuron conductance), integrated along the straight
path as Captum does.

Dhamdhere, Sundararajan & Yan 2018, https://arxiv.org/abs/1805.12233
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..baselines import check_baseline, make_baseline
from ..errors import MethodError
from ..layers import map_layout
from ..method import Method, MethodOutput
from ..options import option
from ..targets.unit import UnitScore
from .integrated_gradients import MAX_STEPS, Rule, path_rule


@dataclass(frozen=True)
class ConductanceOptions:
    n_steps: int = option(50, "intervals of the path from the baseline to the input")
    baselines: float | str | np.ndarray = option(0.0, "a value, mean, blur, uniform, or an array (Python)")
    method: Rule = option("gausslegendre", "where the path is sampled (as Captum: riemann_* or gausslegendre)")
    blur_sigma: float = option(10.0, "Gaussian sigma in pixels for baselines=blur")

    def __post_init__(self):
        if not 2 <= self.n_steps <= MAX_STEPS:
            raise ValueError(f"n_steps must be 2..{MAX_STEPS:,}, not {self.n_steps:,}")
        check_baseline(self.baselines, files=False)


def _path(x: np.ndarray, baseline: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    return (baseline[None] + alphas.reshape(-1, *[1] * x.ndim) * (x - baseline)[None]).astype(x.dtype)


class Conductance(Method):
    """Per neuron of the layer: sum over the path of (change of its activation) x (gradient of the score at it);
    the map is the sum over channels, every neuron's value in `extras["layer_conductance"]` (channels first)."""

    name = "conductance"
    family = "attribution"
    requires = "gradients"
    needs_layer = True
    output = "map"
    display = "absolute"
    paper = "https://arxiv.org/abs/1805.12233"
    Options = ConductanceOptions

    def explain(self, ctx, x: np.ndarray, opts: ConductanceOptions) -> MethodOutput:
        baselines = make_baseline(opts.baselines, x, ctx.layout, ctx.sample_rng, opts.blur_sigma)
        alphas, _ = path_rule(opts.method, opts.n_steps + 1)  # n_steps + 1 points: n_steps differences
        per_neuron: list[np.ndarray] = []
        with ctx.progress(len(x) * (opts.n_steps + 1), "conductance") as bar:
            for i in range(len(x)):
                total: np.ndarray | None = None
                previous: tuple[np.ndarray, np.ndarray] | None = None
                for start in range(0, len(alphas), ctx.batch_size):  # bounded: one chunk of points at a time
                    points = _path(x[i], baselines[i], alphas[start:start + ctx.batch_size])
                    acts, grads = ctx.for_samples([i] * len(points)).grad(points, wrt=ctx.layer.name,
                                                                          with_activations=True)
                    if previous is not None:  # the difference that spans two chunks
                        acts, grads = np.concatenate([previous[0], acts]), np.concatenate([previous[1], grads])
                    part = ((acts[1:] - acts[:-1]) * grads[:-1]).sum(axis=0)
                    total = part if total is None else total + part
                    previous = (acts[-1:], grads[-1:])
                    bar.update(len(points))
                if total is not None:
                    per_neuron.append(total)
        layer = np.stack(per_neuron).astype(np.float32)
        folded = map_layout(ctx.layer, layer.shape).to_channels_first(layer)
        if folded.ndim != 4:
            raise MethodError(f"conductance draws a map of a feature map or token grid; {ctx.layer.name} has shape "
                              f"{list(layer.shape)}")
        gap = ctx.explained_scores(x) - ctx.score(baselines)
        return MethodOutput(folded.sum(axis=1), raw=folded.sum(axis=1), extras={
            "layer_conductance": folded,
            "completeness_error": (folded.reshape(len(x), -1).sum(axis=1) - gap).tolist(),
        })


@dataclass(frozen=True)
class NeuronConductanceOptions(ConductanceOptions):
    neuron: tuple[int, ...] | None = option(None, "the neuron in the layer: channel,row,column (channels first), or "
                                                  "the channel of a (N, C) layer; default: each image's strongest")


class NeuronConductance(Method):
    """Per input value: (x - baseline) x the path integral of d score/d neuron x d neuron/d input (one neuron)."""

    name = "neuron_conductance"
    family = "attribution"
    requires = "gradients"
    needs_layer = True
    display = "absolute"
    paper = "https://arxiv.org/abs/1805.12233"
    Options = NeuronConductanceOptions

    def explain(self, ctx, x: np.ndarray, opts: NeuronConductanceOptions) -> MethodOutput:
        baselines = make_baseline(opts.baselines, x, ctx.layout, ctx.sample_rng, opts.blur_sigma)
        alphas, weights = path_rule(opts.method, opts.n_steps)
        totals = np.zeros(x.shape, np.float64)
        with ctx.progress(len(x) * opts.n_steps, "neuron conductance") as bar:
            for i in range(len(x)):
                unit = self._unit(ctx, x[i:i + 1], opts.neuron)  # by default each image's own strongest neuron
                for start in range(0, opts.n_steps, ctx.batch_size):
                    part = slice(start, start + ctx.batch_size)
                    points = _path(x[i], baselines[i], alphas[part])
                    rows = ctx.for_samples([i] * len(points))
                    through = unit([rows.grad(points, wrt=ctx.layer.name)], np.arange(len(points)))
                    inward = rows.scoring(unit).grad(points)
                    scale = (weights[part] * np.asarray(through)).reshape(-1, *[1] * x[i].ndim)
                    totals[i] += (scale * inward).sum(axis=0)
                    bar.update(len(points))
        return MethodOutput(((x - baselines) * totals).astype(np.float32))

    @staticmethod
    def _unit(ctx, sample: np.ndarray, neuron: tuple[int, ...] | None) -> UnitScore:
        (acts,) = ctx.outputs(sample, (ctx.layer.name,))
        if neuron is None:
            first = acts if acts.ndim == 2 else map_layout(ctx.layer, acts.shape).to_channels_first(acts)
            neuron = tuple(int(i) for i in np.unravel_index(np.argmax(first[0]), first.shape[1:]))
        if acts.ndim == 2:
            if len(neuron) != 1 or not 0 <= neuron[0] < acts.shape[1]:
                raise MethodError(f"layer {ctx.layer.name} has {acts.shape[1]} values per image: neuron is one "
                                  f"channel 0..{acts.shape[1] - 1}, not {neuron}")
            return UnitScore((ctx.layer.name,), map_layout(ctx.layer, acts.shape), neuron[0])
        axes = map_layout(ctx.layer, acts.shape)
        grid = axes.to_channels_first(acts).shape[1:]
        if len(neuron) != 3 or not all(0 <= n < size for n, size in zip(neuron, grid, strict=True)):
            raise MethodError(f"neuron must be channel,row,column inside layer {ctx.layer.name}'s "
                              f"{' x '.join(map(str, grid))} (channels first), not {','.join(map(str, neuron))}")
        return UnitScore((ctx.layer.name,), axes, neuron[0], "at", (neuron[1], neuron[2]))
