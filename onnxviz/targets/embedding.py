"""`similar:REFERENCE`: the cosine similarity between an image's embedding and a reference's (an image file, read
as the model reads its inputs, or a `.npy` embedding) — why two faces or two products match."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TargetError
from ..io import read_image, resize
from .base import Model, Resolved, TargetKind
from .outputs import chosen_output
from .scores import Score, Tensor
from .spec import Target


@dataclass(frozen=True, eq=False)
class CosineScore(Score):
    """cos(embedding of the row, `reference`): the output flattened per row."""

    reference: np.ndarray  # (D,), unit length

    def __call__(self, outputs: Sequence[Tensor], rows: np.ndarray) -> Tensor:
        out = outputs[0]
        e = out.reshape(out.shape[0], -1)
        reference: Tensor = self.reference
        if isinstance(e, np.ndarray):
            e = e.astype(np.float64)
        else:
            import torch

            reference = torch.as_tensor(self.reference, dtype=e.dtype, device=e.device)
        norm = ((e * e).sum(axis=1) + 1e-24) ** 0.5
        return (e * reference).sum(axis=1) / norm

    def rows(self, rows: np.ndarray) -> CosineScore:
        return self


def embedding(clean: np.ndarray, output: str) -> np.ndarray:
    """(N, D) of an output that holds one vector per image: (N, D) or (N, D, 1, 1); else a TargetError."""
    if clean.ndim == 2 or (clean.ndim == 4 and clean.shape[2:] == (1, 1)):
        if clean.shape[1] >= 2 and np.issubdtype(clean.dtype, np.floating):
            return clean.reshape(len(clean), -1).astype(np.float64)
    raise TargetError(f"output {output!r} of shape {list(clean.shape)} ({clean.dtype}) is no embedding: similar: needs "
                      "one vector per image, (N, D) or (N, D, 1, 1); choose the embedding output with --output")


class SimilarityKind(TargetKind):
    name = "similarity"
    words = ("similar",)

    def resolve(self, model: Model, target: Target, x: np.ndarray, indices: np.ndarray | None,
                photos: list[tuple[int, int]] | None, batch_size: int) -> Resolved:
        output = chosen_output(model.proto, target.output, "embedding output")
        (clean,) = model.run(x, (output,), batch_size)
        vectors = embedding(clean, output)
        reference = _reference(model, target.value or "", output, vectors.shape[1])
        score = CosineScore((output,), reference / np.linalg.norm(reference))
        scores = np.asarray(score([clean], np.arange(len(x))), np.float32)
        name = Path(target.value or "").name
        labels = [f"cosine similarity to {name}: {s:.3f}" for s in scores]
        return Resolved(score, scores, np.zeros(len(x), np.int64), clean, np.zeros(len(x), np.int64), labels)


def _reference(model: Model, source: str, output: str, dim: int) -> np.ndarray:
    path = Path(source)
    if path.suffix.lower() == ".npy":
        try:
            vector = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise TargetError(f"cannot read the reference embedding {source}: {exc}") from None
        if not np.issubdtype(vector.dtype, np.number) or vector.size != dim:
            raise TargetError(f"the reference embedding {source} holds {vector.size} {vector.dtype} values; output "
                              f"{output!r} gives {dim} per image")
        vector = vector.reshape(-1).astype(np.float64)
    else:
        image = read_image(path)
        h, w = model.input_size
        batch = model.preprocessing.apply(resize(image, h, w))[None].astype(model.input.batch_dtype)
        (ref,) = model.run(batch, (output,))
        vector = embedding(ref, output)[0]
    if not np.isfinite(vector).all() or not np.linalg.norm(vector) > 0:
        raise TargetError(f"the reference embedding from {source} is zero or not finite: no direction to compare with")
    return vector
