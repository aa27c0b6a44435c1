"""What a user asks to explain: `Target` and its text form, per-image indices, range and finiteness checks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from ..errors import TargetError


@dataclass(frozen=True)
class Target:
    """`index` is a class index or "top1"; `output` an ONNX output name (None: the first);
    `softmax` scores probabilities instead of logits."""

    index: int | str = "top1"
    output: str | None = None
    softmax: bool = False
    region: str | None = None  # segmentation: "predicted", "box:x0,y0,x1,y1" (output pixels), "photo:x0,y0,x1,y1"
    # (pixels of the original image), or "mask:PATH"; None = all pixels

    @classmethod
    def parse(cls, spec: int | str | Target | None) -> Target:
        """`281`, `top1`, `softmax:281`, `OUTPUT:281`, and for segmentation outputs a region after `@`:
        `7@predicted` (pixels predicted as 7), `7@box:x0,y0,x1,y1` in the output's pixels, `7@photo:x0,y0,x1,y1`
        in the original image's pixels (mapped through the resize), `7@mask:road.png`."""
        if spec is None:
            return cls()
        if isinstance(spec, Target):
            return spec
        if isinstance(spec, (bool, np.bool_)):
            raise TargetError(f"bad target {spec!r}: use a class index (281), top1, or softmax:281")
        if isinstance(spec, (int, np.integer)):
            return cls(index=_index(int(spec)))
        if not isinstance(spec, str) or not spec.strip():
            raise TargetError(f"bad target {spec!r}: use a class index (281), top1, or softmax:281")
        spec, _, region = spec.strip().partition("@")
        if region and not (region == "predicted" or region.startswith(("box:", "photo:", "mask:"))):
            raise TargetError(f"bad region {region!r}: use predicted, box:x0,y0,x1,y1 (output pixels), "
                              "photo:x0,y0,x1,y1 (pixels of the original image) or mask:PATH")
        *prefix, last = spec.split(":")
        softmax = "softmax" in prefix
        names = [p for p in prefix if p != "softmax"]
        if len(names) > 1:
            raise TargetError(f"bad target {spec!r}: expected [softmax:][OUTPUT:]INDEX")
        index: int | str = last
        if last != "top1":
            try:
                index = _index(int(last))
            except ValueError:
                raise TargetError(f"bad target {spec!r}: {last!r} is neither a class index nor top1") from None
        return cls(index=index, output=names[0] if names else None, softmax=softmax, region=region or None)

    def __str__(self) -> str:
        text = ":".join([*(["softmax"] if self.softmax else []), *([self.output] if self.output else []),
                         str(self.index)])
        return f"{text}@{self.region}" if self.region else text


# what users may pass as a target: one spec, or one per image
TargetSpec = int | str | Target | Sequence[int | str | Target] | np.ndarray | None


def _index(value: int) -> int:
    """A class index as given; one no model could have (past int64) is refused here, before numpy overflows."""
    if not -(2**62) < value < 2**62:
        raise TargetError(f"target {value} is out of range: no model has that many classes")
    return value


def parse_targets(spec: TargetSpec, n: int) -> tuple[Target, np.ndarray | None]:
    """A spec for a batch of `n` -> (the Target, explicit per-sample indices or None for top1)."""
    if isinstance(spec, (list, tuple, np.ndarray)):
        if len(spec) != n:
            raise TargetError(f"{len(spec)} targets given for {n} images; give one per image or a single target")
        parsed = [Target.parse(s) for s in spec]
        base = parsed[0]
        if any((p.output, p.softmax, p.region) != (base.output, base.softmax, base.region) for p in parsed):
            raise TargetError("per-image targets must share the output, the softmax setting and the region")
        if any(p.index == "top1" for p in parsed):
            raise TargetError("per-image targets must be class indices")
        return base, np.array([p.index for p in parsed], dtype=np.int64)
    target = Target.parse(cast("int | str | Target | None", spec))  # not a sequence: checked above
    if target.index == "top1":
        return target, None
    return target, np.full(n, target.index, dtype=np.int64)


def check_range(indices: Iterable[int] | np.ndarray, n_classes: int) -> None:
    """Every index (Python ints of any size, or an array) names one of `n_classes` classes."""
    bad = [int(i) for i in indices if not 0 <= int(i) < n_classes]
    if bad:
        raise TargetError(f"target {bad[0]} is out of range: the model has {n_classes} classes (0..{n_classes - 1})")


def check_finite(scores: np.ndarray, output: str, what: str) -> None:
    """Clean scores a command builds on must be finite (an attack or a robustness curve on NaN means nothing)."""
    bad = [int(i) for i in np.flatnonzero(~np.isfinite(scores.reshape(len(scores), -1)).all(axis=1))]
    if bad:
        raise TargetError(f"the model's output {output!r} is NaN or infinite for image(s) {bad[:10]}: {what} needs "
                          "finite scores (NaN or Inf in the weights? an input outside the range the model expects?)")
