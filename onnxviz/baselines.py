"""Reference inputs ("baselines") for path and perturbation methods, in the model's input space."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from .errors import OptionError
from .layout import Layout
from .layout import layout as layout_of

NAMED = ("mean", "blur", "uniform")


def check_baseline(spec: object, named: tuple[str, ...] = NAMED, files: bool = True) -> None:
    """Refuse a baseline string that names nothing: not one of `named`, nor (where `files`) an existing image."""
    if not isinstance(spec, str) or spec in named or (files and Path(spec).is_file()):
        return
    also = ", or an image file" if files else ""
    raise ValueError(f"baselines {spec!r} is not a number, an array, one of {', '.join(named)}{also}")


def make_baseline(spec: float | str | np.ndarray, x: np.ndarray, layout: Layout | str,
                  rng_for: Callable[[np.ndarray], np.random.Generator] | None, blur_sigma: float = 10.0,
                  load: Callable[[str], np.ndarray] | None = None) -> np.ndarray:
    """A baseline shaped like `x`: a constant, "mean" (each image's per-channel mean), "blur" (each image
    Gaussian-blurred with `blur_sigma` pixels), "uniform" (noise between each image's min and max, drawn
    from `rng_for(image)`), an array broadcastable to x, or the path of an image (read by `load`)."""
    if isinstance(spec, str) and spec not in NAMED and load is not None:
        spec = load(spec)
    if isinstance(spec, np.ndarray):
        try:
            return np.broadcast_to(spec.astype(x.dtype), x.shape).copy()
        except ValueError:
            raise OptionError(f"a baseline array of shape {spec.shape} does not broadcast to {x.shape}") from None
    if isinstance(spec, (int, float)):
        return np.full_like(x, float(spec))
    layout = layout_of(layout)
    if spec == "mean":
        return np.broadcast_to(x.mean(axis=layout.spatial_axes, keepdims=True), x.shape).astype(x.dtype)
    if spec == "uniform":
        low = x.min(axis=tuple(range(1, x.ndim)), keepdims=True)
        high = x.max(axis=tuple(range(1, x.ndim)), keepdims=True)
        if rng_for is None:
            raise OptionError("a uniform baseline needs a random generator per image")
        noise = np.stack([rng_for(img).random(img.shape) for img in x])
        return (low + (high - low) * noise).astype(x.dtype)
    if spec == "blur":
        blurred = np.stack([cv2.GaussianBlur(np.ascontiguousarray(img), (0, 0), blur_sigma).reshape(img.shape)
                            for img in layout.to_channels_last(x)])
        return np.ascontiguousarray(layout.from_channels_last(blurred))
    raise OptionError(f"baseline {spec!r} is not a number, an array, or one of {', '.join(NAMED)}")


def check_baseline_set(spec: object) -> None:
    """`check_baseline` for a set of references: a `.npy` file of them is also a valid string."""
    if not (isinstance(spec, str) and spec.endswith(".npy")):
        check_baseline(spec, files=False)


def baseline_set(spec: float | str | np.ndarray, sample: np.ndarray, layout: Layout | str,
                 rng: np.random.Generator, count: int, blur_sigma: float = 10.0) -> np.ndarray:
    """The reference distribution of one sample, (K, *sample.shape): an array of K references (or a `.npy` file of
    one), `count` uniform-noise draws from `rng`, or the one baseline `make_baseline` makes of the other specs."""
    if isinstance(spec, str) and spec.endswith(".npy"):
        try:
            spec = np.load(spec, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise OptionError(f"cannot read the baselines file {spec}: {exc}") from None
    if isinstance(spec, np.ndarray) and spec.ndim == sample.ndim + 1:
        if spec.shape[1:] != sample.shape or len(spec) == 0:
            raise OptionError(f"a set of baselines must have shape (K, {', '.join(map(str, sample.shape))}) like the "
                              f"model input, not {spec.shape}")
        return spec.astype(sample.dtype)
    many = count if isinstance(spec, str) and spec == "uniform" else 1
    return make_baseline(spec, np.repeat(sample[None], many, axis=0), layout, lambda img: rng, blur_sigma)
