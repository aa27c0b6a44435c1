"""Streaming a folder of images through the model in batches: bounded memory, a progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..api import load_image
from ..imagefiles import find_images
from ..model import Model
from ..progress import bar as bar_of


def labelled_images(sources: list[str | Path]) -> tuple[list[Path], list[str] | None]:
    """Image paths under files/folders, and their sub-folder names as labels when the images sit in more
    than one folder below a given folder (None otherwise)."""
    paths = find_images(sources)
    parents = {p.parent for p in paths}
    return paths, ([p.parent.name for p in paths] if len(parents) > 1 else None)


def batches(model: Model, paths: list[Path], tensors: tuple[str, ...], batch_size: int = 32,
            progress: bool = True, desc: str = "images") -> Iterator[tuple[int, np.ndarray, list[np.ndarray]]]:
    """(index of the first image, the batch of model inputs, the requested tensors) per batch."""
    with bar_of(len(paths), desc, "image", progress) as bar:
        for start in range(0, len(paths), batch_size):
            x = load_image(paths[start : start + batch_size], model)
            outs = model.run(x, tensors, batch_size)
            yield start, x, outs
            bar.update(len(x))

