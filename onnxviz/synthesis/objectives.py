"""Objectives are values that compose, as Lucent's do: `channel(layer, 3) - 0.5 * neuron(layer, 7, 4, 4)`,
`class_logit(range(10))`. A range gives one image per channel or class. The CLI grammar parses into the same
values: `LAYER:CHANNEL` (mean of a channel), `LAYER:CHANNEL:Y:X` (one neuron), `class:K`, ranges `A-B`, and
weighted sums `"class:3 - 0.5 * conv3:7"` (terms joined by ' + ' or ' - ', each optionally `WEIGHT*`).

A new objective kind is a subclass of `Objective` with `bind` (resolve names against the model), `tensors`
(what it reads), `value` (a torch tensor, one value per image) and `label`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ..errors import LayerError, OptionError

TERM_SPLIT = re.compile(r"\s+([+-])\s+")
MAX_IMAGES = 1024  # a range makes one image per channel or class, all optimized together


class Objective:
    """A quantity to maximize, per image. Subclasses set `images` (1, or a range's length)."""

    images: int = 1

    def bind(self, engine, pre_relu: bool = True) -> Objective:
        """The objective with its names resolved and its indices checked against the model."""
        return self

    def tensors(self, logits: str) -> tuple[str, ...]:
        raise NotImplementedError

    def value(self, values: Mapping, logits: str, batch: int):
        """Torch tensor (batch,): the objective of each image, from the tensors it reads (channels first)."""
        raise NotImplementedError

    def label(self, i: int = 0) -> str:
        raise NotImplementedError

    # -- composition -------------------------------------------------------------------------------------
    def terms(self) -> tuple[tuple[float, Objective], ...]:
        return ((1.0, self),)

    def __add__(self, other: Objective) -> Sum:
        return Sum((*self.terms(), *other.terms()))

    def __sub__(self, other: Objective) -> Sum:
        return self + (-1.0) * other

    def __mul__(self, weight: float) -> Sum:
        return Sum(tuple((w * float(weight), t) for w, t in self.terms()))

    __rmul__ = __mul__

    def __neg__(self) -> Sum:
        return self * -1.0


@dataclass(frozen=True, eq=False)
class Sum(Objective):
    parts: tuple[tuple[float, Objective], ...]

    @property
    def images(self) -> int:  # type: ignore[override]
        return max(t.images for _, t in self.parts)

    def terms(self) -> tuple[tuple[float, Objective], ...]:
        return self.parts

    def bind(self, engine, pre_relu: bool = True) -> Sum:
        if sum(t.images > 1 for _, t in self.parts) > 1:
            raise OptionError("only one term of an objective may be a channel range")
        return Sum(tuple((w, t.bind(engine, pre_relu)) for w, t in self.parts))

    def tensors(self, logits: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for _, t in self.parts for n in t.tensors(logits)))

    def value(self, values: Mapping, logits: str, batch: int):
        total = 0.0
        for w, t in self.parts:
            total = total + w * t.value(values, logits, batch)
        return total

    def label(self, i: int = 0) -> str:
        out = ""
        for w, t in self.parts:
            weight = "" if abs(w) == 1 else f"{abs(w):g}*"
            sign = "-" if w < 0 else "+"
            out += f" {sign} {weight}{t.label(i)}" if out else f"{'-' if w < 0 else ''}{weight}{t.label(i)}"
        return out


@dataclass(frozen=True, eq=False)
class Channel(Objective):
    """The mean of a channel of a layer (layer None: the class logits), or one neuron of it at (y, x)."""

    layer: str | None
    channels: tuple[int, ...]
    position: tuple[int, int] | None = None
    source: str | None = None  # the tensor actually read: the layer, or the input of its ReLU (pre_relu)

    @property
    def images(self) -> int:  # type: ignore[override]
        return len(self.channels)

    def bind(self, engine, pre_relu: bool = True) -> Channel:
        bound = self
        if self.layer is not None:
            found = engine.layer(self.layer)
            bound = replace(self, layer=found.name, source=_pre_activation(engine.model, found) if pre_relu
                            else found.name)
        _check_indices(bound, engine)
        return bound

    def tensors(self, logits: str) -> tuple[str, ...]:
        return (self.source or self.layer or logits,)

    def value(self, values: Mapping, logits: str, batch: int):
        import torch

        a = values[self.source or self.layer or logits]
        idx = torch.as_tensor([self.channels[i % len(self.channels)] for i in range(batch)], device=a.device)
        if int(idx.max()) >= a.shape[1]:
            what = "classes" if self.layer is None else f"channels in {self.layer}"
            raise OptionError(f"objective {self.label()}: index {int(idx.max())} but only {a.shape[1]} {what}")
        picked = a[torch.arange(batch, device=a.device), idx]
        if self.position is not None:
            y, x = self.position
            if picked.ndim != 3 or not (0 <= y < picked.shape[1] and 0 <= x < picked.shape[2]):
                raise OptionError(f"neuron {self.label()} is outside the layer's {tuple(picked.shape[1:])} map")
            picked = picked[:, y, x]
        return picked.reshape(batch, -1).mean(1)

    def label(self, i: int = 0) -> str:
        c = self.channels[i % len(self.channels)]
        what = f"class {c}" if self.layer is None else f"{self.layer}:{c}"
        return what + (f" @ {self.position[0]},{self.position[1]}" if self.position else "")


def _indices(which: int | Iterable[int]) -> tuple[int, ...]:
    return (int(which),) if isinstance(which, int) else tuple(int(c) for c in which)


def channel(layer: str, which: int | Iterable[int]) -> Channel:
    """The mean activation of channel(s) `which` of `layer` (a range: one image per channel)."""
    return Channel(layer, _indices(which))


def neuron(layer: str, which: int, y: int, x: int) -> Channel:
    """One neuron: channel `which` of `layer` at (y, x)."""
    return Channel(layer, (int(which),), (int(y), int(x)))


def class_logit(which: int | Iterable[int]) -> Channel:
    """The logit of class(es) `which` (behind any Softmax; a range: one image per class)."""
    return Channel(None, _indices(which))


def _pre_activation(model, layer) -> str:
    """The input of the ReLU / Clip that produces `layer` (it has a gradient where the output is 0)."""
    if layer.op_type not in ("Relu", "Clip"):
        return layer.name
    node = next((n for n in model.proto.graph.node if layer.name in n.output), None)
    return node.input[0] if node is not None and node.input else layer.name


def _check_indices(term: Channel, engine) -> None:
    """Channels and classes past the tensor's own count, and ranges too large to optimize at once, are refused
    before any image is made (a range of 100,000 classes asked for 3.5 GB)."""
    if len(term.channels) > MAX_IMAGES:
        raise OptionError(f"objective {term.label()}: a range of {len(term.channels):,} images; at most {MAX_IMAGES} "
                          "are made at once, split the range")
    layer = engine.layer(term.source or term.layer or engine.logits)
    axis = layer.axes.channel_axis if layer.layout and len(layer.shape) == layer.axes.rank else 1
    count = layer.shape[axis] if len(layer.shape) > axis else None
    if isinstance(count, int) and max(term.channels) >= count:
        what = "classes" if term.layer is None else f"channels in {term.layer}"
        raise OptionError(f"objective {term.label(term.channels.index(max(term.channels)))}: index "
                          f"{max(term.channels)} but only {count} {what} (0..{count - 1})")


# -- the grammar ------------------------------------------------------------------------------------------
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


def _term(text: str, weight: float, engine) -> Objective:
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
        return weight * class_logit(_channels(parts[1], text))
    for cut in range(len(parts) - 1, 0, -1):  # the longest prefix that names a layer (names may hold ':')
        name = ":".join(parts[:cut])
        try:
            engine.layer(name)
        except LayerError:
            continue
        rest = parts[cut:]
        if len(rest) == 1:
            return weight * channel(name, _channels(rest[0], text))
        if len(rest) == 3:
            c, y, x = _ints(rest, text)
            return weight * neuron(name, c, y, x)
        break
    raise OptionError(f"bad objective term {text!r}: use LAYER:CHANNEL, LAYER:CHANNEL:Y:X, LAYER:A-B or class:K "
                      "(layer names as `onnxviz layers` lists them)")


def parse(spec: str, engine) -> Objective:
    """An objective value from the CLI grammar (layer names are checked against the model)."""
    if not spec or not spec.strip():
        raise OptionError("an objective is needed, e.g. --objective class:3 or --objective LAYER:0-15")
    pieces = TERM_SPLIT.split(" " + spec.strip() if spec.strip()[0] in "+-" else spec.strip())
    total: Objective | None = None
    sign = 1.0
    for k, piece in enumerate(pieces):
        if k % 2:
            sign = 1.0 if piece == "+" else -1.0
        elif piece.strip():
            term = _term(piece, sign, engine)
            total = term if total is None else total + term
    if total is None:
        raise OptionError(f"bad objective {spec!r}: no term")
    return total


def as_objective(given: str | Objective | None, engine, pre_relu: bool = True) -> Objective:
    """A spec or a value -> a bound objective (names resolved, indices checked)."""
    if isinstance(given, Objective):
        objective = given
    elif isinstance(given, str) or given is None:
        objective = parse(given or "", engine)
    else:
        raise OptionError(f"an objective is a spec such as 'class:3' or an onnxviz objective value, not {given!r}")
    return (objective if isinstance(objective, Sum) else Sum(objective.terms())).bind(engine, pre_relu)
