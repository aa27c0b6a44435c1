"""One self-contained HTML page: the model, every input with its predictions, every method's overlay,
and the faithfulness metrics. Every picture is embedded; every string that comes from the model or a file
name is escaped."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

import numpy as np

from ..explanation import Explanation
from ..io import encode_png
from ..targets import softmax

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:1em 0}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;
vertical-align:top}figure{display:inline-block;margin:6px;text-align:center}figcaption{font-size:13px}
img{width:224px;height:224px;image-rendering:pixelated}h2{margin-top:2em}.num{text-align:right;white-space:nowrap}"""


def _img(picture: np.ndarray, alt: str) -> str:
    data = base64.b64encode(encode_png(picture)).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _figure(picture: np.ndarray, caption: str) -> str:
    return f"<figure>{_img(picture, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def report_html(model_name: str, facts: Sequence[tuple[str, str]], explanations: Sequence[Explanation],
                names: Sequence[str], logits: np.ndarray, class_names: list[str] | None = None,
                metrics: dict[str, dict[str, float]] | None = None) -> str:
    """The page as a string. `logits` (N, classes) give the top-5 per image; `metrics` method -> name -> value."""
    def label(c: int) -> str:
        return f"{c} {class_names[c]}" if class_names and c < len(class_names) else str(c)

    probs = softmax(logits.astype(np.float64))
    images = explanations[0].images()
    facts_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    method_rows = "".join(
        f"<tr><td>{html.escape(ex.method)}</td><td>{html.escape(ex.backend)}</td><td>{html.escape(ex.layer or '-')}"
        f"</td><td class=num>{ex.timings.get('explain_s', 0):.2f} s</td>"
        + "".join(f"<td class=num>{v:.4g}</td>" for v in (metrics or {}).get(ex.method, {}).values()) + "</tr>"
        for ex in explanations)
    metric_heads = "".join(f"<th>{html.escape(k)}</th>" for k in next(iter((metrics or {}).values()), {}))
    sections = []
    for i, name in enumerate(names):
        top = np.argsort(-probs[i])[:5]
        preds = "".join(f"<tr><td>{html.escape(label(int(c)))}</td><td class=num>{probs[i, c]:.3f}</td></tr>"
                        for c in top)
        figures = [_figure(images[i], f"{name} (input)")]
        figures += [_figure(ex.overlay(i), f"{ex.method}: class {int(ex.targets[i])}") for ex in explanations]
        sections.append(f"<h2>{html.escape(name)}</h2><table><tr><th>top-5</th><th>probability</th></tr>{preds}"
                        f"</table><div>{''.join(figures)}</div>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>onnxviz report: {html.escape(model_name)}</title>
<style>{STYLE}</style></head><body>
<h1>onnxviz report &middot; {html.escape(model_name)}</h1>
<table>{facts_rows}</table>
<table><tr><th>method</th><th>backend</th><th>layer</th><th>time</th>{metric_heads}</tr>{method_rows}</table>
{''.join(sections)}
</body></html>
"""
