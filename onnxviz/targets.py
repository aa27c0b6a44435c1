"""Targets: which output, which class, raw or softmax. "top1" is resolved once on the clean input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import TargetError

TargetSpec = "int | str | Target | Sequence[int] | None"


@dataclass(frozen=True)
class Target:
    """`index` is a class index or "top1"; `output` an ONNX output name (None: the first);
    `softmax` scores probabilities instead of logits."""

    index: int | str = "top1"
    output: str | None = None
    softmax: bool = False

    @classmethod
    def parse(cls, spec: int | str | Target | None) -> Target:
        """`281`, `top1`, `softmax:281`, `softmax:top1`, `OUTPUT:281`, `softmax:OUTPUT:top1`."""
        if spec is None:
            return cls()
        if isinstance(spec, Target):
            return spec
        if isinstance(spec, (int, np.integer)):
            return cls(index=int(spec))
        if not isinstance(spec, str) or not spec.strip():
            raise TargetError(f"bad target {spec!r}: use a class index (281), top1, or softmax:281")
        *prefix, last = spec.strip().split(":")
        softmax = "softmax" in prefix
        names = [p for p in prefix if p != "softmax"]
        if len(names) > 1:
            raise TargetError(f"bad target {spec!r}: expected [softmax:][OUTPUT:]INDEX")
        if last != "top1":
            try:
                last = int(last)
            except ValueError:
                raise TargetError(f"bad target {spec!r}: {last!r} is neither a class index nor top1") from None
        return cls(index=last, output=names[0] if names else None, softmax=softmax)

    def __str__(self) -> str:
        return ":".join([*(["softmax"] if self.softmax else []), *([self.output] if self.output else []),
                         str(self.index)])


def parse_targets(spec, n: int) -> tuple[Target, np.ndarray | None]:
    """A spec for a batch of `n` -> (the Target, explicit per-sample indices or None for top1)."""
    if isinstance(spec, (list, tuple, np.ndarray)):
        if len(spec) != n:
            raise TargetError(f"{len(spec)} targets given for {n} images; give one per image or a single target")
        parsed = [Target.parse(s) for s in spec]
        base = parsed[0]
        if any(p.output != base.output or p.softmax != base.softmax for p in parsed):
            raise TargetError("per-image targets must share the output and the softmax setting")
        if any(p.index == "top1" for p in parsed):
            raise TargetError("per-image targets must be class indices")
        return base, np.array([p.index for p in parsed], dtype=np.int64)
    target = Target.parse(spec)
    if target.index == "top1":
        return target, None
    return target, np.full(n, target.index, dtype=np.int64)


def check_range(indices: np.ndarray, n_classes: int) -> None:
    bad = [int(i) for i in indices if not 0 <= i < n_classes]
    if bad:
        raise TargetError(f"target {bad[0]} is out of range: the model has {n_classes} classes (0..{n_classes - 1})")


def pick(out, targets, softmax: bool):
    """Score per sample: out[n, targets[n]] (summed over any spatial dims), numpy or torch."""
    if isinstance(out, np.ndarray):
        if softmax:
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out = out / out.sum(axis=1, keepdims=True)
        sel = out[np.arange(len(out)), np.asarray(targets)]
        return sel.reshape(len(out), -1).sum(axis=1)
    import torch

    if softmax:
        out = out.softmax(dim=1)
    idx = torch.as_tensor(np.asarray(targets), device=out.device)
    sel = out[torch.arange(out.shape[0], device=out.device), idx]
    return sel.reshape(out.shape[0], -1).sum(dim=1)


def as_indices(targets: int | Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    """An int or a per-sample sequence -> an int64 array of length n."""
    arr = np.asarray(targets, dtype=np.int64)
    return np.full(n, int(arr), dtype=np.int64) if arr.ndim == 0 else arr
