"""One self-contained HTML page: the model, every input with its predictions, every method's overlay,
and the faithfulness metrics. Every picture is embedded; every string that comes from the model or a file
name is escaped."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..explanation import Explanation
from ..targets import softmax
from .pages import assumptions_of, render


def report_html(model_name: str, facts: Sequence[tuple[str, str]], explanations: Sequence[Explanation],
                names: Sequence[str], logits: np.ndarray, class_names: list[str] | None = None,
                metrics: dict[str, dict[str, float]] | None = None) -> str:
    """The page as a string. `logits` (N, classes) give the top-5 per image; `metrics` method -> name -> value."""
    def label(c: int) -> str:
        return f"{c} {class_names[c]}" if class_names and c < len(class_names) else str(c)

    probs = softmax(logits.astype(np.float64))
    images = explanations[0].images()
    sections = []
    for i, name in enumerate(names):
        explained = explanations[0].extras.get("explained")  # a detection, a similarity, a unit: no top-5 classes
        top = [] if explained else [(label(int(c)), float(probs[i, c])) for c in np.argsort(-probs[i])[:5]]
        sections.append(section(name, images[i], explanations, i, top, explained[i] if explained else ""))
    return page(model_name, facts, explanations, sections, metrics)


def section(name: str, image: np.ndarray, explanations: Sequence[Explanation], i: int,
            top: Sequence[tuple[str, float]], explained: str = "") -> dict:
    """One input's section: its top-5 (or what was explained), the input, then every explanation's overlay of
    sample `i`."""
    figures = [(image, f"{name} (input)")]
    figures += [(ex.figure(i), ex.label(i).replace(" | ", ": ")) for ex in explanations]
    return {"name": name, "top": list(top), "figures": figures, "explained": explained}


def page(model_name: str, facts: Sequence[tuple[str, str]], explanations: Sequence[Explanation],
         sections: Sequence[dict], metrics: dict[str, dict[str, float]] | None = None) -> str:
    """The report page from its parts: the facts, the methods' table, the sections."""
    metrics = metrics or {}
    return render("report.html", model_name=model_name, facts=facts, explanations=explanations, metrics=metrics,
                  metric_names=list(next(iter(metrics.values()), {})), sections=sections,
                  assumptions=assumptions_of(explanations))
