"""Jupyter (issue 23): results render themselves (`_repr_png_` / `_repr_html_`), `Model` shows its facts and layer
table with every name escaped, `onnxviz.show` draws a grid, and `docs/quickstart.ipynb` runs start to finish in a
real kernel (nbclient), so it never rots."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import onnxviz
from onnxviz.demo import demo_images

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "quickstart.ipynb"


def _png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(data)))


def test_an_explanation_renders_its_overlays_with_a_caption(digits_model):
    images = [str(p) for p in demo_images()[:3]]
    ex = onnxviz.explain(digits_model, images, "occlusion", window=(8,), progress=False)
    picture = _png(ex._repr_png_())
    assert picture.shape[0] > 3 * 100 and picture.std() > 10  # three rows: input and overlay each
    page = ex._repr_html_()
    assert page.count("<img") == 1 and "occlusion on digits_cnn" in page
    assert base64.b64decode(page.split("base64,")[1].split('"')[0]) == ex._repr_png_()


def test_a_model_shows_its_facts_and_layers_escaped(digits_model, monkeypatch):
    page = digits_model._repr_html_()
    assert "digits_cnn" in page and "NCHW" in page and page.count("<tr>") > len(digits_model.layers)
    monkeypatch.setattr(type(digits_model), "name", property(lambda self: "<script>alert(1)</script>"),
                        raising=False)
    hostile = digits_model._repr_html_()
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile


def test_show_puts_explanations_results_and_images_in_a_grid(digits_model):
    images = [str(p) for p in demo_images()[:2]]
    ex = onnxviz.explain(digits_model, images, "occlusion", window=(8,), progress=False)
    photo = np.random.default_rng(0).random((40, 60, 3))
    sheet = onnxviz.show(ex, photo, (photo * 255).astype(np.uint8), columns=2, cell=64)
    picture = _png(sheet._repr_png_())
    assert picture.shape[1] == 2 * 64 + 4  # two columns
    assert picture.shape[0] >= 2 * 64  # four cells in two rows
    with pytest.raises(ValueError, match="shape"):
        onnxviz.show(np.zeros((3, 4, 5, 6, 7)))
    with pytest.raises(ValueError, match="something to show"):
        onnxviz.show()


def test_the_quickstart_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not any(o.get("output_type") == "error" for cell in code for o in cell.outputs)
    rendered = [o for cell in code for o in cell.outputs if o.get("output_type") == "execute_result"]
    assert len(rendered) == len(code)  # every cell ends in something that draws itself
    assert "text/html" in rendered[0]["data"]  # the model's facts
    assert all("image/png" in o["data"] for o in rendered[1:])
