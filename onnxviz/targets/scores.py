"""Scores: a target resolved on the clean input is a `Score`, a scalar per row computed from named model tensors.
The Context only ever calls a Score; a new target kind (a detection, an embedding) is a new Score subclass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Tensor = Any  # a numpy array or a torch tensor: scores are computed on either


def softmax(out: np.ndarray, axis: int = 1) -> np.ndarray:
    """Numerically stable softmax of a numpy array."""
    exp = np.exp(out - out.max(axis=axis, keepdims=True))
    return exp / exp.sum(axis=axis, keepdims=True)


_softmax = softmax  # `pick` takes a flag of the same name


def pick(out: Tensor, targets: np.ndarray | Sequence[int], softmax: bool, masks: np.ndarray | None = None) -> Tensor:
    """Score per sample: out[n, targets[n]], summed over any spatial dims (weighted by `masks[n]` when
    given: a segmentation region). Works on numpy arrays and torch tensors."""
    if isinstance(out, np.ndarray):
        if softmax:
            out = _softmax(out)
        sel = out[np.arange(len(out)), np.asarray(targets)]
        if masks is not None:
            sel = sel * masks
        return sel.reshape(len(out), -1).sum(axis=1)
    import torch

    if softmax:
        out = out.softmax(dim=1)
    idx = torch.as_tensor(np.asarray(targets), device=out.device)
    sel = out[torch.arange(out.shape[0], device=out.device), idx]
    if masks is not None:
        sel = sel * torch.as_tensor(masks, dtype=sel.dtype, device=sel.device)
    return sel.reshape(out.shape[0], -1).sum(dim=1)


@dataclass(frozen=True, eq=False)
class Score:
    """A resolved target: `tensors` it reads, and `__call__(outputs, rows)` -> one score per row (numpy arrays or
    torch tensors in, the same out; differentiable for torch). `rows(r)` is the score of copies of samples r."""

    tensors: tuple[str, ...]

    def __call__(self, outputs: Sequence[Tensor], rows: np.ndarray) -> Tensor:
        raise NotImplementedError

    def rows(self, rows: np.ndarray) -> Score:
        raise NotImplementedError

    def gradient_problem(self) -> str | None:
        """Why this score has no gradient to follow (a selection such as NMS inside the graph), or None."""
        return None


@dataclass(frozen=True, eq=False)
class ClassScore(Score):
    """out[n, class[n]] of one tensor (logits, or probabilities with `softmax`), summed over any spatial axes and
    weighted by a region mask per sample when given (segmentation)."""

    classes: np.ndarray
    softmax: bool = False
    masks: np.ndarray | None = None

    def __call__(self, outputs: Sequence[Tensor], rows: np.ndarray) -> Tensor:
        masks = None if self.masks is None else self.masks[rows]
        return pick(outputs[0], self.classes[rows], self.softmax, masks)

    def rows(self, rows: np.ndarray) -> ClassScore:
        return ClassScore(self.tensors, self.classes[rows], self.softmax,
                          None if self.masks is None else self.masks[rows])
