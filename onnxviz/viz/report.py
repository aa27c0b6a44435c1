"""Writing a run's pictures: one overlay per (image, method), a grid of everything, arrays, and index.html."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..explanation import Explanation
from ..io import encode_png, safe_filename, write_bytes_atomic
from .colorbar import HEIGHT, legend
from .grid import grid
from .pages import assumptions_of, render


def _stems(names: Sequence[str]) -> list[str]:
    """Safe, distinct file stems: a/cat.png and b/cat.png become cat and cat_2."""
    stems, seen = [], set()
    for n in names:
        base = stem = safe_filename(Path(n).stem, "image")
        k = 2
        while stem in seen:
            stem, k = f"{base}_{k}", k + 1
        seen.add(stem)
        stems.append(stem)
    return stems


def summary_grid(explanations: Sequence[Explanation], names: Sequence[str], cell: int = 224, pad: int = 4):
    """Rows = images, columns = the input then one overlay per method; under each method's column, its colour key
    (each map is scaled on its own: the key says what the ends mean)."""
    images = explanations[0].images()
    overlays = [ex.overlays() for ex in explanations]
    cells, captions = [], []
    for i, name in enumerate(names):
        first = explanations[0]
        cells.append([images[i], *(drawn[i] for drawn in overlays)])
        captions.append([f"{name}: pred {int(first.predictions[i])}", *(ex.label(i) for ex in explanations)])
    picture = grid(cells, captions, cell=cell, pad=pad)
    keys = np.ones((HEIGHT, picture.shape[1], 3), np.float32)
    for k, ex in enumerate(explanations, start=1):
        keys[:, k * (cell + pad) : k * (cell + pad) + cell] = legend(cell, ex.drawn()[2])
    return np.vstack([picture, np.ones((pad, picture.shape[1], 3), np.float32), keys])


def write_run(out: str | Path, explanations: Sequence[Explanation], names: Sequence[str], model_name: str,
              arrays: bool = True) -> list[Path]:
    """Render everything in memory first, then write each file atomically (an interrupted run leaves none
    half-written)."""
    out = Path(out)
    files: dict[Path, bytes] = {}
    stems = _stems(names)
    for ex in explanations:
        for i, stem in enumerate(stems):
            files[out / f"{stem}_{safe_filename(ex.method)}.png"] = encode_png(ex.figure(i))
    grid_png = encode_png(summary_grid(explanations, [Path(n).name for n in names]))
    files[out / "grid.png"] = grid_png
    files[out / "index.html"] = render("index.html", explanations=explanations, model_name=model_name,
                                       names=[Path(n).name for n in names], grid=grid_png,
                                       assumptions=assumptions_of(explanations)).encode()
    written = [write_bytes_atomic(path, data) for path, data in files.items()]
    if arrays:
        written += [ex.save(out / f"{safe_filename(ex.method)}.npz") for ex in explanations]
    return written
