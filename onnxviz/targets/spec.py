"""Targets: which output, which class, raw or softmax. "top1" is resolved once on the clean input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import TargetError


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
        if last != "top1":
            try:
                last = _index(int(last))
            except ValueError:
                raise TargetError(f"bad target {spec!r}: {last!r} is neither a class index nor top1") from None
        return cls(index=last, output=names[0] if names else None, softmax=softmax, region=region or None)

    def __str__(self) -> str:
        text = ":".join([*(["softmax"] if self.softmax else []), *([self.output] if self.output else []),
                         str(self.index)])
        return f"{text}@{self.region}" if self.region else text


def _index(value: int) -> int:
    """A class index as given; one no model could have (past int64) is refused here, before numpy overflows."""
    if not -(2**62) < value < 2**62:
        raise TargetError(f"target {value} is out of range: no model has that many classes")
    return value


def parse_targets(spec, n: int) -> tuple[Target, np.ndarray | None]:
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
    target = Target.parse(spec)
    if target.index == "top1":
        return target, None
    return target, np.full(n, target.index, dtype=np.int64)


def check_range(indices, n_classes: int) -> None:
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


def softmax(out: np.ndarray, axis: int = 1) -> np.ndarray:
    """Numerically stable softmax of a numpy array."""
    exp = np.exp(out - out.max(axis=axis, keepdims=True))
    return exp / exp.sum(axis=axis, keepdims=True)


_softmax = softmax  # `pick` takes a flag of the same name


def pick(out, targets, softmax: bool, masks: np.ndarray | None = None):
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


def _box(value: str, kind: str) -> tuple[int, int, int, int]:
    try:
        x0, y0, x1, y1 = (int(v) for v in value.split(","))
    except ValueError:
        raise TargetError(f"bad box {value!r}: use {kind}:x0,y0,x1,y1 (integers)") from None
    return x0, y0, x1, y1


def photo_to_output(box: tuple[int, int, int, int], photo: tuple[int, int], output: tuple[int, int]
                    ) -> tuple[int, int, int, int]:
    """A box in the pixels of a (height, width) photo -> the output's (height, width) pixels: the photo is stretched
    to the model's input, and the output covers the input; edges round outward so the box never shrinks away."""
    x0, y0, x1, y1 = box
    ph, pw = photo
    if not (0 <= x0 < x1 <= pw and 0 <= y0 < y1 <= ph):
        raise TargetError(f"photo box {x0},{y0},{x1},{y1} does not fit the {pw}x{ph} photo")
    sy, sx = output[0] / ph, output[1] / pw
    return (int(np.floor(x0 * sx)), int(np.floor(y0 * sy)), min(output[1], int(np.ceil(x1 * sx))),
            min(output[0], int(np.ceil(y1 * sy))))


def region_boxes(region: str | None, n: int, output: tuple[int, int],
                 photos: list[tuple[int, int]] | None) -> list[tuple[int, int, int, int]] | None:
    """Per image, the region's box in output pixels (box: and photo: regions), or None for other regions."""
    if region is None or not region.startswith(("box:", "photo:")):
        return None
    kind, _, value = region.partition(":")
    box = _box(value, kind)
    if kind == "photo":
        return [photo_to_output(box, photo, output) for photo in (photos or [output] * n)]
    h, w = output
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        hint = (" (if these are pixels of the original image, write photo:"
                f"{value})" if photos and any(p != output for p in photos) else "")
        raise TargetError(f"box {value} does not fit the {w}x{h} output{hint}")
    return [box] * n


def region_masks(region: str | None, clean: np.ndarray, targets: np.ndarray,
                 photos: list[tuple[int, int]] | None = None) -> np.ndarray | None:
    """(N, H, W) float masks over a segmentation output's pixels, fixed once on the clean prediction. `photos`:
    the (height, width) each image had before it was resized, for photo: regions."""
    if region is None:
        return None
    if clean.ndim != 4:
        raise TargetError(f"a region target needs a segmentation output (N, classes, H, W), not {clean.shape}")
    n, _, h, w = clean.shape
    if region == "predicted":
        masks = (clean.argmax(axis=1) == targets[:, None, None]).astype(np.float32)
        if not masks.reshape(n, -1).any(axis=1).all():
            raise TargetError("no pixel is predicted as the target class in some image; pick a box or a mask")
        return masks
    boxes = region_boxes(region, n, (h, w), photos)
    if boxes is not None:
        masks = np.zeros((n, h, w), np.float32)
        for mask, (x0, y0, x1, y1) in zip(masks, boxes, strict=True):
            mask[y0:y1, x0:x1] = 1
        return masks
    from .io import read_image, resize

    mask = resize(read_image(region.partition(":")[2]).mean(axis=2), h, w)
    return np.broadcast_to((mask > 0.5).astype(np.float32), (n, h, w)).copy()
