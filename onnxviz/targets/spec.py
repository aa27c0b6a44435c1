"""What a user asks to explain: `Target` and its text form, per-image indices, range and finiteness checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import cast

import numpy as np

from ..errors import TargetError


@dataclass(frozen=True)
class Target:
    """What to explain. The class kind: `index` is a class index or "top1", `softmax` scores probabilities instead
    of logits, `region` a segmentation region (or "all": every detection of the class). Other kinds name
    themselves in `kind` and keep their own text in `value`: a box, a detection's rank, a reference image, an
    output element, a unit of a layer. `output` is an ONNX output name (None: the first); `decoder` names how
    detector outputs are read when their shapes do not say (see `onnxviz.targets.DECODERS`), `confidence` the
    score a detector's candidate needs to count as a detection (default 0.25)."""

    index: int | str = "top1"
    output: str | None = None
    softmax: bool = False
    region: str | None = None  # segmentation: "predicted", "box:x0,y0,x1,y1" (output pixels), "photo:x0,y0,x1,y1"
    # (pixels of the original image), or "mask:PATH"; None = all pixels; "all": every detection of the class
    kind: str = "class"
    value: str | None = None
    decoder: str | None = None
    confidence: float | None = None  # detections: the score a candidate needs to count (default 0.25)

    def __post_init__(self) -> None:
        c = self.confidence
        if c is not None and (isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 < c < 1):
            raise TargetError(f"a detection confidence is a number between 0 and 1 (exclusive), not {c!r}")

    @classmethod
    def parse(cls, spec: int | str | Target | None) -> Target:
        """`281`, `top1`, `softmax:281`, `OUTPUT:281`; for segmentation outputs a region after `@`: `7@predicted`,
        `7@box:x0,y0,x1,y1` (output pixels), `7@photo:x0,y0,x1,y1` (the original image's pixels), `7@mask:road.png`;
        and the other kinds, each a word first (after an optional `OUTPUT:`): `box:x0,y0,x1,y1[@CLASS]`, `det:K`,
        `class:K@all`, `similar:REFERENCE`, `value:K`, `unit:LAYER:C[:max | :Y:X]`."""
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
        text = spec.strip()
        words = text.split(":")
        for load in WORD_SOURCES:  # plugin kinds add their words the first time a spec is parsed
            load()
        for at, output in ((0, None), (1, words[0])):
            if len(words) > at + 1 and words[at] in KIND_WORDS:
                return KIND_WORDS[words[at]](":".join(words[at + 1 :]), output)
        return _parse_class(text)

    def __str__(self) -> str:
        prefix = f"{self.output}:" if self.output else ""
        if self.kind != "class":
            return f"{prefix}{self.kind}:{self.value}"
        text = ":".join([*(["softmax"] if self.softmax else []), *([self.output] if self.output else []),
                         str(self.index)])
        if self.region == "all":
            return f"{prefix}class:{self.index}@all"
        return f"{text}@{self.region}" if self.region else text


def _parse_class(text: str) -> Target:
    spec, _, region = text.partition("@")
    if region and not (region == "predicted" or region.startswith(("box:", "photo:", "mask:"))):
        raise TargetError(f"bad region {region!r}: use predicted, box:x0,y0,x1,y1 (output pixels), "
                          "photo:x0,y0,x1,y1 (pixels of the original image) or mask:PATH")
    *prefix, last = spec.split(":")
    softmax = "softmax" in prefix
    names = [p for p in prefix if p != "softmax"]
    if len(names) > 1:
        raise TargetError(f"bad target {spec!r}: expected [softmax:][OUTPUT:]INDEX; other kinds: {KIND_HELP}")
    index: int | str = last
    if last != "top1":
        try:
            index = _index(int(last))
        except ValueError:
            raise TargetError(f"bad target {spec!r}: {last!r} is neither a class index nor top1; other kinds: "
                              f"{KIND_HELP}") from None
    return Target(index=index, output=names[0] if names else None, softmax=softmax, region=region or None)


def _class_word(text: str, output: str | None) -> Target:
    """`class:K` (a class, as `K`) or `class:K@all` (the sum over a detector's detections of class K)."""
    index, _, region = text.partition("@")
    if region == "all":
        try:
            return Target(index=_index(int(index)), output=output, region="all")
        except ValueError:
            raise TargetError(f"bad target class:{text}: use class:K@all with a class index K") from None
    found = _parse_class(text)
    return replace(found, output=output) if output else found


def word_parser(name: str, check: Callable[[str], str | None] | None = None) -> Callable[[str, str | None], Target]:
    """A parser for `NAME:VALUE` targets: `check(value)` returns what is wrong with the value, or None."""
    def parse(value: str, output: str | None) -> Target:
        problem = "it is empty" if not value.strip() else check(value.strip()) if check else None
        if problem:
            raise TargetError(f"bad target {name}:{value}: {problem}")
        return Target(output=output, kind=name, value=value.strip())
    return parse


def _integer(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _box_problem(value: str) -> str | None:
    box, _, label = value.partition("@")
    parts = box.split(",")
    if len(parts) != 4 or not all(_number(p) for p in parts):
        return "use box:x0,y0,x1,y1 in the model input's pixels, optionally @CLASS"
    if label and not _integer(label):
        return f"the class after @ must be an index, not {label!r}"
    return None


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _unit_problem(value: str) -> str | None:
    if split_unit(value)[0] is None:
        return "use unit:LAYER:C (a channel's mean), unit:LAYER:C:max or unit:LAYER:C:Y:X"
    return None


def split_unit(value: str) -> tuple[str | None, list[str]]:
    """(layer, [C] | [C, "max"] | [C, Y, X]) of a unit's text; the layer name may hold colons itself."""
    parts = value.split(":")
    for tail in (3, 2, 1):
        if len(parts) <= tail:
            continue
        rest = parts[-tail:]
        ok = all(_integer(p) for p in rest) if tail != 2 else _integer(rest[0]) and rest[1] == "max"
        if ok:
            return ":".join(parts[:-tail]), rest
    return None, []


KIND_WORDS: dict[str, Callable[[str, str | None], Target]] = {
    "class": _class_word,
    "box": word_parser("box", _box_problem),
    "det": word_parser("det", lambda v: None if _integer(v) else "use det:K, K the rank of a detection (0: the best)"),
    "similar": word_parser("similar"),
    "value": word_parser("value", lambda v: None if _integer(v) else "use value:K, K an element of the output"),
    "unit": word_parser("unit", _unit_problem),
}
WORD_SOURCES: list[Callable[[], object]] = []  # filled by the kinds module: it discovers plugin kinds
KIND_HELP = ("box:x0,y0,x1,y1[@CLASS], det:K, class:K@all (detectors), similar:REFERENCE (embeddings), value:K "
             "(any output element), unit:LAYER:C[:max|:Y:X] (a unit of a layer)")


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
        if any(p.kind != "class" for p in parsed):
            raise TargetError("per-image targets must be class indices; give a box:, det:, similar:, value: or unit: "
                              "target once for all images")
        if any((p.output, p.softmax, p.region) != (base.output, base.softmax, base.region) for p in parsed):
            raise TargetError("per-image targets must share the output, the softmax setting and the region")
        if any(p.index == "top1" for p in parsed):
            raise TargetError("per-image targets must be class indices")
        return base, np.array([p.index for p in parsed], dtype=np.int64)
    target = Target.parse(cast("int | str | Target | None", spec))  # not a sequence: checked above
    if target.index == "top1" or target.kind != "class":
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
