"""The FastAPI app: a JSON API (documented at /docs by its OpenAPI schema) and the page that drives it. Every
/api call needs the token; uploads are size-limited and read by onnxviz's own guarded reader."""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from .. import registry
from ..api import explain
from ..attacks.classnames import class_names as find_class_names
from ..errors import OnnxvizError, first_line
from ..io import encode_png
from ..method import Method
from ..model import Model, load
from ..options import describe
from ..reading import load_image
from ..targets import Target, softmax
from .jobs import Jobs
from .security import HEADER, confined, token_ok

STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD = 20 * 1024 * 1024


@dataclass
class Served:
    """What the server was started with: models by id, the images folder, the token, the limits."""

    models: dict[str, Path]
    token: str
    images: Path | None = None
    workers: int = 2
    queue: int = 8
    max_upload: int = MAX_UPLOAD
    prepare: Callable[[Path], Model] = load  # how a model file is loaded (the command line's --size, --preprocess...)
    loaded: dict[str, Model] = field(default_factory=dict)


def create_app(served: Served) -> FastAPI:
    app = FastAPI(title="onnxviz", summary="Explain ONNX vision models: predictions, methods, jobs.")
    jobs = Jobs(served.workers, served.queue)
    app.state.jobs = jobs

    def authorized(request: Request) -> None:
        given = request.headers.get(HEADER)
        if given is None and request.method == "GET":
            given = request.query_params.get("token")  # links and EventSource; never for calls that change state
        if not token_ok(served.token, given):
            raise HTTPException(401, f"a valid token is needed: the {HEADER} header (or ?token= on GET), as printed "
                                     "by onnxviz serve")
        origin = request.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
            raise HTTPException(403, f"requests from another origin ({origin}) are refused")

    guarded = [Depends(authorized)]

    @app.exception_handler(OnnxvizError)
    async def refused(request: Request, exc: OnnxvizError) -> JSONResponse:
        return JSONResponse({"detail": first_line(exc)}, status_code=400)

    def model(model_id: str) -> Model:
        if model_id not in served.models:
            raise HTTPException(404, f"no model {model_id!r}; served: {', '.join(served.models)}")
        if model_id not in served.loaded:
            served.loaded[model_id] = served.prepare(served.models[model_id])
        return served.loaded[model_id]

    async def image_bytes(upload: UploadFile | None, name: str | None) -> tuple[bytes, str]:
        if upload is not None:
            data = await upload.read(served.max_upload + 1)
            if len(data) > served.max_upload:
                raise HTTPException(413, f"the upload is over the {served.max_upload // 2 ** 20} MiB limit")
            return data, upload.filename or "upload"
        if name:
            if served.images is None:
                raise HTTPException(400, "no --images folder is served: upload the image instead")
            path = confined(served.images, name)
            return path.read_bytes(), path.name
        raise HTTPException(400, "give an image: a file upload (field file) or a name from the images folder")

    def batch(m: Model, data: bytes, name: str) -> np.ndarray:
        suffix = Path(name).suffix.lower() if Path(name).suffix else ".png"
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"image{suffix}"
            path.write_bytes(data)
            return load_image(str(path), m)  # the guarded reader: bombs, non-images, odd modes

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get("/api/models", dependencies=guarded)
    def models() -> list[dict[str, Any]]:
        return [{"id": k, "file": v.name} for k, v in served.models.items()]

    @app.get("/api/models/{model_id}", dependencies=guarded)
    def facts(model_id: str) -> dict[str, Any]:
        m = model(model_id)
        return {"id": model_id, "name": m.name, "input": {"name": m.input.name, "shape": list(m.input.shape),
                                                           "layout": m.input.layout},
                "outputs": m.outputs, "preprocessing": json.loads(m.preprocessing.to_json()),
                "default_layer": m.default_layer.name if m.default_layer else None,
                "layers": [{"name": layer.name, "op": layer.op_type, "shape": list(layer.shape),
                            "layout": layer.layout} for layer in m.layers]}

    @app.get("/api/methods", dependencies=guarded)
    def methods() -> list[dict[str, Any]]:
        found = []
        for name in registry.names(Method):
            cls = registry.get(name)
            found.append({"name": name, "family": getattr(cls, "family", ""), "requires": getattr(cls, "requires", ""),
                          "options": [{"name": o[0], "type": o[1], "default": _plain(o[2]), "help": o[3]}
                                      for o in describe(cls.Options)] if getattr(cls, "Options", None) else []})
        return found

    @app.get("/api/images", dependencies=guarded)
    def images() -> list[str]:
        if served.images is None:
            return []
        root = served.images.resolve()
        return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                      if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp")
                      and p.resolve().is_relative_to(root))

    @app.post("/api/models/{model_id}/predict", dependencies=guarded)
    async def predict(model_id: str, file: UploadFile | None = File(None),  # noqa: B008
                      image: str | None = Form(None)) -> list[dict[str, Any]]:
        m = model(model_id)
        data, name = await image_bytes(file, image)
        x = batch(m, data, name)
        tensor, is_softmax = m.score_tensor(Target())
        (out,) = m.run(x, (tensor,))
        scores = out.reshape(len(out), -1)[0].astype(np.float64)
        probabilities = scores if is_softmax else softmax(scores[None])[0]
        names = find_class_names(None, m.metadata)
        top = np.argsort(-probabilities)[:5]
        return [{"class": int(c), "name": names[c] if names and c < len(names) else None,
                 "probability": float(probabilities[c])} for c in top]

    @app.post("/api/models/{model_id}/explain", dependencies=guarded)
    async def explain_job(model_id: str, method: str = Form(...), file: UploadFile | None = File(None),  # noqa: B008
                          image: str | None = Form(None), options: str = Form("{}"), target: str | None = Form(None),
                          layer: str | None = Form(None)) -> dict[str, Any]:
        m = model(model_id)
        registry.get(method)  # an unknown method is refused now, with the choices
        try:
            chosen = json.loads(options)
        except json.JSONDecodeError:
            raise HTTPException(400, "options must be a JSON object, e.g. {\"n_masks\": 500}") from None
        if not isinstance(chosen, dict):
            raise HTTPException(400, "options must be a JSON object")
        data, name = await image_bytes(file, image)
        x = batch(m, data, name)
        key = (m.hash, hashlib.sha256(data).hexdigest(),
               method, json.dumps(chosen, sort_keys=True), target, layer)

        def work() -> dict[str, Any]:
            ex = explain(m, x, method, target=target or None, layer=layer or None, progress=False, **chosen)
            return {"overlay": base64.b64encode(encode_png(ex.figure(0))).decode("ascii"), "label": ex.label(0),
                    "backend": ex.backend, "seconds": ex.timings.get("method")}

        return jobs.submit(key, work).public()

    @app.get("/api/jobs/{job_id}", dependencies=guarded)
    def job(job_id: str) -> dict[str, Any]:
        return _job(jobs, job_id).public()

    @app.post("/api/jobs/{job_id}/cancel", dependencies=guarded)
    def cancel(job_id: str) -> dict[str, Any]:
        found = _job(jobs, job_id)
        jobs.cancel(found)
        return found.public()

    @app.get("/api/jobs/{job_id}/events", dependencies=guarded)
    def events(job_id: str) -> StreamingResponse:
        found = _job(jobs, job_id)

        def stream():
            last = None
            while True:
                finished = found.done.wait(0.25)
                state = (found.status, found.ticks)
                if state != last:
                    yield f"data: {json.dumps({'status': found.status, 'ticks': found.ticks})}\n\n"
                    last = state
                if finished:
                    break

        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.on_event("shutdown")
    def stop() -> None:
        jobs.shutdown()

    return app


def _job(jobs: Jobs, job_id: str):
    found = jobs.jobs.get(job_id)
    if found is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return found


def _plain(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
