"""Routes for one layer: its feature maps for an image and its kernels (answered at once), the patches over --images
that excite its channels most and a channel's visualization by activation maximization (jobs: they take a while)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from .. import resolve
from ..errors import OptionError
from ..inspect.features import feature_grid, feature_maps
from ..inspect.kernels import kernel_grid
from ..inspect.patches import parse_channels, patch_grid, top_patches
from ..synthesis import Synthesis, synthesize
from .jobs import Jobs
from .payload import png64
from .state import Served, model_input

MAX_CHANNELS = 64  # feature maps and top-patch rows shown at once


def router(served: Served, jobs: Jobs) -> APIRouter:
    api = APIRouter()

    @api.post("/api/models/{model_id}/features")
    async def features(model_id: str, layer: str = Form(...), top: int = Form(16, ge=1, le=MAX_CHANNELS),
                       file: UploadFile | None = File(None), image: str | None = Form(None),  # noqa: B008
                       blend: bool = Form(False)) -> dict[str, Any]:
        m = served.model(model_id)
        data, name = await served.image_bytes(file, image)

        def draw() -> dict[str, Any]:
            x = model_input(m, data, name)
            found = feature_maps(m, x, layer, top)
            picture = feature_grid(found, m.preprocessing.invert(x[0]) if blend else None)
            return {"layer": found["layer"], "channels": [int(c) for c in found["channels"]], "picture": png64(picture)}

        return await run_in_threadpool(draw)

    @api.get("/api/models/{model_id}/kernels")
    def kernels(model_id: str, layer: str) -> dict[str, Any]:
        picture, what = kernel_grid(served.model(model_id), layer)
        return {"what": what, "picture": png64(picture)}

    @api.post("/api/models/{model_id}/patches")
    def patches(model_id: str, layer: str = Form(...), channels: str = Form("0-7"),
                k: int = Form(6, ge=1, le=32)) -> dict[str, Any]:
        m = served.model(model_id)
        chosen = parse_channels(channels) or []
        if len(chosen) > MAX_CHANNELS:
            raise OptionError(f"at most {MAX_CHANNELS} channels at once, not {len(chosen)}")
        paths = served.image_paths()
        name = m.layer(layer).name

        def work() -> tuple[dict[str, Any], Any]:
            m = served.worker_model(model_id)
            hits, rf, found = top_patches(m, paths, name, chosen, k, progress=False)
            picture = png64(patch_grid(hits, paths))
            return {"model": model_id, "layer": found, "field": str(rf), "picture": picture}, None

        return jobs.submit(("patches", m.hash, name, tuple(chosen), k, tuple(paths)), work, "patches").public()

    @api.post("/api/models/{model_id}/visualize")
    def visualize(model_id: str, layer: str = Form(...), channel: int = Form(..., ge=0),
                  steps: int = Form(128, ge=1)) -> dict[str, Any]:
        m = served.model(model_id)
        served.limits.check("maximize", resolve.options(resolve.plugin("maximize", Synthesis)[0], {"steps": steps}),
                            m.input_size)
        name = m.layer(layer).name

        def work() -> tuple[dict[str, Any], Any]:
            m = served.worker_model(model_id)
            result = synthesize(m, "maximize", f"{name}:{channel}", steps=steps, progress=False)
            return {"model": model_id, "layer": name, "channel": channel, "caption": result.captions[0],
                    "picture": png64(result.figure())}, result

        return jobs.submit(("visualize", m.hash, name, channel, steps), work, "visualize").public()

    return api
