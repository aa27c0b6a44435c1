"""What the server was started with and what it has loaded: models by id, the images folder, the token, the limits;
and the two readers every route shares (a model by id, an image from an upload or a served name)."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fastapi import HTTPException, UploadFile

from ..imagefiles import images_in
from ..model import Model, load
from ..reading import load_image
from .limits import WorkLimits
from .security import confined

MAX_UPLOAD = 20 * 1024 * 1024


@dataclass
class Served:
    """The server's configuration and its loaded models (each loaded once, on first use, and shared by the workers)."""

    models: dict[str, Path]
    token: str
    images: Path | None = None
    workers: int = 2
    queue: int = 8
    max_upload: int = MAX_UPLOAD
    limits: WorkLimits = field(default_factory=WorkLimits)
    prepare: Callable[[Path], Model] = load  # how a model file is loaded (the command line's --size, --preprocess...)
    loaded: dict[str, Model] = field(default_factory=dict)
    loading: threading.Lock = field(default_factory=threading.Lock)  # two first requests load a model once
    own: threading.local = field(default_factory=threading.local)  # each worker thread's models
    claimed: set[str] = field(default_factory=set)  # models whose shared instance a worker has taken

    def model(self, model_id: str) -> Model:
        if model_id not in self.models:
            raise HTTPException(404, f"no model {model_id!r}; served: {', '.join(self.models)}")
        with self.loading:
            if model_id not in self.loaded:
                self.loaded[model_id] = self.prepare(self.models[model_id])
        return self.loaded[model_id]

    def worker_model(self, model_id: str) -> Model:
        """The model as this worker thread's jobs use it: one per worker, reused by its later jobs. A converted graph
        keeps state between passes (DeepLIFT's reference, the rule views), so two jobs never share one; the first
        worker takes the instance the requests use (onnxruntime sessions are safe to share), the others load their
        own."""
        mine: dict[str, Model] = self.own.__dict__.setdefault("models", {})
        if model_id not in mine:
            shared = self.model(model_id)
            with self.loading:
                first = model_id not in self.claimed
                self.claimed.add(model_id)
            mine[model_id] = shared if first else self.prepare(self.models[model_id])
        return mine[model_id]

    def image_names(self) -> list[str]:
        if self.images is None:
            return []
        root = self.images.resolve()
        return [str(p.relative_to(root)) for p in images_in(root) if p.resolve().is_relative_to(root)]

    def image_paths(self) -> list[Path]:
        if self.images is None:
            raise HTTPException(400, "no --images folder is served: start onnxviz serve with --images DIR")
        return [confined(self.images, name) for name in self.image_names()]

    async def image_bytes(self, upload: UploadFile | None, name: str | None) -> tuple[bytes, str]:
        """(the image file's bytes, its name) from an upload (size-limited) or a name inside --images."""
        if upload is not None:
            data = await upload.read(self.max_upload + 1)
            if len(data) > self.max_upload:
                raise HTTPException(413, f"the upload is over the {self.max_upload // 2 ** 20} MiB limit")
            return data, Path(upload.filename or "upload").name
        if name:
            if self.images is None:
                raise HTTPException(400, "no --images folder is served: upload the image instead")
            path = confined(self.images, name)
            return path.read_bytes(), path.name
        raise HTTPException(400, "give an image: a file upload (field file) or a name from the images folder")


def model_input(model: Model, data: bytes, name: str) -> np.ndarray:
    """The batch of one the model sees, read by onnxviz's guarded reader (bombs, non-images, odd modes refused)."""
    suffix = Path(name).suffix.lower() or ".png"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"image{suffix}"
        path.write_bytes(data)
        return load_image(str(path), model)
