"""Preprocessing: an RGB float HWC image in [0, 1] -> the model's input tensor, and back for display."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import numpy as np

from .errors import OptionError

PRESETS: dict[str, dict] = {
    "imagenet": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "scale": 1.0},
    "unit": {"mean": (0.0,), "std": (1.0,), "scale": 1.0},
    "symmetric": {"mean": (0.5,), "std": (0.5,), "scale": 1.0},
    "caffe": {"mean": (103.939, 116.779, 123.68), "std": (1.0,), "scale": 255.0, "channel_order": "BGR"},
}
METADATA_KEY = "onnxviz.preprocessing"
GREY = np.array([0.299, 0.587, 0.114], np.float32)  # luminance weights for one-channel models


@dataclass(frozen=True)
class Preprocessing:
    """x = (image * scale - mean) / std, in `channel_order`, laid out as `layout`."""

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    scale: float = 1.0
    channel_order: str = "RGB"
    layout: str = "NCHW"
    size: tuple[int, int] | None = None  # (height, width); None = the model's own input size
    channels: int = 3

    @classmethod
    def preset(cls, name: str, **overrides) -> Preprocessing:
        if name not in PRESETS:
            raise OptionError(f"unknown preprocessing preset {name!r}; choose one of: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def with_(self, **changes) -> Preprocessing:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(self.mean, np.float32)
        std = np.asarray(self.std, np.float32)
        if self.channels == 1:  # one-channel models take the mean of per-channel stats
            mean, std = mean.mean(keepdims=True), std.mean(keepdims=True)
        return mean, std

    def apply(self, image: np.ndarray) -> np.ndarray:
        """HWC RGB float [0, 1] (already resized), or a batch of them, -> the model's layout."""
        if self.channels == 1:
            image = (image @ GREY)[..., None] if image.shape[-1] == 3 else image[..., :1]
        elif self.channel_order == "BGR":
            image = image[..., ::-1]
        mean, std = self._stats()
        x = (image.astype(np.float32) * self.scale - mean) / std
        return np.ascontiguousarray(np.moveaxis(x, -1, -3) if self.layout == "NCHW" else x, dtype=np.float32)

    def pullback(self, grad: np.ndarray, image_channels: int = 3) -> np.ndarray:
        """The gradient wrt the model's input batch -> the gradient wrt the HWC [0, 1] images that `apply`
        took (its vector-Jacobian product): gradient methods and attacks work in image space."""
        g = np.moveaxis(grad, -3, -1) if self.layout == "NCHW" else grad
        _, std = self._stats()
        g = g * (self.scale / std)
        if self.channels == 1:
            return (g * GREY if image_channels == 3 else g).astype(np.float32)
        return np.ascontiguousarray(g[..., ::-1] if self.channel_order == "BGR" else g, dtype=np.float32)

    def invert(self, x: np.ndarray) -> np.ndarray:
        """One model-layout sample (or a batch) -> HWC RGB float [0, 1] for display."""
        batched = x.ndim == 4
        xb = x if batched else x[None]
        if self.layout == "NCHW":
            xb = xb.transpose(0, 2, 3, 1)
        mean, std = self._stats()
        img = (xb * std + mean) / self.scale
        if img.shape[-1] == 1:
            img = np.repeat(img, 3, axis=-1)
        elif self.channel_order == "BGR":
            img = img[..., ::-1]
        img = np.clip(img, 0.0, 1.0).astype(np.float32)
        return img if batched else img[0]


def from_metadata(props: dict[str, str]) -> dict | None:
    """Preprocessing fields written into the model's metadata_props under `onnxviz.preprocessing`."""
    raw = props.get(METADATA_KEY)
    if not raw:
        return None
    try:
        fields = json.loads(raw)
    except json.JSONDecodeError:
        return None
    if "preset" in fields:
        fields = {**PRESETS.get(fields.pop("preset"), {}), **fields}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
