"""Noise robustness: confidence in the target class (and top-1 accuracy) as Gaussian, salt-and-pepper and
uniform noise and blur grow, on onnxruntime; written as a CSV and a PNG plot."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .context import Context
from .io import encode_png, read_image, resize, write_bytes_atomic
from .model import Model
from .targets import Target, check_finite, check_range, pick, softmax

NOISES = {  # name: (largest level, unit)
    "gaussian": (0.5, "std of N(0, s) added, image in [0, 1]"),
    "salt_pepper": (0.5, "fraction of pixels set to 0 or 1"),
    "uniform": (0.5, "a of U(-a, a) added"),
    "blur": (None, "Gaussian sigma in pixels (up to 1/16 of the image side)"),
}


def corrupt(images: np.ndarray, noise: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """Images (N, H, W, 3) in [0, 1] with one kind of noise at `level`, clipped to [0, 1]."""
    if level == 0:
        return images
    if noise == "gaussian":
        out = images + rng.normal(0, level, images.shape)
    elif noise == "uniform":
        out = images + rng.uniform(-level, level, images.shape)
    elif noise == "salt_pepper":
        out = images.copy()
        hit = rng.random(images.shape[:3]) < level
        out[hit] = rng.integers(0, 2, size=int(hit.sum()))[:, None]
    elif noise == "blur":
        out = np.stack([cv2.GaussianBlur(img, (0, 0), level) for img in images])
    else:
        raise ValueError(f"unknown noise {noise!r}")
    return np.clip(out, 0, 1).astype(np.float32)


@dataclass
class Robustness:
    """Rows of (noise, level, mean confidence in the target, top-1 accuracy or agreement)."""

    rows: list[tuple[str, float, float, float]] = field(default_factory=list)
    accuracy_kind: str = "agreement with the clean top-1"

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["noise", "level", "mean_confidence", "top1_accuracy" if "label" in self.accuracy_kind
                         else "top1_agreement"])
        writer.writerows((n, f"{lv:.6g}", f"{c:.6f}", f"{a:.6f}") for n, lv, c, a in self.rows)
        return buf.getvalue()

    def plot(self) -> np.ndarray:
        """RGB float picture: confidence (solid) and accuracy (thin) against the normalized level."""
        width, height, margin = 720, 440, 60
        canvas = np.full((height, width, 3), 255, np.uint8)
        colors = {"gaussian": (31, 119, 180), "salt_pepper": (214, 39, 40), "uniform": (44, 160, 44),
                  "blur": (148, 103, 189)}
        x0, y0, x1, y1 = margin, height - margin, width - 170, 30
        cv2.rectangle(canvas, (x0, y1), (x1, y0), (60, 60, 60), 1)
        for frac in (0, 0.25, 0.5, 0.75, 1):
            y = int(y0 - frac * (y0 - y1))
            cv2.putText(canvas, f"{frac:.2f}", (8, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1)
        cv2.putText(canvas, "noise level (0 to its maximum)", (x0 + 80, height - 20), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, (30, 30, 30), 1)
        for k, (noise, color) in enumerate(colors.items()):
            mine = [r for r in self.rows if r[0] == noise]
            if not mine:
                continue
            top = max(r[1] for r in mine) or 1.0
            for column, thickness in ((2, 2), (3, 1)):
                points = np.array([[x0 + r[1] / top * (x1 - x0), y0 - float(r[column]) * (y0 - y1)] for r in mine],
                                  np.int32)
                cv2.polylines(canvas, [points], False, color[::-1], thickness, cv2.LINE_AA)
            cv2.putText(canvas, noise, (x1 + 15, y1 + 20 + 22 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color[::-1], 1)
        cv2.putText(canvas, "thick: confidence", (x1 + 15, y1 + 130), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (30, 30, 30), 1)
        cv2.putText(canvas, "thin: top-1", (x1 + 15, y1 + 148), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (30, 30, 30), 1)
        return canvas[..., ::-1].astype(np.float32) / 255.0

    def save(self, out: str | Path) -> list[Path]:
        out = Path(out)
        return [write_bytes_atomic(out / "robustness.csv", self.csv().encode()),
                write_bytes_atomic(out / "robustness.png", encode_png(self.plot()))]


def noise_robustness(model: Model, images: Sequence[str | Path], labels: list[int] | None = None, levels: int = 11,
                     target: int | None = None, seed: int = 0, batch_size: int = 32) -> Robustness:
    """Mean softmax confidence in the target (default: each image's clean top-1) and top-1 accuracy (against
    `labels`, else agreement with the clean prediction) for each noise and level."""
    h, w = model.input_size
    clean = np.stack([resize(read_image(p), h, w) for p in images])
    pre = model.preprocessing
    ctx = Context(model, Target(softmax=True), np.zeros(len(clean), np.int64), batch_size=batch_size, seed=seed)

    def probabilities(batch: np.ndarray) -> np.ndarray:
        x = np.stack([pre.apply(img) for img in batch]).astype(model.input.batch_dtype)
        out = ctx.outputs(x, (ctx.score_tensor,))[0]
        return softmax(out) if ctx.softmax else out

    first = probabilities(clean)
    check_finite(first, ctx.score_tensor, "a robustness curve")
    if target is not None:
        check_range(np.array([target]), first.shape[1])
    targets = first.argmax(1) if target is None else np.full(len(clean), target)
    reference = np.asarray(labels) if labels is not None else first.argmax(1)
    result = Robustness(accuracy_kind="accuracy against the labels" if labels is not None else
                        "agreement with the clean top-1")
    for n, (noise, (top, _)) in enumerate(NOISES.items()):
        top = top if top is not None else max(h, w) / 16
        for k, level in enumerate(np.linspace(0, top, levels)):
            rng = np.random.default_rng([seed, n, k])
            probs = probabilities(corrupt(clean, noise, float(level), rng))
            confidence = float(pick(probs, targets, False).mean())
            result.rows.append((noise, float(level), confidence, float((probs.argmax(1) == reference).mean())))
    return result
