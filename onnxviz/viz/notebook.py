"""Results that draw themselves in Jupyter (`_repr_png_` / `_repr_html_`: the picture with a caption) and
`onnxviz.show(...)`, a quick grid of explanations, results and images."""

from __future__ import annotations

import base64
import html
from typing import Any

import numpy as np

from ..io import encode_png, save_png
from .grid import grid


class Displayable:
    """Mixin: `_picture()` (RGB float HWC) and `_caption()` are all a result needs to render in a notebook."""

    def _picture(self) -> np.ndarray:
        raise NotImplementedError

    def _caption(self) -> str:
        return type(self).__name__

    def _repr_png_(self) -> bytes:
        return encode_png(self._picture())

    def _repr_html_(self) -> str:
        return figure_html(self._picture(), self._caption())


def figure_html(picture: np.ndarray, caption: str) -> str:
    """A self-contained <figure>: the PNG inline, the caption escaped."""
    data = base64.b64encode(encode_png(picture)).decode("ascii")
    return (f'<figure style="margin:0"><img src="data:image/png;base64,{data}" style="max-width:100%">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


class Sheet(Displayable):
    """What `show` returns: a grid picture that renders in a notebook and saves as PNG."""

    def __init__(self, picture: np.ndarray, caption: str):
        self.picture, self.caption = picture, caption

    def _picture(self) -> np.ndarray:
        return self.picture

    def _caption(self) -> str:
        return self.caption

    def save(self, path: str) -> str:
        return str(save_png(path, self.picture))


def _cells(item: Any) -> list[tuple[np.ndarray, str]]:
    if hasattr(item, "overlays") and hasattr(item, "label"):  # an Explanation: one cell per sample
        return [(overlay, item.label(i)) for i, overlay in enumerate(item.overlays())]
    if isinstance(item, Displayable):
        return [(item._picture(), item._caption())]
    array = np.asarray(item, dtype=np.float32)
    if array.ndim == 4:
        return [cell for image in array for cell in _cells(image)]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise ValueError(f"show takes explanations, results and HWC images, not an array of shape {array.shape}")
    if array.max(initial=0) > 1.0:
        array = array / 255.0
    return [(np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array, "")]


def show(*items: Any, columns: int = 4, cell: int = 224) -> Sheet:
    """A grid of what is given (explanations: every sample's overlay; attack, synthesis and compare results: their
    picture; images: HWC or NHWC arrays), `columns` per row; renders in Jupyter, `.save("grid.png")` elsewhere."""
    if not items:
        raise ValueError("show needs something to show: explanations, results or images")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, not {columns}")
    cells = [cell_ for item in items for cell_ in _cells(item)]
    rows = [cells[k:k + columns] for k in range(0, len(cells), columns)]
    picture = grid([[c[0] for c in row] for row in rows], [[c[1] for c in row] for row in rows], cell=cell)
    return Sheet(picture, f"{len(cells)} picture(s)")
