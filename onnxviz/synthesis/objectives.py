"""Objective specs: `LAYER:CHANNEL` (mean activation of a channel), `LAYER:CHANNEL:Y:X` (one neuron),
`class:K` (the class logit), `LAYER:A-B` / `class:A-B` (one image per channel or class), combined with weights:
`"class:3 - 0.5 * conv3:7"` (terms joined by ' + ' or ' - ', each optionally `WEIGHT*`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import LayerError, OptionError

TERM_SPLIT = re.compile(r"\s+([+-])\s+")


@dataclass(frozen=True)
class Term:
    weight: float
    layer: str | None  # None: the class logits
    channels: tuple[int, ...]  # one per image for a range, else a single channel / class
    position: tuple[int, int] | None = None  # (y, x) of a neuron
    source: str | None = None  # the tensor actually read: the layer, or the input of its ReLU (pre_relu)

    @property
    def tensor(self) -> str | None:
        return self.source or self.layer

    def label(self, i: int = 0) -> str:
        c = self.channels[i % len(self.channels)]
        what = f"class {c}" if self.layer is None else f"{self.layer}:{c}"
        return what + (f" @ {self.position[0]},{self.position[1]}" if self.position else "")


def _ints(parts: list[str], spec: str) -> list[int]:
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise OptionError(f"bad objective {spec!r}: expected integers after the layer name") from None


def _channels(text: str, spec: str) -> tuple[int, ...]:
    """`7` or a range `0-15`."""
    if re.fullmatch(r"\d+-\d+", text):
        first, last = (int(v) for v in text.split("-"))
        if last < first:
            raise OptionError(f"bad range {text!r} in {spec!r}: the end comes before the start")
        return tuple(range(first, last + 1))
    return tuple(_ints([text], spec))


def _pre_activation(model, layer) -> str:
    """The input of the ReLU / Clip that produces `layer` (it has a gradient where the output is 0)."""
    if layer.op_type not in ("Relu", "Clip"):
        return layer.name
    node = next((n for n in model.proto.graph.node if layer.name in n.output), None)
    return node.input[0] if node is not None and node.input else layer.name


def _term(text: str, weight: float, engine, pre_relu: bool = True) -> Term:
    text = text.strip()
    if "*" in text:
        factor, _, text = text.partition("*")
        try:
            weight *= float(factor)
        except ValueError:
            raise OptionError(f"bad weight {factor.strip()!r} in objective term {text!r}") from None
        text = text.strip()
    parts = text.split(":")
    if parts[0] == "class" and len(parts) == 2:
        return Term(weight, None, _channels(parts[1], text))
    for cut in range(len(parts) - 1, 0, -1):  # the longest prefix that names a layer (names may hold ':')
        name = ":".join(parts[:cut])
        try:
            found = engine.layer(name)
        except LayerError:
            continue
        layer, rest = found.name, parts[cut:]
        source = _pre_activation(engine.model, found) if pre_relu else layer
        if len(rest) == 1:
            return Term(weight, layer, _channels(rest[0], text), source=source)
        if len(rest) == 3:
            c, y, x = _ints(rest, text)
            return Term(weight, layer, (c,), (y, x), source)
        break
    raise OptionError(f"bad objective term {text!r}: use LAYER:CHANNEL, LAYER:CHANNEL:Y:X, LAYER:A-B or class:K "
                      "(layer names as `onnxviz layers` lists them)")


def parse(spec: str, engine, pre_relu: bool = True) -> list[Term]:
    """Terms of a spec; at most one term may be a channel range. With `pre_relu`, a ReLU layer is read
    before its ReLU, so channels that start dead still get a gradient."""
    if not spec or not spec.strip():
        raise OptionError("an objective is needed, e.g. --objective class:3 or --objective LAYER:0-15")
    pieces = TERM_SPLIT.split(" " + spec.strip() if spec.strip()[0] in "+-" else spec.strip())
    terms, sign = [], 1.0
    for k, piece in enumerate(pieces):
        if k % 2:
            sign = 1.0 if piece == "+" else -1.0
        elif piece.strip():
            terms.append(_term(piece, sign, engine, pre_relu))
    if sum(len(t.channels) > 1 for t in terms) > 1:
        raise OptionError("only one term of an objective may be a channel range")
    for t in terms:
        _check_indices(t, engine)
    return terms


MAX_IMAGES = 1024  # a range makes one image per channel or class, all optimized together


def _check_indices(term: Term, engine) -> None:
    """Channels and classes past the tensor's own count, and ranges too large to optimize at once, are refused
    before any image is made (a range of 100,000 classes asked for 3.5 GB)."""
    if len(term.channels) > MAX_IMAGES:
        raise OptionError(f"objective {term.label()}: a range of {len(term.channels):,} images; at most {MAX_IMAGES} "
                          "are made at once, split the range")
    layer = engine.layer(term.tensor or engine.logits)
    axis = 3 if len(layer.shape) == 4 and layer.layout == "NHWC" else 1
    count = layer.shape[axis] if len(layer.shape) > axis else None
    if isinstance(count, int) and max(term.channels) >= count:
        what = "classes" if term.layer is None else f"channels in {term.layer}"
        raise OptionError(f"objective {term.label(term.channels.index(max(term.channels)))}: index "
                          f"{max(term.channels)} but only {count} {what} (0..{count - 1})")


def batch_size(terms: list[Term]) -> int:
    return max(len(t.channels) for t in terms)


def tensors_needed(terms: list[Term], logits: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.tensor or logits for t in terms))


def evaluate(terms: list[Term], values: dict, logits: str):
    """The objective per image, from the needed tensors (channels first)."""
    import torch

    total = 0.0
    for t in terms:
        a = values[t.tensor or logits]
        b = a.shape[0]
        idx = torch.as_tensor([t.channels[i % len(t.channels)] for i in range(b)], device=a.device)
        if int(idx.max()) >= a.shape[1]:
            what = "classes" if t.layer is None else f"channels in {t.layer}"
            raise OptionError(f"objective {t.label()}: index {int(idx.max())} but only {a.shape[1]} {what}")
        picked = a[torch.arange(b, device=a.device), idx]
        if t.position is not None:
            y, x = t.position
            if picked.ndim != 3 or not (0 <= y < picked.shape[1] and 0 <= x < picked.shape[2]):
                raise OptionError(f"neuron {t.label()} is outside the layer's {tuple(picked.shape[1:])} map")
            picked = picked[:, y, x]
        value = picked.reshape(b, -1).mean(1)
        total = total + t.weight * value
    return total


def describe(terms: list[Term], i: int = 0) -> str:
    out = ""
    for t in terms:
        sign = "-" if t.weight < 0 else "+"
        weight = "" if abs(t.weight) == 1 else f"{abs(t.weight):g}*"
        out += f" {sign} {weight}{t.label(i)}" if out else f"{'-' if t.weight < 0 else ''}{weight}{t.label(i)}"
    return out
