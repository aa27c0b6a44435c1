"""Every HTML page is a Jinja2 template in `onnxviz/templates/` sharing one stylesheet; pictures are embedded, so
each page is a single self-contained file. Autoescaping is on: strings from models and file names are escaped
by the template engine, never by hand. Jinja2 is the ecosystem's templating library (autoescape, inheritance)."""

from __future__ import annotations

import base64
from functools import lru_cache

import jinja2
import numpy as np

from ..io import encode_png


def png_data(picture: np.ndarray | bytes) -> str:
    """A data: URI of a picture (an RGB array, or PNG bytes already encoded)."""
    data = picture if isinstance(picture, bytes) else encode_png(picture)
    return "data:image/png;base64," + base64.b64encode(data).decode()


def assumptions_of(explanations) -> list[str]:
    """Every guess the explanations on a page were made under (extras["assumptions"]), once each."""
    return list(dict.fromkeys(a for ex in explanations for a in ex.extras.get("assumptions", [])))


def cell(value) -> str:
    """A table cell's text: floats to 3 significant digits, None as empty."""
    return f"{value:.3g}" if isinstance(value, float) else "" if value is None else str(value)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("onnxviz", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(png_data=png_data, cell=cell)
    return env


def render(template: str, **values) -> str:
    """The page `template` (e.g. "report.html") filled with `values`."""
    return environment().get_template(template).render(**values)
