"""Colour bars: the key every overlay and grid carries, so a reader knows which colour means what value."""

from __future__ import annotations

import cv2
import numpy as np

from .overlay import colorize

HEIGHT = 30


def _label(value: float) -> str:
    return f"{value:.3g}"


def colorbar(width: int, signed: bool, low: float, high: float, labels: tuple[str, ...] | None = None
             ) -> np.ndarray:
    """An RGB float strip `width` wide: the colour scale from `low` to `high` (signed maps: -|max| .. 0 .. +|max|,
    blue-white-red; others: low .. high, turbo) with its numbers, or with `labels` (low, [middle,] high)."""
    strip = np.ones((HEIGHT, width, 3), np.float32)
    ramp = np.linspace(-1.0 if signed else 0.0, 1.0, max(width - 8, 2), dtype=np.float32)
    strip[3:13, 4 : 4 + len(ramp)] = colorize(np.broadcast_to(ramp, (10, len(ramp))), signed)
    canvas = (strip * 255).astype(np.uint8)
    font, scale, ink = cv2.FONT_HERSHEY_SIMPLEX, 0.35, (40, 40, 40)
    texts = list(labels) if labels else [_label(low), *(["0"] if signed else []), _label(high)]
    placed = [(texts[0], 4), *([(texts[1], width // 2)] if len(texts) == 3 else []), (texts[-1], None)]
    for text, x in placed:
        size = cv2.getTextSize(text, font, scale, 1)[0][0]
        x = width - size - 4 if x is None else max(0, min(x - (size // 2 if x > 4 else 0), width - size))
        cv2.putText(canvas, text, (x, 25), font, scale, ink, 1, cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0


def legend(width: int, signed: bool, percentile: float = 99.5) -> np.ndarray:
    """The key of a grid whose maps are each scaled on their own: what the ends mean, not their values."""
    p = f"{percentile:g}th pct"
    return colorbar(width, signed, 0.0, 1.0, (f"-|{p}|", "0", f"+|{p}|") if signed else ("min", p))


def with_colorbar(picture: np.ndarray, signed: bool, low: float, high: float) -> np.ndarray:
    """`picture` with its colour bar underneath."""
    return np.vstack([picture, colorbar(picture.shape[1], signed, low, high)])
