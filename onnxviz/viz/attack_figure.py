"""The attack picture: one row per image - clean, adversarial, perturbation x k, and prediction bars."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .grid import CAPTION, grid

# an onnxviz.AttackResult; not imported, because the result draws itself through this module (no cycle)
AttackResult = Any

CELL = 224
BARS_WIDTH = 300
BEFORE, AFTER, INK = (70, 110, 190), (205, 60, 50), (25, 25, 25)


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.4) -> None:
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, INK, 1, cv2.LINE_AA)


def bars(before: list[tuple[str, float]], after: list[tuple[str, float]], height: int) -> np.ndarray:
    """Two stacks of top-k probability bars (before, after) on a white RGB float panel."""
    canvas = np.full((height, BARS_WIDTH, 3), 255, np.uint8)
    half = height // 2
    for top, (title, entries, color) in enumerate((("before", before, BEFORE), ("after", after, AFTER))):
        y0 = top * half + 16
        _text(canvas, title, 6, y0, 0.45)
        step = (half - 24) // max(len(entries), 1)
        for k, (name, prob) in enumerate(entries):
            y = y0 + 6 + k * step
            cv2.rectangle(canvas, (6, y), (6 + int(prob * (BARS_WIDTH - 12)), y + step - 4), color, -1)
            _text(canvas, f"{name[:34]}  {prob:.2f}", 10, y + step - 8, 0.36)
    return canvas.astype(np.float32) / 255.0


def attack_figure(result: AttackResult, scale: float | None = None) -> np.ndarray:
    """RGB float picture of every attacked image; the perturbation is shown as 0.5 + scale x delta (default
    scale: the largest change fills the range)."""
    before, after = result.top(), result.top(after=True)
    scale = scale or 0.5 / max(float(result.linf.max(initial=0)), 1e-6)
    rows = []
    for i in range(len(result.images)):
        clean, adv = (np.repeat(a, 3 // a.shape[-1], axis=-1) for a in (result.images[i], result.adversarial[i]))
        delta = np.clip(0.5 + scale * (adv - clean), 0.0, 1.0)
        verdict = "fooled" if result.success[i] else "resisted"
        captions = [result.names[i] if i < len(result.names) else f"image {i}",
                    f"{result.method}: {verdict}", f"perturbation x{scale:.3g} (Linf {result.linf[i] * 255:.1f}/255)"]
        left = grid([[clean, adv, delta]], [captions], cell=CELL)
        named_before, named_after = ([(result.class_name(c), p) for c, p in top[i]] for top in (before, after))
        rows.append(np.hstack([left, np.ones((len(left), 4, 3), np.float32),
                               bars(named_before, named_after, CELL + CAPTION)]))
    pad = np.ones((4, rows[0].shape[1], 3), np.float32)
    return np.vstack([part for row in rows for part in (row, pad)][:-1])
