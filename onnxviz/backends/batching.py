"""Chunking a batch for a backend: respects a model's fixed batch size and the user's batch knob."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


def chunks(n: int, batch_size: int, fixed_batch: int | None) -> Iterator[slice]:
    """Slices over `n` samples; with a fixed batch the chunk size is that batch (padding handled by run)."""
    size = fixed_batch or max(1, batch_size)
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def pad_to(x: np.ndarray, size: int) -> np.ndarray:
    """Repeat the last sample so a short final chunk fills a fixed batch."""
    if len(x) == size:
        return x
    return np.concatenate([x, np.repeat(x[-1:], size - len(x), axis=0)])


def run_batched(
    fn: Callable[..., list[np.ndarray]],
    arrays: tuple[np.ndarray, ...],
    batch_size: int,
    fixed_batch: int | None,
    on_chunk: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """Run `fn(*chunks)` over sample-aligned `arrays` in chunks; concatenate its per-sample outputs."""
    parts: list[list[np.ndarray]] = []
    for sl in chunks(len(arrays[0]), batch_size, fixed_batch):
        pieces = [a[sl] for a in arrays]
        n = len(pieces[0])
        outs = fn(*(pad_to(p, fixed_batch) if fixed_batch else p for p in pieces))
        parts.append([o[:n] for o in outs])
        if on_chunk:
            on_chunk(n)
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
