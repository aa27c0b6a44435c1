"""The FastAPI app: a JSON API (documented at /docs by its OpenAPI schema) and the page that drives it. Every
/api call needs the token; uploads are size-limited and read by onnxviz's own guarded reader."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from ..errors import OnnxvizError, first_line
from . import explain_routes, export, layer_routes
from .jobs import Job, Jobs
from .limits import WorkLimits
from .security import HEADER, token_ok
from .state import Served

__all__ = ["Served", "WorkLimits", "create_app"]

STATIC = Path(__file__).resolve().parent / "static"


def create_app(served: Served) -> FastAPI:
    jobs = Jobs(served.workers, served.queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.shutdown()  # a running job stops at its next checkpoint

    app = FastAPI(title="onnxviz", summary="Explain ONNX vision models: predictions, methods, layers, jobs.",
                  lifespan=lifespan)
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

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A missing or mistyped field in one line (FastAPI's default is a list of objects)."""
        said = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"detail": said, "errors": jsonable_encoder(exc.errors())}, status_code=422)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (STATIC / "index.html").read_text(encoding="utf-8")

    app.include_router(explain_routes.router(served, jobs), dependencies=guarded)
    app.include_router(layer_routes.router(served, jobs), dependencies=guarded)
    app.include_router(export.router(served, jobs), dependencies=guarded)

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

    return app


def _job(jobs: Jobs, job_id: str) -> Job:
    found = jobs.jobs.get(job_id)
    if found is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return found
