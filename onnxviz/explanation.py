"""Explanation: the frozen result of one method on one batch, with everything needed to redraw it."""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OnnxvizError
from .io import save_png, write_bytes_atomic
from .viz import drawing
from .viz.notebook import Displayable

_ARRAYS = ("attributions", "inputs", "targets", "scores", "predictions", "raw")


@dataclass(frozen=True)
class Explanation(Displayable):
    attributions: np.ndarray  # same shape as inputs ("pixels"), or (N, H, W) at input size ("map")
    method: str
    kind: str  # "pixels" | "map"
    inputs: np.ndarray  # what the model saw, in its own layout
    targets: np.ndarray  # class index explained, per sample
    scores: np.ndarray  # clean score of that class, per sample
    predictions: np.ndarray  # top-1 class, per sample
    target: str  # the target spec as given ("top1", "softmax:281", ...)
    options: dict[str, Any]
    layer: str | None
    backend: str  # "onnxruntime", "torch", or both joined by "+"
    model_name: str
    model_hash: str
    preprocessing: dict[str, Any]
    timings: dict[str, float]
    raw: np.ndarray | None = None  # layer-space maps for CAM methods
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.attributions)

    # -- drawing (viz.drawing; batch-wide steps are computed once and kept) --------------------------------
    @cached_property
    def _maps(self) -> np.ndarray:
        return _read_only(drawing.maps(self))

    @cached_property
    def _images(self) -> np.ndarray:
        return _read_only(drawing.images(self))

    @cached_property
    def _normalized(self) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        return {}

    @cached_property
    def _shown(self) -> tuple[np.ndarray, bool]:
        m = drawing.shown(self, self._maps)
        return m, drawing.is_signed(self, m)

    def drawn(self, percentile: float = 99.5) -> tuple[np.ndarray, np.ndarray, bool]:
        """(images, normalized maps, whether they are drawn diverging) for drawing: computed once, read-only."""
        m, diverging = self._shown
        if percentile not in self._normalized:
            norm, scales = drawing.normalized(m, diverging, percentile)
            self._normalized[percentile] = (_read_only(norm), _read_only(scales))
        return self._images, self._normalized[percentile][0], diverging

    def scales(self, percentile: float = 99.5) -> np.ndarray:
        """(N, 2): per map, the attribution values the two ends of its colour scale stand for."""
        self.drawn(percentile)
        return self._normalized[percentile][1].copy()

    def with_display(self, *, display: str | None = None, smooth: float | None = None) -> Explanation:
        """The same result drawn otherwise: display "absolute" (|map|) or "auto"; `smooth` a Gaussian blur of the
        drawn maps, sigma in input pixels (0: none). The arrays are unchanged."""
        if display not in (None, "auto", "absolute"):
            raise OnnxvizError(f"display must be auto or absolute, not {display!r}")
        if smooth is not None and not (isinstance(smooth, (int, float)) and 0 <= smooth <= 1000):
            raise OnnxvizError(f"smooth is a blur radius in pixels (0..1000), not {smooth!r}")
        extras = dict(self.extras)
        if display == "auto":
            extras.pop("display", None)
        elif display is not None:
            extras["display"] = display
        if smooth is not None:
            extras["smooth"] = float(smooth)
        return replace(self, extras=extras)

    def maps(self) -> np.ndarray:
        """(N, H, W) maps: pixel attributions summed over channels."""
        return self._maps.copy()

    @property
    def signed(self) -> bool:
        """Drawn with a diverging colormap: values of both signs, unless the method asked for min..max."""
        return drawing.is_signed(self, self._maps)

    def normalized(self, percentile: float = 99.5) -> np.ndarray:
        """(N, H, W) in [0, 1], or [-1, 1] for signed attributions, outliers clipped at `percentile`."""
        return self.drawn(percentile)[1].copy()

    def images(self) -> np.ndarray:
        """The inputs as RGB float images in [0, 1] (preprocessing inverted)."""
        return self._images.copy()

    def overlay(self, i: int = 0, alpha: float = 0.5, percentile: float = 99.5) -> np.ndarray:
        """Sample `i`'s heatmap blended on its image: RGB float HWC in [0, 1], with the explained region's box
        drawn when the target was a box: or photo: region."""
        return drawing.overlays(self, alpha, percentile, rows=[i])[0]

    def overlays(self, alpha: float = 0.5, percentile: float = 99.5) -> list[np.ndarray]:
        """Every sample's overlay, normalized and inverted once for the batch."""
        return drawing.overlays(self, alpha, percentile)

    def figure(self, i: int = 0, alpha: float = 0.5, percentile: float = 99.5) -> np.ndarray:
        """Sample i's overlay at a readable size (at least 256 px) with its colour bar: what the files show."""
        return drawing.figure(self, i, alpha, percentile)

    def _picture(self) -> np.ndarray:
        return drawing.sheet(self)

    def _caption(self) -> str:
        return (f"{self.method} on {self.model_name} ({self.backend}), {len(self)} image(s): "
                + "; ".join(self.label(i).split(" | ", 1)[-1] for i in range(len(self))))

    def label(self, i: int = 0) -> str:
        explained = self.extras.get("explained")
        if explained and i < len(explained):
            return f"{self.method} | {explained[i]}"
        return f"{self.method} | class {int(self.targets[i])}"

    # -- files --------------------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        skip = set(_ARRAYS)
        meta = {k: v for k, v in asdict(self).items() if k not in skip}
        meta["targets"] = [int(t) for t in self.targets]
        meta["predictions"] = [int(p) for p in self.predictions]
        meta["scores"] = [float(s) for s in self.scores]
        meta["attributions_shape"] = list(self.attributions.shape)
        return json.loads(json.dumps(meta, default=_jsonable))

    def save(self, path: str | os.PathLike) -> Path:
        """.png: overlays side by side; .npz: arrays + metadata; .json: metadata (arrays in a sibling .npz)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".png":
            return save_png(path, drawing.sheet(self))
        if suffix == ".npz":
            buf = io.BytesIO()
            arrays = {k: getattr(self, k) for k in _ARRAYS if getattr(self, k) is not None}
            np.savez_compressed(buf, meta=np.array(json.dumps(self.metadata())), **arrays)
            return write_bytes_atomic(path, buf.getvalue())
        if suffix == ".json":
            self.save(path.with_suffix(".npz"))
            return write_bytes_atomic(path, json.dumps(self.metadata(), indent=2).encode())
        raise OnnxvizError(f"cannot save an explanation as {suffix or 'a file without extension'}: "
                           "use .png, .npz or .json")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Explanation:
        """Read back what `save` wrote as .npz or .json."""
        path = Path(path)
        npz = path.with_suffix(".npz")
        if not npz.is_file():
            raise OnnxvizError(f"no saved explanation at {npz}")
        with np.load(npz, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in _ARRAYS if k in data}
        meta.pop("attributions_shape", None)
        fields = {**meta, **arrays}
        fields.setdefault("raw", None)
        return cls(**fields)


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
