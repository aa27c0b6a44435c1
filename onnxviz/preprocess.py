"""Preprocessing: an RGB float HWC image in [0, 1] -> the model's input tensor, and back for display."""

from __future__ import annotations

import json
import math
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
MAX_SIDE = 8192  # an input size from metadata: a hostile 100000 x 100000 asked for 149 GiB per image
MAX_INPUT_PIXELS = 4096 * 4096
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

    def __post_init__(self):
        for key in ("mean", "std"):
            value = getattr(self, key)
            try:
                numbers = tuple(float(v) for v in (value if isinstance(value, (tuple, list, np.ndarray)) else [value]))
            except (TypeError, ValueError):
                raise OptionError(f"preprocessing {key} must be 1 or 3 numbers, not {value!r}") from None
            if len(numbers) not in (1, 3) or not all(math.isfinite(v) for v in numbers):
                raise OptionError(f"preprocessing {key} must be 1 or 3 finite numbers, not {value!r}")
            if key == "std" and not all(v > 0 for v in numbers):
                raise OptionError(f"preprocessing std must be positive, not {value!r}")
            object.__setattr__(self, key, numbers)
        if not isinstance(self.scale, (int, float)) or not math.isfinite(self.scale) or self.scale <= 0:
            raise OptionError(f"preprocessing scale must be a positive number, not {self.scale!r}")
        if self.channel_order not in ("RGB", "BGR") or self.layout not in ("NCHW", "NHWC"):
            raise OptionError(f"preprocessing channel_order must be RGB or BGR and layout NCHW or NHWC, not "
                              f"{self.channel_order!r} / {self.layout!r}")
        if self.size is not None:
            object.__setattr__(self, "size", check_size(self.size, "preprocessing size"))

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


_FIELDS = {"preset", "mean", "std", "scale", "channel_order", "size"}


class MetadataError(ValueError):
    """`onnxviz.preprocessing` metadata that does not follow the schema (the model loads; the metadata is not used)."""


def _numbers(value, key: str, positive: bool) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) not in (1, 3):
        raise MetadataError(f"{key} must be a list of 1 or 3 numbers, not {value!r:.60}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise MetadataError(f"{key} must hold finite numbers, not {value!r:.60}")
    if positive and not all(v > 0 for v in value):
        raise MetadataError(f"{key} must be positive, not {value!r:.60}")
    return tuple(float(v) for v in value)


@dataclass(frozen=True)
class Request:
    """What a user asked for on the command line (a preset, a mean, a std), applied over a model's own
    preprocessing by `Model.use_preprocessing`. Picklable, so batch workers get it too."""

    preset: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    size: tuple[int, int] | None = None

    @classmethod
    def parse(cls, preset: str | None, mean: str | None, std: str | None, size: str | None = None) -> Request:
        def numbers(text: str | None, name: str) -> tuple[float, ...] | None:
            if not text:
                return None
            try:
                return tuple(float(v) for v in text.split(","))
            except ValueError:
                raise OptionError(f"--{name} takes comma-separated numbers, e.g. 0.485,0.456,0.406") from None

        if preset is not None and preset not in PRESETS:
            raise OptionError(f"unknown preprocessing preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        return cls(preset, numbers(mean, "mean"), numbers(std, "std"), parse_size(size))

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.preset, self.mean, self.std, self.size))


def check_size(size: object, what: str = "size") -> tuple[int, int]:
    """(height, width) as two ints, each 1..MAX_SIDE; an OptionError naming `what` otherwise."""
    values = tuple(size) if isinstance(size, (tuple, list, np.ndarray)) else ()
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE
                                   for v in values):
        raise OptionError(f"{what} must be (height, width), each 1..{MAX_SIDE}, not {size!r:.60}")
    return int(values[0]), int(values[1])


def parse_size(text: str | None) -> tuple[int, int] | None:
    """`HxW` (or `H,W`, or one number for a square) -> (height, width), each 1..MAX_SIDE."""
    if not text:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or not all(1 <= v <= MAX_SIDE for v in values):
        raise OptionError(f"--size takes HEIGHTxWIDTH in pixels (each 1..{MAX_SIDE}), e.g. 48x192, not {text!r}")
    return values[0], values[1]


def from_metadata(props: dict[str, str]) -> dict | None:
    """Preprocessing fields written into the model's metadata_props under `onnxviz.preprocessing`: a JSON object
    with any of preset (a name), mean and std (1 or 3 finite numbers, std > 0), scale (> 0), channel_order
    (RGB | BGR) and size ([height, width], each 1..8192). None when absent; MetadataError when it breaks the
    schema, saying how."""
    raw = props.get(METADATA_KEY)
    if not raw:
        return _ultralytics(props)
    if len(raw) > 10_000:
        raise MetadataError(f"it is {len(raw):,} characters long; a few dozen are expected")
    try:
        fields = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise MetadataError("it is not valid JSON") from None
    if not isinstance(fields, dict):
        raise MetadataError(f"it must be a JSON object such as {{\"preset\": \"imagenet\"}}, not "
                            f"{type(fields).__name__}")
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise MetadataError(f"unknown keys {unknown}; the schema has {sorted(_FIELDS)}")
    out: dict = {}
    if "preset" in fields:
        if not isinstance(fields["preset"], str) or fields["preset"] not in PRESETS:
            raise MetadataError(f"preset {fields['preset']!r:.40} is not one of {', '.join(PRESETS)}")
        out.update(PRESETS[fields["preset"]])
    if "mean" in fields:
        out["mean"] = _numbers(fields["mean"], "mean", positive=False)
    if "std" in fields:
        out["std"] = _numbers(fields["std"], "std", positive=True)
    if "scale" in fields:
        scale = fields["scale"]
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale) or scale <= 0:
            raise MetadataError(f"scale must be a positive number, not {scale!r:.40}")
        out["scale"] = float(scale)
    if "channel_order" in fields:
        if fields["channel_order"] not in ("RGB", "BGR"):
            raise MetadataError(f"channel_order must be RGB or BGR, not {fields['channel_order']!r:.40}")
        out["channel_order"] = fields["channel_order"]
    if "size" in fields:
        size = fields["size"]
        if (not isinstance(size, list) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE for v in size)):
            raise MetadataError(f"size must be [height, width] with each side 1..{MAX_SIDE}, not {size!r:.60}")
        if size[0] * size[1] > MAX_INPUT_PIXELS:
            raise MetadataError(f"size {size[0]}x{size[1]} is over {MAX_INPUT_PIXELS:,} pixels per input")
        out["size"] = (size[0], size[1])
    return out


def _ultralytics(props: dict[str, str]) -> dict | None:
    """What an ultralytics export says of itself (author Ultralytics, imgsz [h, w]): RGB pixels scaled to [0, 1]
    (the unit preset) at its training size; None for any other model or a size that breaks the limits."""
    if not props.get("author", "").startswith("Ultralytics") or "imgsz" not in props:
        return None
    try:
        size = json.loads(props["imgsz"])
    except (json.JSONDecodeError, RecursionError):
        return None
    if isinstance(size, int):
        size = [size, size]
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE for v in size)
            or size[0] * size[1] > MAX_INPUT_PIXELS):
        return None
    return {**PRESETS["unit"], "size": (size[0], size[1])}
