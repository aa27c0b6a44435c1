"""The clean forward of the batch being explained, taken from a gradient method's first torch pass over it.

A gradient method's first pass over the clean batch computes the target's output anyway; when the targets are
given (not top1, no region), the engine leaves its own onnxruntime forward to that pass and reads scores and
predictions from it (one forward of the model less: saliency on resnet18 loses a fifth of its time). A method
that never passes the clean batch to torch (integrated gradients, SmoothGrad) gets the onnxruntime forward
afterwards, as before."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CleanForward:
    """The batch as the engine gave it to the method, and the score tensors' values once a torch pass saw it."""

    batch: np.ndarray
    outputs: list[np.ndarray] | None = None

    def matches(self, xb: np.ndarray) -> bool:
        """Whether `xb` is the clean batch: the same values, not only the same array (a method may have changed its
        input in place)."""
        return xb.shape == self.batch.shape and bool(np.array_equal(xb, self.batch))

    def wants(self, xb: np.ndarray) -> bool:
        """Whether a pass over `xb` is the clean forward still missing."""
        return self.outputs is None and self.matches(xb)
