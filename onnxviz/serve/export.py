"""Export what is on screen: the finished explanation jobs the page shows, as the self-contained HTML report (the
same page `onnxviz report` writes), one section per model and image with every method's overlay beside the input."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Body, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from ..explanation import Explanation
from ..viz.html_report import page, section
from .explain_routes import served_facts, top5
from .jobs import Jobs
from .state import Served


def report_page(served: Served, shown: list[tuple[str, str, Explanation]]) -> str:
    """The page for (model id, image name, explanation) triples, in the order given."""
    groups: dict[tuple[str, str, str], list[Explanation]] = {}
    for model_id, image, ex in shown:  # one section per model and image (its name and its pixels)
        groups.setdefault((model_id, image, hashlib.sha256(ex.inputs.tobytes()).hexdigest()), []).append(ex)
    models = list(dict.fromkeys(model_id for model_id, _, _ in shown))
    facts = [(f"{model_id} · {k}" if len(models) > 1 else k, v) for model_id in models
             for k, v in served_facts(served.model(model_id))]
    sections = []
    for (model_id, image, _), explanations in groups.items():
        top = [(f"{p['class']} {p['name']}" if p["name"] else str(p["class"]), p["probability"])
               for p in top5(served.model(model_id), explanations[0].inputs[:1])]
        sections.append(section(f"{model_id}: {image}" if len(models) > 1 else image, explanations[0].images()[0],
                                explanations, 0, top))
    return page(", ".join(models), facts, [ex for _, _, ex in shown], sections)


class Shown(BaseModel):
    """One result on screen: its job, and the image's name as the page shows it (a cached result keeps the name it
    was first computed under; the same pixels may have another name now)."""

    job: str
    image: str | None = None


def router(served: Served, jobs: Jobs) -> APIRouter:
    api = APIRouter()

    @api.post("/api/report", response_class=HTMLResponse)
    def report(items: list[Shown] = Body(..., embed=True, alias="shown")) -> HTMLResponse:  # noqa: B008
        shown = []
        for item in items:
            job = jobs.jobs.get(item.job)
            if job is None or not isinstance(job.value, Explanation) or job.result is None:
                raise HTTPException(400, f"job {item.job!r} is not a finished explanation (only those are reported)")
            shown.append((str(job.result["model"]), item.image or str(job.result["image_name"]), job.value))
        if not shown:
            raise HTTPException(400, "nothing to export: run an explanation first")
        return HTMLResponse(report_page(served, shown),
                            headers={"Content-Disposition": 'attachment; filename="onnxviz-report.html"'})

    return api
