"""Chunking a batch for a backend: respects a model's fixed batch size and the user's batch knob. Works on numpy
arrays and on torch tensors alike (gradients flow through the joined torch outputs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from .. import interrupts
from ..errors import ModelError


def chunks(n: int, batch_size: int, fixed_batch: int | None) -> Iterator[slice]:
    """Slices over `n` samples; with a fixed batch the chunk size is that batch (padding handled by run)."""
    size = fixed_batch or max(1, batch_size)
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _join(parts: list):
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    import torch  # only reached with torch tensors, so torch is there

    return torch.cat(parts)


def pad_to(x, size: int):
    """Repeat the last sample so a short final chunk fills a fixed batch."""
    if len(x) == size:
        return x
    return _join([x, *[x[-1:]] * (size - len(x))])


def check_per_sample(outs: list, fed: int, names: tuple[str, ...] | None = None) -> None:
    """Every output of a chunk must have the chunk's batch as its first axis, or slicing and joining chunks
    would mix samples up: one clear error instead."""
    for k, out in enumerate(outs):
        shape = tuple(getattr(out, "shape", ()))
        if shape[:1] != (fed,):
            name = repr(names[k]) if names and k < len(names) else f"number {k}"
            what = "is a scalar" if not shape else f"has shape {list(shape)} for {fed} inputs"
            raise ModelError(f"the model's tensor {name} {what}: its first axis is not the batch (a transposed or "
                             "batch-reducing output?), so onnxviz cannot tell which row belongs to which input. "
                             "Explain another output (--output) or re-export with the batch first")


def run_batched(
    fn: Callable[..., list[np.ndarray]],
    arrays: tuple[np.ndarray, ...],
    batch_size: int,
    fixed_batch: int | None,
    on_chunk: Callable[[int], None] | None = None,
    names: tuple[str, ...] | None = None,
) -> list[np.ndarray]:
    """Run `fn(*chunks)` over sample-aligned `arrays` in chunks; concatenate its per-sample outputs (`names`, when
    given, name them in errors)."""
    parts: list[list[np.ndarray]] = []
    for sl in chunks(len(arrays[0]), batch_size, fixed_batch):
        interrupts.check()  # a Ctrl-C whose KeyboardInterrupt was swallowed still stops the run here
        pieces = [a[sl] for a in arrays]
        n = len(pieces[0])
        outs = fn(*(pad_to(p, fixed_batch) if fixed_batch else p for p in pieces))
        check_per_sample(outs, fixed_batch or n, names)
        parts.append([o[:n] for o in outs])
        if on_chunk:
            on_chunk(n)
    return [_join([p[i] for p in parts]) for i in range(len(parts[0]))]
