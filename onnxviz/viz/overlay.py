"""Colormaps and overlays: heatmaps upsampled with OpenCV to the image size and blended on it."""

from __future__ import annotations

import cv2
import numpy as np

from ..io import resize


def _diverging_lut() -> np.ndarray:
    """256 RGB colours from blue through white to red, for signed maps."""
    t = np.linspace(-1.0, 1.0, 256)[:, None]
    blue, white, red = np.array([0.23, 0.30, 0.75]), np.ones(3), np.array([0.71, 0.02, 0.15])
    return np.where(t < 0, white + (blue - white) * -t, white + (red - white) * t).astype(np.float32)


_DIVERGING = _diverging_lut()


def colorize(norm: np.ndarray, signed: bool) -> np.ndarray:
    """A normalized map ([0, 1], or [-1, 1] when signed) -> RGB float [0, 1] (turbo, or blue-white-red)."""
    if signed:
        return _DIVERGING[np.clip(((norm + 1) * 127.5).round(), 0, 255).astype(np.uint8)]
    u8 = np.clip(norm * 255 + 0.5, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(u8, cv2.COLORMAP_TURBO)[..., ::-1].astype(np.float32) / 255.0


def overlay(image: np.ndarray, norm: np.ndarray, signed: bool, alpha: float = 0.5) -> np.ndarray:
    """Blend a normalized map on an RGB float image (map resized to the image). Signed maps are blended in
    proportion to their magnitude (fully opaque at the extremes when alpha >= 0.5), so near-zero regions
    show the image."""
    norm = resize(norm, *image.shape[:2])
    color = colorize(norm, signed)
    weight = min(1.0, 2 * alpha) * np.abs(norm)[..., None] if signed else alpha
    return np.clip(image * (1 - weight) + color * weight, 0, 1).astype(np.float32)


def outline(image: np.ndarray, box, space: tuple[int, int], color=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Draw box (x0, y0, x1, y1), given in a (height, width) `space`, on an RGB float image of another size."""
    h, w = image.shape[:2]
    sy, sx = h / space[0], w / space[1]
    x0, y0, x1, y1 = box
    p0 = (round(x0 * sx), round(y0 * sy))
    p1 = (max(p0[0], round(x1 * sx) - 1), max(p0[1], round(y1 * sy) - 1))
    drawn = np.ascontiguousarray(image, np.float32).copy()
    thick = max(1, round(min(h, w) / 150))
    cv2.rectangle(drawn, p0, p1, (0.0, 0.0, 0.0), thick + 2)  # a dark rim, so the box shows on light maps too
    cv2.rectangle(drawn, p0, p1, tuple(float(c) for c in color), thick)
    return drawn
