"""Black-box gradient estimates through onnxruntime, for graphs torch cannot run (or when asked).

NES: Wierstra et al. 2014 / Ilyas et al. 2018, https://arxiv.org/abs/1804.08598 (antithetic Gaussian
directions). SPSA: Spall 1992, https://www.jhuapl.edu/SPSA/ (antithetic Rademacher directions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import OptionError

BLOCK = 64  # directions evaluated at once (2 x BLOCK inputs)


@dataclass(frozen=True)
class Estimator:
    """`queries` forward passes per input and gradient (an even number: +/- pairs), step `sigma`."""

    kind: Literal["nes", "spsa"] = "nes"
    queries: int = 200
    sigma: float = 1e-2

    def __post_init__(self):
        if self.kind not in ("nes", "spsa"):
            raise OptionError(f"gradient estimator must be nes or spsa, not {self.kind!r}")
        if self.queries < 2 or self.queries % 2:
            raise OptionError(f"queries must be an even number >= 2 (pairs of +/- probes), not {self.queries}")
        if self.sigma <= 0:
            raise OptionError("sigma must be positive")

    def describe(self) -> str:
        return f"estimated gradient ({self.kind.upper()}, {self.queries} queries per input, sigma {self.sigma:g})"


def estimate_gradient(sample: np.ndarray, score: Callable[[np.ndarray], np.ndarray], estimator: Estimator,
                      rng: np.random.Generator) -> np.ndarray:
    """Gradient of `score` (a batch -> one value per row) at `sample`, from estimator.queries evaluations."""
    pairs = estimator.queries // 2
    total = np.zeros(sample.size, np.float64)
    base = sample.reshape(1, -1).astype(np.float64)
    for start in range(0, pairs, BLOCK):
        n = min(BLOCK, pairs - start)
        if estimator.kind == "nes":
            u = rng.standard_normal((n, sample.size))
        else:
            u = rng.choice([-1.0, 1.0], size=(n, sample.size))
        probes = np.concatenate([base + estimator.sigma * u, base - estimator.sigma * u])
        values = score(probes.reshape(-1, *sample.shape).astype(sample.dtype)).astype(np.float64)
        total += ((values[:n] - values[n:]) / (2 * estimator.sigma)) @ u
    return (total / pairs).reshape(sample.shape).astype(np.float32)
