"""Export what is on screen: the finished explanation jobs the page shows, as the self-contained HTML report (the
same page `onnxviz report` writes), one section per model and image with every method's overlay beside the input."""

from __future__ import annotations

from fastapi import APIRouter, Body, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from ..explanation import Explanation
from ..inspect.summary import facts as model_facts
from ..viz.pages import assumptions_of, render
from .explain_routes import top5
from .jobs import Jobs
from .state import Served


def report_page(served: Served, shown: list[tuple[str, str, Explanation]]) -> str:
    """The page for (model id, image name, explanation) triples, in the order given."""
    groups: dict[tuple[str, str, str], list[Explanation]] = {}
    for model_id, image, ex in shown:
        groups.setdefault((model_id, image, ex.inputs.tobytes().hex()[:64]), []).append(ex)
    models = list(dict.fromkeys(model_id for model_id, _, _ in shown))
    facts = [(f"{model_id} · {k}" if len(models) > 1 else k, v) for model_id in models
             for k, v in model_facts(served.model(model_id), with_torch=False) if k != "torch"]
    sections = []
    for (model_id, image, _), explanations in groups.items():
        top = top5(served.model(model_id), explanations[0].inputs[:1])
        figures = [(explanations[0].images()[0], f"{image} (input)")]
        figures += [(ex.figure(0), ex.label(0).replace(" | ", ": ")) for ex in explanations]
        sections.append({"name": f"{model_id}: {image}" if len(models) > 1 else image,
                         "top": [(f"{p['class']} {p['name']}" if p["name"] else str(p["class"]), p["probability"])
                                 for p in top],
                         "figures": figures, "explained": ""})
    every = [ex for _, _, ex in shown]
    return render("report.html", model_name=", ".join(models), facts=facts, explanations=every, metrics={},
                  metric_names=[], sections=sections, assumptions=assumptions_of(every))


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
