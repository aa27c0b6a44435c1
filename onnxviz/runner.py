"""What the three engines share (the Context of explanation methods, the Oracle of attacks, the Engine of
synthesis): passes in chunks that respect the model's fixed batch, random draws seeded per sample (a batch draws
what its samples draw one by one), progress bars that appear only for long work, and estimated gradients."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .backends.batching import run_batched
from .estimate import Estimator, estimate_gradient
from .progress import Bar
from .progress import bar as progress_bar

if TYPE_CHECKING:  # plugins import this through Context: the model's code (and onnx, 0.6 s) loads with a model
    from .model import Model

Progress = Callable[[int], None] | None


def sample_rng(sample: np.ndarray, seed: int, *salt: int) -> np.random.Generator:
    """A generator seeded by `seed`, any `salt` and the sample's bytes: draws that follow the image, not its place in
    a batch."""
    return np.random.default_rng([seed, *salt, zlib.crc32(np.ascontiguousarray(sample).tobytes())])


@dataclass(frozen=True)
class Runner:
    model: Model
    batch_size: int = 32
    seed: int = 0
    progress: bool = True

    def rng(self, sample: np.ndarray) -> np.random.Generator:
        """A generator seeded by the run's seed and the sample's bytes, not by its position in the batch."""
        return sample_rng(sample, self.seed)

    def chunked(self, fn, arrays: tuple, on_chunk: Progress = None, names: tuple[str, ...] | None = None) -> list:
        """fn(*chunks) over sample-aligned arrays (numpy or torch) in chunks of batch_size, or of the model's fixed
        batch (short chunks padded and the padding dropped); the per-sample outputs joined."""
        return run_batched(fn, arrays, self.batch_size, self.model.input.fixed_batch, on_chunk, names)

    def bar(self, total: int, desc: str, unit: str = "input") -> Bar:
        """A progress bar on stderr that only appears for work longer than a second."""
        return progress_bar(total, desc, unit, self.progress)

    def estimated_gradients(self, samples: np.ndarray, score: Callable[[int, np.ndarray], np.ndarray],
                            estimator: Estimator, on_each: Progress = None,
                            rng_of: Callable[[int], np.random.Generator] | None = None,
                            spatial: tuple[int, int] | None = None) -> np.ndarray:
        """Black-box gradients per sample: score(i, batch) -> one value per row of perturbed copies of sample i.
        Draws come from rng_of(i) (default: seeded by sample i itself). `spatial`: a sample's (H, W) axes, for
        estimates on cells (default: the model input's, when it is an image)."""
        if spatial is None and self.model.input.layout:
            spatial = tuple(a - 1 for a in self.model.input.axes.spatial_axes)  # type: ignore[assignment]
        grads = np.empty(samples.shape, np.float32)
        for i, sample in enumerate(samples):
            rng = rng_of(i) if rng_of is not None else self.rng(sample)
            grads[i] = estimate_gradient(sample, functools.partial(score, i), estimator, rng, spatial)
            if on_each:
                on_each(1)
        return grads
