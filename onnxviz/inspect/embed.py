"""Embeddings of a folder of images: a layer's activations pooled over space, projected to 2-D by PCA
(numpy SVD) or t-SNE (scikit-learn), drawn as a scatter with thumbnails (PNG) and an interactive page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DependencyError, OptionError
from ..io import resize
from ..model import Model
from ..targets import Target
from ..viz.pages import render
from .features import channels_first
from .folders import batches


@dataclass
class Embedding:
    paths: list[Path]
    features: np.ndarray  # (N, C) pooled activations
    points: np.ndarray  # (N, 2)
    labels: list[str]  # folder names, or predicted classes
    label_kind: str  # "folder" or "prediction"
    thumbnails: list[np.ndarray]  # uint8 RGB, small: a big folder stays in memory
    layer: str
    method: str

    def shown(self, limit: int = 2000, seed: int = 0) -> np.ndarray:
        """Indices drawn in the pictures: all, or a seeded sample of `limit` (the CSV keeps every point)."""
        n = len(self.paths)
        return np.arange(n) if n <= limit else np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def pca(features: np.ndarray) -> np.ndarray:
    """First two principal components (signs fixed so the largest loading is positive: deterministic)."""
    centred = features - features.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    vt = vt[:2] * np.sign(vt[:2][np.arange(min(2, len(vt))), np.abs(vt[:2]).argmax(axis=1)])[:, None]
    points = centred @ vt.T
    return points if points.shape[1] == 2 else np.pad(points, ((0, 0), (0, 2 - points.shape[1])))


def tsne(features: np.ndarray, seed: int) -> np.ndarray:
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise DependencyError('t-SNE needs scikit-learn: pip install "onnxviz[tsne]" (or use --method pca)') from None
    perplexity = float(min(30, max(2, (len(features) - 1) / 3)))
    return TSNE(2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(features)


def embed(model: Model, paths: list[Path], layer: str | None, method: str = "pca", labels: list[str] | None = None,
          seed: int = 0, batch_size: int = 32, progress: bool = True, thumb: int = 48) -> Embedding:
    if method not in ("pca", "tsne"):
        raise OptionError(f"method must be pca or tsne, not {method!r}")
    name = model.layer(layer).name
    logits = model.score_tensor(Target())[0]
    pooled, predictions, thumbs = [], [], []
    for _, x, (acts, out) in batches(model, paths, (name, logits), batch_size, progress, "embed"):
        acts = channels_first(model, name, acts) if acts.ndim == 4 else acts.reshape(len(acts), -1, 1, 1)
        pooled.append(acts.reshape(len(acts), acts.shape[1], -1).mean(axis=2))
        predictions += out.reshape(len(out), -1).argmax(axis=1).tolist()
        images = model.preprocessing.invert(x)
        thumbs += [(np.clip(resize(im, thumb, thumb), 0, 1) * 255 + 0.5).astype(np.uint8) for im in images]
    features = np.concatenate(pooled).astype(np.float64)
    if len(features) < 3:
        raise OptionError("an embedding needs at least 3 images")
    points = pca(features) if method == "pca" else tsne(features, seed)
    kind = "folder" if labels else "prediction"
    return Embedding(paths, features, points, labels or [str(p) for p in predictions], kind, thumbs, name, method)


def _colour(k: int) -> tuple[int, int, int]:
    hue = int(k * 137.508) % 180  # golden-angle hues: neighbours differ
    bgr = cv2.cvtColor(np.array([[[hue, 200, 220]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[2]), int(bgr[1]), int(bgr[0])


def scatter_png(e: Embedding, size: int = 900, thumb: int = 40) -> np.ndarray:
    """RGB float picture: thumbnails at their 2-D positions, framed in their label's colour, and a legend."""
    canvas = np.full((size, size + 180, 3), 255, np.uint8)
    classes = sorted(set(e.labels))
    lo, hi = e.points.min(axis=0), e.points.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    xy = ((e.points - lo) / span * (size - thumb - 20) + 10).astype(int)
    for i in e.shown():
        (x, y), label = xy[i], e.labels[i]
        color = _colour(classes.index(label))
        tile = cv2.resize(e.thumbnails[i], (thumb, thumb), interpolation=cv2.INTER_AREA)
        canvas[y : y + thumb, x : x + thumb] = tile
        cv2.rectangle(canvas, (x - 2, y - 2), (x + thumb + 1, y + thumb + 1), color, 2)
    for k, label in enumerate(classes[:40]):
        cv2.rectangle(canvas, (size + 10, 12 + 20 * k), (size + 24, 26 + 20 * k), _colour(k), -1)
        cv2.putText(canvas, label[:20], (size + 30, 24 + 20 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (25, 25, 25), 1,
                    cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0


def scatter_html(e: Embedding, title: str) -> str:
    """A self-contained page: an SVG scatter; hovering a point shows its thumbnail, path and label."""
    classes = sorted(set(e.labels))
    lo, hi = e.points.min(axis=0), e.points.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    xy = (e.points - lo) / span * 760 + 20
    dots = [{"x": xy[i][0], "y": xy[i][1], "rgb": _colour(classes.index(e.labels[i])), "image": e.thumbnails[i],
             "text": f"{e.paths[i].name} — {e.label_kind} {e.labels[i]}"} for i in e.shown()]
    legend = [(c, _colour(k)) for k, c in enumerate(classes)]
    return render("embed.html", title=title, dots=dots, legend=legend)
