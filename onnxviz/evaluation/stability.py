"""Explanations under perturbation, as Captum's `captum.metrics` computes them: infidelity (Yeh et al. 2019,
https://arxiv.org/abs/1901.09392: how far attribution x noise is from the score change the noise causes) and
sensitivity-max (the largest relative change of the explanation when the input moves a little). Draws are seeded
by each image's bytes, so a batch scores as its images one by one."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..io import resize
from ..model import Model
from ..runner import sample_rng
from ..targets import Target

# the target's raw score (a class's logit, or the target's own score) of copies of image i: (batch, i) -> scores
RawScorer = Callable[[np.ndarray, int], np.ndarray]


def class_logits(model: Model, targets: np.ndarray, batch_size: int = 32) -> RawScorer:
    tensor, _ = model.score_tensor(Target())

    def score(batch: np.ndarray, i: int) -> np.ndarray:
        (z,) = model.run(batch, (tensor,), batch_size)
        return z.reshape(len(z), -1)[:, targets[i]].astype(np.float64)
    return score


def per_value(model: Model, x: np.ndarray, attributions: np.ndarray) -> np.ndarray:
    """Attributions broadcastable to x: pixel attributions as they are; (N, h, w) maps resized to the input and
    spread over its channels."""
    if attributions.shape == x.shape:
        return attributions.astype(np.float64)
    h, w = model.input_size
    maps = np.stack([resize(m.astype(np.float32), h, w) for m in attributions])
    return model.input.axes.over_channels(maps).astype(np.float64)


def infidelity_noise(image: np.ndarray, n: int, std: float, seed: int) -> np.ndarray:
    return sample_rng(image, seed).normal(0.0, std, (n, *image.shape))


def infidelity(model: Model, x: np.ndarray, attributions: np.ndarray, score: RawScorer, n_perturb: int = 10,
               std: float = 0.1, normalize: bool = False, seed: int = 0) -> np.ndarray:
    """Per image: the mean over Gaussian perturbations I (std `std`, model input space) of
    (sum(attribution x I) - (f(x) - f(x - I)))^2; with `normalize`, the attributions first scaled by the best
    factor (Captum's normalize)."""
    attr = per_value(model, x, attributions)
    out = np.empty(len(x))
    for i, image in enumerate(x):
        noise = infidelity_noise(image, n_perturb, std, seed)
        change = score(image[None], i)[0] - score((image - noise).astype(x.dtype), i)
        explained = (np.broadcast_to(attr[i], image.shape) * noise).reshape(n_perturb, -1).sum(axis=1)
        if normalize:
            beta = (explained * change).sum() / max((explained ** 2).sum(), 1e-30)
            explained = beta * explained
        out[i] = np.mean((explained - change) ** 2)
    return out


def sensitivity_noise(image: np.ndarray, n: int, radius: float, seed: int) -> np.ndarray:
    return sample_rng(image, seed).uniform(-radius, radius, (n, *image.shape))


def sensitivity_max(explain: Callable[[np.ndarray, int], np.ndarray], x: np.ndarray, attributions: np.ndarray,
                    n_perturb: int = 10, radius: float = 0.02, seed: int = 0) -> np.ndarray:
    """Per image: max over uniform perturbations (within +-`radius`) of ||e(x + d) - e(x)|| / ||e(x)|| (Frobenius),
    where explain(batch, i) explains copies of image i for its own target."""
    out = np.empty(len(x))
    for i, image in enumerate(x):
        moved = (image + sensitivity_noise(image, n_perturb, radius, seed)).astype(x.dtype)
        changed = explain(moved, i).reshape(n_perturb, -1).astype(np.float64)
        base = attributions[i].reshape(-1).astype(np.float64)
        norm = np.linalg.norm(base) or 1.0
        out[i] = (np.linalg.norm(changed - base, axis=1) / norm).max()
    return out
