"""Drawing a run: `write_run` (overlays, grid, index.html) for N images of the bundled digits model, saliency and
Grad-CAM. Per-image time must stay flat as N grows (each explanation inverts its preprocessing and normalizes its
maps once, not once per picture).

    python benchmarks/bench_drawing.py
"""

from __future__ import annotations

import tempfile
import time

from common import best_of  # noqa: F401  (puts the repository first on sys.path)

import onnxviz
from onnxviz.viz.report import write_run


def main() -> None:
    try:
        from onnxviz.bundled import demo_images, demo_model_path
    except ImportError:  # before the architecture issue (to time the old code the same way)
        from onnxviz.demo import demo_images, demo_model_path

    model = onnxviz.load(demo_model_path())
    paths = demo_images()
    for n in (16, 64, 256):
        names = [str(paths[i % len(paths)]) for i in range(n)]
        x = onnxviz.load_image(names, model)
        results = [onnxviz.explain(model, x, m, progress=False) for m in ("saliency", "gradcam")]
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            write_run(out, results, names, model.name, arrays=False)
            seconds = time.perf_counter() - start
        print(f"write_run  {n:>4} images x 2 methods  {seconds:7.2f} s  {1000 * seconds / n:7.1f} ms per image")


if __name__ == "__main__":
    main()
