"""Routes for models, methods, images, predictions and explanation jobs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from .. import registry, resolve
from ..api import explain
from ..attacks.classnames import class_names as find_class_names
from ..inspect.receptive import receptive_fields
from ..inspect.summary import facts as model_facts
from ..method import Method
from ..model import Model
from ..options import describe
from ..targets import Target, softmax
from .jobs import Jobs
from .payload import explanation_payload
from .state import Served, model_input


def top5(m: Model, x: np.ndarray) -> list[dict[str, Any]]:
    """The five most probable classes of the first image, with names when the model (or its metadata) has them."""
    tensor, is_softmax = m.score_tensor(Target())
    (out,) = m.run(x, (tensor,))
    scores = out.reshape(len(out), -1)[0].astype(np.float64)
    probabilities = scores if is_softmax else softmax(scores[None])[0]
    names = find_class_names(None, m.metadata)
    top = np.argsort(-probabilities)[:5]
    return [{"class": int(c), "name": names[c] if names and c < len(names) else None,
             "probability": float(probabilities[c])} for c in top]


def served_facts(m: Model) -> list[tuple[str, str]]:
    """What `onnxviz info` says of the model, less the torch row (the server converts on a method's first use)."""
    return [(k, v) for k, v in model_facts(m, with_torch=False) if k != "torch"]


def parse_options(text: str) -> dict[str, Any]:
    try:
        chosen = json.loads(text)
    except json.JSONDecodeError:
        raise HTTPException(400, "options must be a JSON object, e.g. {\"n_masks\": 500}") from None
    if not isinstance(chosen, dict):
        raise HTTPException(400, "options must be a JSON object")
    return chosen


def router(served: Served, jobs: Jobs) -> APIRouter:
    api = APIRouter()

    @api.get("/api/models")
    def models() -> list[dict[str, Any]]:
        return [{"id": k, "file": v.name} for k, v in served.models.items()]

    @api.get("/api/models/{model_id}")
    def facts(model_id: str) -> dict[str, Any]:
        m = served.model(model_id)
        fields = receptive_fields(m.proto)
        return {"id": model_id, "name": m.name, "input": {"name": m.input.name, "shape": list(m.input.shape),
                                                           "layout": m.input.layout},
                "outputs": m.outputs, "preprocessing": json.loads(m.preprocessing.to_json()),
                "facts": [list(row) for row in served_facts(m)],
                "default_layer": m.default_layer.name if m.default_layer else None,
                "layers": [{"name": layer.name, "op": layer.op_type, "shape": list(layer.shape),
                            "layout": layer.layout,
                            "field": str(fields[layer.name]) if layer.name in fields else None}
                           for layer in m.layers]}

    @api.get("/api/methods")
    def methods() -> list[dict[str, Any]]:
        found = []
        for name in registry.names(Method):
            cls = registry.get(name)
            found.append({"name": name, "family": getattr(cls, "family", ""), "requires": getattr(cls, "requires", ""),
                          "needs_layer": bool(getattr(cls, "needs_layer", False)),
                          "options": [{"name": o[0], "type": o[1], "default": _plain(o[2]), "help": o[3]}
                                      for o in describe(cls.Options)] if getattr(cls, "Options", None) else []})
        return found

    @api.get("/api/limits")
    def limits() -> dict[str, Any]:
        return {"max_upload_bytes": served.max_upload, "max_steps": served.limits.max_steps,
                "max_mask_pixels": served.limits.max_mask_pixels, "workers": served.workers, "queue": served.queue}

    @api.get("/api/images")
    def images() -> list[str]:
        return served.image_names()

    @api.post("/api/models/{model_id}/predict")
    async def predict(model_id: str, file: UploadFile | None = File(None),  # noqa: B008
                      image: str | None = Form(None)) -> list[dict[str, Any]]:
        m = served.model(model_id)
        data, name = await served.image_bytes(file, image)
        return await run_in_threadpool(lambda: top5(m, model_input(m, data, name)))

    @api.post("/api/models/{model_id}/explain")
    async def explain_job(model_id: str, method: str = Form(...), file: UploadFile | None = File(None),  # noqa: B008
                          image: str | None = Form(None), options: str = Form("{}"), target: str | None = Form(None),
                          layer: str | None = Form(None)) -> dict[str, Any]:
        m = served.model(model_id)
        cls = registry.get(method)  # an unknown method is refused now, with the choices
        chosen = parse_options(options)
        served.limits.check(method, resolve.options(cls, chosen), m.input_size)  # bad options refused now too
        data, name = await served.image_bytes(file, image)
        x = model_input(m, data, name)
        key = ("explain", m.hash, hashlib.sha256(data).hexdigest(),
               method, json.dumps(chosen, sort_keys=True), target, layer)

        def work() -> tuple[dict[str, Any], Any]:
            m = served.worker_model(model_id)
            ex = explain(m, x, method, target=target or None, layer=layer or None, progress=False, **chosen)
            return {**explanation_payload(ex), "model": model_id, "image_name": name}, ex

        return jobs.submit(key, work).public()

    return api


def _plain(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
