"""White-box attacks: one signed gradient step (FGSM) and projected gradient descent (PGD, L-inf or L2).

FGSM: Goodfellow, Shlens & Szegedy 2015, https://arxiv.org/abs/1412.6572
PGD: Madry et al. 2018, https://arxiv.org/abs/1706.06083
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..options import option
from .base import Attack
from .budget import Norm, project
from .losses import Loss


@dataclass(frozen=True)
class FgsmOptions:
    eps: float = option(8 / 255, "L-inf budget in [0, 1] image space (8/255 = 8 grey levels)")
    loss: Loss = option("ce", "objective: ce (as torchattacks), logit (reduce the class logit) or margin")

    def __post_init__(self):
        if self.eps < 0:
            raise ValueError("eps must be >= 0")


class Fgsm(Attack):
    """x + eps * sign(gradient of the loss), clipped to [0, 1]."""

    name = "fgsm"
    requires = "gradients"
    estimable = True
    paper = "https://arxiv.org/abs/1412.6572"
    Options = FgsmOptions

    def attack(self, oracle, opts: FgsmOptions) -> np.ndarray:
        rows = np.arange(len(oracle.images))
        grad = oracle.gradient(oracle.images, rows, opts.loss)
        return project(oracle.images, oracle.images + opts.eps * np.sign(grad), opts.eps, "linf")


@dataclass(frozen=True)
class PgdOptions:
    eps: float = option(8 / 255, "budget in [0, 1] image space, in the chosen norm")
    norm: Norm = option("linf", "linf or l2")
    steps: int = option(10, "gradient steps")
    step_size: float | None = option(None, "step per iteration (default: eps / 4 for linf, eps / 5 for l2)")
    random_start: bool = option(True, "start from a random point of the eps-ball")
    loss: Loss = option("ce", "objective: ce (as torchattacks), logit (reduce the class logit) or margin")

    def __post_init__(self):
        if self.eps < 0 or self.steps < 1 or (self.step_size is not None and self.step_size <= 0):
            raise ValueError("eps must be >= 0, steps >= 1 and step_size > 0")


class Pgd(Attack):
    """Steps along the signed (L-inf) or normalized (L2) gradient, projected back onto the eps-ball."""

    name = "pgd"
    requires = "gradients"
    estimable = True
    paper = "https://arxiv.org/abs/1706.06083"
    Options = PgdOptions

    def attack(self, oracle, opts: PgdOptions) -> np.ndarray:
        x = oracle.images
        rows = np.arange(len(x))
        alpha = opts.step_size or opts.eps / (4 if opts.norm == "linf" else 5)
        adv = project(x, x + self._start(oracle, opts), opts.eps, opts.norm) if opts.random_start else x.copy()
        with oracle.progress(opts.steps, "pgd") as bar:
            for _ in range(opts.steps):
                grad = oracle.gradient(adv, rows, opts.loss)
                adv = project(x, adv + alpha * _direction(grad, opts.norm), opts.eps, opts.norm)
                bar.update()
        return adv

    @staticmethod
    def _start(oracle, opts: PgdOptions) -> np.ndarray:
        """Uniform in the L-inf box, or a random direction at a uniform radius in the L2 ball (as torchattacks)."""
        shape = oracle.images.shape[1:]
        starts = []
        for row in range(len(oracle.images)):
            rng = oracle.rng(row)
            if opts.norm == "linf":
                starts.append(rng.uniform(-opts.eps, opts.eps, shape))
            else:
                d = rng.standard_normal(shape)
                starts.append(d / max(np.linalg.norm(d), 1e-12) * rng.uniform() * opts.eps)
        return np.stack(starts).astype(np.float32)


def _direction(grad: np.ndarray, norm: Norm) -> np.ndarray:
    if norm == "linf":
        return np.sign(grad)
    length = np.sqrt((grad.reshape(len(grad), -1).astype(np.float64) ** 2).sum(axis=1)) + 1e-10
    return (grad / length.reshape(-1, *[1] * (grad.ndim - 1))).astype(np.float32)
