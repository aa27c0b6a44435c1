"""SynthesisResult: generated images with captions, the objective per step, and optional GIF frames."""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io import save_png, to_uint8, write_bytes_atomic
from ..viz.grid import grid
from ..viz.notebook import Displayable


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3 // image.shape[-1], axis=-1)


@dataclass(frozen=True)
class SynthesisResult(Displayable):
    method: str
    options: dict[str, Any]
    model_name: str
    images: np.ndarray  # (B, H, W, C) in [0, 1]
    captions: list[str]
    history: np.ndarray  # (B, steps): the objective (or loss) per step
    seconds: float
    frames: np.ndarray | None = None  # (T, B, H, W, C)
    extras: dict[str, Any] = field(default_factory=dict)

    def _picture(self) -> np.ndarray:
        return self.figure()

    def _caption(self) -> str:
        return f"{self.method} on {self.model_name}: " + "; ".join(self.captions)

    def figure(self, cell: int = 224) -> np.ndarray:
        """All images in one captioned grid (rows of up to 8)."""
        cols = min(8, len(self.images))
        rows = math.ceil(len(self.images) / cols)
        cells = [[_rgb(self.images[r * cols + c]) for c in range(cols) if r * cols + c < len(self.images)]
                 for r in range(rows)]
        captions = [[self.captions[r * cols + c] for c in range(len(cells[r]))] for r in range(rows)]
        return grid(cells, captions, cell=cell)

    def gif(self, cell: int = 160) -> bytes:
        """An animated GIF of the optimization (every image side by side), needs `frames` (option frames=N)."""
        if self.frames is None:
            raise ValueError("no frames were kept: run with frames=N (--gif)")
        from PIL import Image

        pictures = [Image.fromarray(to_uint8(grid([[_rgb(im) for im in frame]], cell=cell))) for frame in self.frames]
        buf = io.BytesIO()
        pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:], duration=120, loop=0)
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "options": self.options, "model": self.model_name, "seconds": self.seconds,
                "captions": self.captions, "objective_first": self.history[:, 0].tolist(),
                "objective_last": self.history[:, -1].tolist(), **self.extras}

    def save(self, out: str | os.PathLike) -> list[Path]:
        """Write synthesis.png (the grid), image_<i>.png, synthesis.gif (with frames) and result.json."""
        out = Path(out)
        written = [save_png(out / "synthesis.png", self.figure())]
        written += [save_png(out / f"image_{i}.png", _rgb(im)) for i, im in enumerate(self.images)]
        if self.frames is not None:
            written.append(write_bytes_atomic(out / "synthesis.gif", self.gif()))
        written.append(write_bytes_atomic(out / "result.json", json.dumps(self.to_dict(), indent=2,
                                                                          default=str).encode()))
        return written
