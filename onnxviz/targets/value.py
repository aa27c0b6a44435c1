"""`value:K` and `OUTPUT:value:K`: element K of an output (per image, flattened in C order): a regression output, a
box coordinate, any number the model writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import TargetError
from .base import Model, Resolved, TargetKind
from .outputs import chosen_output
from .scores import Score, Tensor
from .spec import Target


@dataclass(frozen=True, eq=False)
class ValueScore(Score):
    """Element `element` of the tensor, per row (flattened in C order)."""

    element: int

    def __call__(self, outputs: Sequence[Tensor], rows: np.ndarray) -> Tensor:
        out = outputs[0]
        return out.reshape(out.shape[0], -1)[:, self.element]

    def rows(self, rows: np.ndarray) -> ValueScore:
        return self


class ValueKind(TargetKind):
    name = "value"
    words = ("value",)

    def resolve(self, model: Model, target: Target, x: np.ndarray, indices: np.ndarray | None,
                photos: list[tuple[int, int]] | None, batch_size: int) -> Resolved:
        output = chosen_output(model.proto, target.output, "output to read a value of")
        (clean,) = model.run(x, (output,), batch_size)
        size = int(np.prod(clean.shape[1:])) if clean.ndim > 1 else 0
        k = int(target.value or 0)
        if clean.ndim < 2 or not np.issubdtype(clean.dtype, np.floating):
            raise TargetError(f"output {output!r} ({clean.dtype}, shape {list(clean.shape)}) has no per-image values "
                              "to explain: value:K reads a floating-point output with a batch axis")
        if not 0 <= k < size:
            raise TargetError(f"value:{k} is out of range: output {output!r} has {size} values per image "
                              f"(shape {list(clean.shape[1:])}, value:0..value:{size - 1}, in C order)")
        score = ValueScore((output,), k)
        scores = np.asarray(score([clean], np.arange(len(x))), np.float32)
        where = np.unravel_index(k, clean.shape[1:])
        labels = [f"{output}[{', '.join(map(str, where))}] = {s:.4g}" for s in scores]
        return Resolved(score, scores, np.full(len(x), k), clean, np.full(len(x), k), labels)
