"""Explanation: the frozen result of one method on one batch, with everything needed to redraw it."""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import viz
from .errors import OnnxvizError
from .io import save_png, write_bytes_atomic
from .preprocess import Preprocessing

_ARRAYS = ("attributions", "inputs", "targets", "scores", "predictions", "raw")


@dataclass(frozen=True)
class Explanation:
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

    # -- drawing ------------------------------------------------------------------------------------------
    def maps(self) -> np.ndarray:
        """(N, H, W) maps: pixel attributions summed over channels."""
        return viz.to_maps(self.attributions, self.kind, self.preprocessing.get("layout", "NCHW"))

    @property
    def signed(self) -> bool:
        """Drawn with a diverging colormap: values of both signs, unless the method asked for min..max."""
        if self.extras.get("display") == "unsigned":
            return False
        m = self.maps()
        return bool((m < 0).any() and (m > 0).any())

    def normalized(self, percentile: float = 99.5) -> np.ndarray:
        """(N, H, W) in [0, 1], or [-1, 1] for signed attributions, outliers clipped at `percentile`."""
        return viz.normalize_maps(self.maps(), self.signed, percentile)

    def images(self) -> np.ndarray:
        """The inputs as RGB float images in [0, 1] (preprocessing inverted)."""
        return Preprocessing(**_tuples(self.preprocessing)).invert(self.inputs)

    def overlay(self, i: int = 0, alpha: float = 0.5, percentile: float = 99.5) -> np.ndarray:
        """Sample `i`'s heatmap blended on its image: RGB float HWC in [0, 1], with the explained region's box
        drawn when the target was a box: or photo: region."""
        picture = viz.overlay(self.images()[i], self.normalized(percentile)[i], self.signed, alpha)
        boxes = self.extras.get("region_boxes")
        if boxes:
            picture = viz.outline(picture, boxes[i], tuple(self.extras["region_space"]))
        return picture

    def label(self, i: int = 0) -> str:
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
            images = self.images()
            cells = [[images[i], self.overlay(i)] for i in range(len(self))]
            captions = [[f"input: predicted {int(self.predictions[i])}", self.label(i)] for i in range(len(self))]
            picture = viz.grid(cells, captions)
            return save_png(path, picture)
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


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
