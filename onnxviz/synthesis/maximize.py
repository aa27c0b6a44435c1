"""Activation maximization: an image that drives a channel, a neuron or a class (or a weighted mix) up,
under image priors and robustness transforms.

Erhan et al. 2009; Olah, Mordvintsev & Schubert 2017, https://distill.pub/2017/feature-visualization/
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..options import option
from . import objectives
from .base import Request, Synthesis, Synthesized
from .loop import Schedule, ascend


@dataclass(frozen=True)
class MaximizeOptions:
    steps: int = option(256, "optimization steps")
    lr: float = option(0.05, "Adam learning rate")
    param: Literal["fourier", "pixel"] = option("fourier", "fourier (decorrelated colour, as Lucid) or pixel")
    l1: float = option(0.0, "weight of mean |x| (the 'no ink' prior)")
    l2: float = option(0.0, "weight of mean x^2")
    tv: float = option(0.0, "weight of total variation")
    jitter: int = option(2, "random shift per step, in pixels")
    scale: tuple[float, ...] = option((1.0, 1.0), "random scale range per step, e.g. 0.9,1.1")
    rotate: float = option(0.0, "random rotation per step, up to this many degrees")
    blur_every: int = option(0, "blur the image every k steps (pixel parameterization; 0: never)")
    blur_sigma: float = option(0.5, "blur strength")
    frames: int = option(0, "snapshots for a GIF of the optimization (0: none)")
    pre_relu: bool = option(True, "read a ReLU layer before its ReLU (dead channels still get a gradient)")

    def __post_init__(self):
        if self.steps < 1 or self.lr <= 0 or len(self.scale) != 2 or min(self.scale) <= 0:
            raise ValueError("steps >= 1, lr > 0 and scale as two positive factors (min,max)")

    def schedule(self) -> Schedule:
        return Schedule(self.steps, self.lr, self.param, self.l1, self.l2, self.tv, self.jitter,
                        (float(self.scale[0]), float(self.scale[1])), self.rotate, self.blur_every,
                        self.blur_sigma, self.frames)


class Maximize(Synthesis):
    """Gradient ascent on an objective spec; a channel range gives one image per channel."""

    name = "maximize"
    takes_objective = True
    paper = "https://distill.pub/2017/feature-visualization/"
    Options = MaximizeOptions

    def synthesize(self, engine, request: Request, opts: MaximizeOptions) -> Synthesized:
        goal = objectives.as_objective(request.objective, engine, opts.pre_relu)
        names = goal.tensors(engine.logits)

        def objective(images):
            values = dict(zip(names, engine.tensors(images, names), strict=True))
            return goal.value(values, engine.logits, len(images))

        batch = goal.images
        images, history, frames = ascend(engine, batch, objective, opts.schedule(), "maximize")
        captions = [goal.label(i) for i in range(batch)]
        spec = request.objective if isinstance(request.objective, str) else goal.label()
        return Synthesized(images, captions, history, frames, {"objective": spec})
