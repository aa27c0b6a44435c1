"""What one request may ask of the server, checked before it queues: every mask at the input's resolution
(masks x height x width) and the steps / samples of a method (path points, noisy copies, coalitions, references)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import OptionError

MASKS = frozenset({"n_masks"})  # each a perturbed copy of the whole image
STEPS = frozenset({"steps", "n_steps", "n_samples", "nt_samples", "n_baselines", "n_design"})


@dataclass(frozen=True)
class WorkLimits:
    max_steps: int = 5000
    max_mask_pixels: int = 2_000_000_000

    def check(self, method: str, options: Any, size: tuple[int, int]) -> None:
        """Refuse `options` (a plugin's resolved Options) when they exceed a limit: the limit and the way out named."""
        values = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)} \
            if dataclasses.is_dataclass(options) else {}
        pixels = size[0] * size[1]
        for name, value in values.items():
            if not isinstance(value, int) or isinstance(value, bool):
                continue
            if name in MASKS and value * pixels > self.max_mask_pixels:
                raise OptionError(f"{method}: {name}={value} masks x {size[0]}x{size[1]} pixels is over this server's "
                                  f"limit of {self.max_mask_pixels} mask pixels (at most "
                                  f"{self.max_mask_pixels // pixels} masks here; onnxviz serve --max-mask-pixels)")
            if name in STEPS and value > self.max_steps:
                raise OptionError(f"{method}: {name}={value} is over this server's limit of {self.max_steps} steps "
                                  "(onnxviz serve --max-steps)")
