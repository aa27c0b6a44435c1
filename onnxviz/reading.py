"""Images into a model, one reader for every command: paths or arrays -> the model's input batch (its size,
preprocessing and layout) or the model's [0, 1] image space (its size and channel count, before preprocessing),
which attacks, synthesis and robustness work in. Decoding itself is io.py's."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import GuessWarning, ImageError
from .io import image_array, read_image, resize
from .preprocess import GREY, Preprocessing

if TYPE_CHECKING:  # plugins import this through Context: the model's code (and onnx, 0.6 s) loads with a model
    from .model import Model

ImageSource = str | os.PathLike | np.ndarray


class ModelBatch(np.ndarray):
    """A batch in the model's input space that remembers the preprocessing it was read with, so explanations
    draw it with the same one (an array like any other otherwise; slices and copies keep it)."""

    preprocessing: Preprocessing | None

    @classmethod
    def of(cls, array: np.ndarray, preprocessing: Preprocessing) -> ModelBatch:
        batch = array.view(cls)
        batch.preprocessing = preprocessing
        return batch

    def __array_finalize__(self, obj) -> None:
        self.preprocessing = getattr(obj, "preprocessing", None)


def preprocessing_of(x: np.ndarray) -> Preprocessing | None:
    """The preprocessing a batch was read with (`load_image`), when it carries one."""
    pre = getattr(x, "preprocessing", None)
    return pre if isinstance(pre, Preprocessing) else None


def _sources(source: ImageSource | Sequence[ImageSource]) -> list[ImageSource]:
    """One path, one array (2-D grey, or HWC), a batch (NHWC) or a list of any of those -> a list of images."""
    if source is None or isinstance(source, (bytes, bytearray)):
        raise ImageError("images are paths or RGB [0, 1] HWC arrays (one, or a list), not "
                         f"{type(source).__name__}")
    if isinstance(source, np.ndarray):
        if source.ndim == 2:
            return [source[..., None]]  # one grey image
        if source.ndim == 4:
            return list(source)
    sources = [source] if isinstance(source, (str, os.PathLike, np.ndarray)) else list(source)
    if not sources:
        raise ImageError("no images given: pass image paths or RGB [0, 1] HWC arrays")
    return sources


def read_one(source: ImageSource, index: int = 0) -> tuple[np.ndarray, str]:
    """(RGB or grey float32 HWC in [0, 1], a name for captions and errors) for a path or an array."""
    if isinstance(source, (str, os.PathLike)):
        return read_image(source), Path(source).name
    return image_array(source, f"image {index}"), f"image {index}"


def to_image_space(image: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """An RGB or grey HWC [0, 1] image at `size` with the model's channel count (grey models: luminance)."""
    image = resize(np.asarray(image, np.float32), *size)
    if channels == 1 and image.shape[-1] == 3:
        return (image @ GREY)[..., None]
    if channels == 3 and image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    return image


def warn_assumptions(model: Model, stacklevel: int = 3) -> None:
    """Each guess about how to feed the model (default preprocessing, a default size) as a visible warning."""
    for note in model.assumptions():
        warnings.warn(f"onnxviz: {model.name}: {note}", GuessWarning, stacklevel=stacklevel)


def image_space(source: ImageSource | Sequence[ImageSource], model: Model) -> tuple[np.ndarray, list[str]]:
    """((N, H, W, C) images at the model's size and channel count in [0, 1], their names)."""
    warn_assumptions(model)
    images, names = [], []
    for k, src in enumerate(_sources(source)):
        img, name = read_one(src, k)
        images.append(to_image_space(img, model.input_size, model.input.channels or 3))
        names.append(name)
    return np.stack(images).astype(np.float32), names


def read_batch(source: ImageSource | Sequence[ImageSource], model: Model,
               preprocessing: Preprocessing | str | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(the model's input batch, the (height, width) each image had before it was resized: for photo: regions)."""
    if not model.input.layout:
        raise ImageError(f"the model's input {model.input.name} {model.input.shape} is not an image (not 4-D)")
    pre = preprocessing if isinstance(preprocessing, Preprocessing) else (
        Preprocessing.preset(preprocessing, layout=model.input.layout, channels=model.input.channels or 3)
        if preprocessing else model.preprocessing)
    if preprocessing is None:
        warn_assumptions(model)
    h, w = model.input_size
    batch, sizes = [], []
    for k, src in enumerate(_sources(source)):
        img, _ = read_one(src, k)
        sizes.append((int(img.shape[0]), int(img.shape[1])))
        batch.append(pre.apply(resize(img, h, w)))
    return ModelBatch.of(np.stack(batch).astype(model.input.batch_dtype), pre), sizes


def load_image(source: ImageSource | Sequence[ImageSource], model: Model,
               preprocessing: Preprocessing | str | None = None) -> np.ndarray:
    """Image file(s), RGB / grey [0, 1] HWC array(s) (uint8 arrays are divided by 255; a 2-D array is one grey
    image; a 4-D array a batch of HWC images) -> a float32 batch in the model's own layout and size."""
    return read_batch(source, model, preprocessing)[0]
