"""Is an explanation faithful to the model? Deletion and insertion curves (Petsiuk et al. 2018,
https://arxiv.org/abs/1806.07421): the target's probability as the most important pixels are removed
(deletion: it should fall fast, low AUC) or revealed on a blurred copy (insertion: it should rise fast, high
AUC); and the average drop / increase in confidence when the image is masked by its own map (Chattopadhay et
al. 2018, https://arxiv.org/abs/1710.11063). All on onnxruntime, batched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..baselines import make_baseline
from ..io import resize
from ..model import Model
from ..targets import Target, parse_targets, resolve, softmax
from ..targets.spec import TargetSpec


@dataclass(frozen=True)
class Faithfulness:
    deletion: np.ndarray  # (N, steps + 1) target probability as pixels are removed
    insertion: np.ndarray  # (N, steps + 1) as they are revealed
    deletion_auc: np.ndarray  # (N,) lower is better
    insertion_auc: np.ndarray  # (N,) higher is better
    average_drop: float  # percent, lower is better
    increase: float  # percent of images whose confidence rises, higher is better


# the target's score of copies of one image: (batch of copies, index of the image) -> one score per copy
Scorer = Callable[[np.ndarray, int], np.ndarray]


def _probabilities(model: Model, x: np.ndarray, targets: np.ndarray, batch_size: int) -> np.ndarray:
    tensor, _ = model.score_tensor(Target())
    (z,) = model.run(x, (tensor,), batch_size)
    return softmax(z.reshape(len(z), -1).astype(np.float64))[np.arange(len(z)), targets]


def target_scorer(model: Model, target: TargetSpec, x: np.ndarray, batch_size: int = 32) -> Scorer | None:
    """The score the curves follow for a target that is no class (a detection, a similarity, a unit, an output
    element): the target's own score, resolved once on the clean batch `x`. None for classes, whose curves follow
    the softmax probability."""
    spec, indices = parse_targets(target, len(x))
    if spec.kind == "class" and spec.region != "all":
        return None
    score = resolve(model, spec, x, indices, None, batch_size).score

    def scorer(batch: np.ndarray, i: int) -> np.ndarray:
        outs = model.run(batch, score.tensors, batch_size)
        return np.asarray(score(outs, np.full(len(batch), i)), np.float64)
    return scorer


def _scores(model: Model, x: np.ndarray, targets: np.ndarray, i: int | None, batch_size: int,
            scorer: Scorer | None) -> np.ndarray:
    """Scores of a batch: copies of image `i`, or (i None) one row per image."""
    if scorer is None:
        return _probabilities(model, x, targets if i is None else np.full(len(x), targets[i]), batch_size)
    if i is not None:
        return scorer(x, i)
    return np.array([scorer(x[k : k + 1], k)[0] for k in range(len(x))])


def _curves(model, x, maps, targets, steps, batch_size, reveal: bool, blur: bool = True,
            scorer: Scorer | None = None) -> np.ndarray:
    layout = model.input.axes
    h, w = maps.shape[1:]
    base = make_baseline("blur", x, layout, None, max(h, w) / 20) if reveal and blur else np.zeros_like(x)
    out = np.empty((len(x), steps + 1))
    for i in range(len(x)):
        order = np.argsort(-maps[i].ravel(), kind="stable")
        shown = np.zeros((steps + 1, h * w), np.float32)
        for t in range(steps + 1):
            shown[t, order[: round(t / steps * h * w)]] = 1.0
        shown = shown.reshape(steps + 1, h, w)
        keep = shown if reveal else 1.0 - shown  # deletion keeps what is not yet removed
        keep = layout.over_channels(keep)
        batch = (x[i] * keep + base[i] * (1.0 - keep)).astype(x.dtype)
        out[i] = _scores(model, batch, targets, i, batch_size, scorer)
    return out


def faithfulness(model: Model, x: np.ndarray, maps: np.ndarray, targets, steps: int = 32, batch_size: int = 32,
                 insert_into: str = "blur", scorer: Scorer | None = None) -> Faithfulness:
    """Scores of (N, H, W) attribution `maps` (any size; resized to the input) for batch `x` and its targets (class
    probabilities, or `scorer`'s scores: see `target_scorer`). Deletion replaces pixels by 0 in the model's input
    space (the dataset mean for mean/std preprocessing); insertion reveals them on a blurred copy
    (`insert_into="blur"`, as Petsiuk et al.) or on zeros ("zero")."""
    if insert_into not in ("blur", "zero"):
        raise ValueError(f"insert_into must be blur or zero, not {insert_into!r}")
    targets = np.asarray(targets, np.int64)
    h, w = model.input_size
    maps = np.stack([resize(m.astype(np.float32), h, w) for m in maps])
    deletion = _curves(model, x, maps, targets, steps, batch_size, reveal=False, scorer=scorer)
    insertion = _curves(model, x, maps, targets, steps, batch_size, reveal=True, blur=insert_into == "blur",
                        scorer=scorer)
    fractions = np.linspace(0, 1, steps + 1)
    # average drop / increase: the image in [0, 1] multiplied by its min-max scaled map
    pre = model.preprocessing
    images = pre.invert(x)
    span = np.ptp(maps.reshape(len(maps), -1), axis=1).reshape(-1, 1, 1)
    unit = np.where(span > 0, (maps - maps.min(axis=(1, 2), keepdims=True)) / np.where(span > 0, span, 1), 0)
    masked = pre.apply((images * unit[..., None]).astype(np.float32)).astype(x.dtype)
    before = _scores(model, x, targets, None, batch_size, scorer)
    after = _scores(model, masked, targets, None, batch_size, scorer)
    drop = float(np.mean(np.maximum(0, before - after) / np.maximum(before, 1e-12)) * 100)
    increase = float(np.mean(after > before) * 100)
    return Faithfulness(deletion, insertion, _auc(deletion, fractions), _auc(insertion, fractions), drop, increase)


def _auc(curves: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Trapezoid rule over the fraction of pixels, per row."""
    return ((curves[:, 1:] + curves[:, :-1]) / 2 * np.diff(fractions)).sum(axis=1)
