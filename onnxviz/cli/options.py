"""Options shared by the commands, declared once: output folder, image reading, model loading and limits,
quiet, method choice and method options."""

from __future__ import annotations

import functools
from dataclasses import fields, replace
from pathlib import Path

import click

from .. import registry
from ..errors import OptionError, OutputError
from ..guard.limits import Limits, parse_size
from ..io import ensure_writable
from ..model import DEFAULT_PARITY_TOLERANCE, load
from ..preprocess import PRESETS, Request
from ..staging import staged
from ..targets import Target
from ..targets.spec import KIND_WORDS

_OVERWRITE = "onnxviz.overwrite"


def _remember_overwrite(ctx: click.Context, param, value: bool) -> bool:
    ctx.meta[_OVERWRITE] = value
    return value


def _writable(ctx: click.Context, param, value):
    if value is None:
        return value
    folder = ensure_writable(value)
    existing = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    if existing and not ctx.meta.get(_OVERWRITE):
        shown = ", ".join(existing[:4]) + (", ..." if len(existing) > 4 else "")
        raise OutputError(f"the output folder {folder} already holds {len(existing)} entries ({shown}); pass "
                          "--overwrite to write over them, or choose another --out")
    return str(Path(folder))


def out_option(fn):
    """--out (checked writable, and empty unless --overwrite, while the command line is read: before any
    computation) and --overwrite. The command's files appear in --out together when it succeeds, or not at all
    (staging.staged)."""

    @functools.wraps(fn)
    def all_or_nothing(*args, out: str, **kwargs):
        with staged(out):
            return fn(*args, out=out, **kwargs)

    wrapped = click.option("--out", default="out", show_default=True, type=click.Path(file_okay=False),
                           callback=_writable, help="Output folder (checked before anything is computed).")(
        all_or_nothing)
    return click.option("--overwrite", is_flag=True, is_eager=True, expose_value=False, callback=_remember_overwrite,
                        help="Write into an --out folder that already holds files (same names are replaced).")(wrapped)


def image_options(fn):
    """--preprocess, --mean, --std and --size, turned into `preprocessing` (a preprocess.Request): how images are
    read for the model, on every command that reads images."""

    @click.option("--preprocess", type=click.Choice(list(PRESETS)),
                  help="Preprocessing preset (default: the model's metadata, else imagenet for RGB, unit for grey).")
    @click.option("--mean", help="Per-channel mean, comma-separated (over the preset), e.g. 0.485,0.456,0.406.")
    @click.option("--std", help="Per-channel std, comma-separated (over the preset), e.g. 0.229,0.224,0.225.")
    @click.option("--size", metavar="HxW", help="Input size for models whose graph leaves it open, e.g. 48x192 "
                                                "(default: the model's metadata, else 224x224, with a warning).")
    @functools.wraps(fn)
    def wrapper(*args, preprocess, mean, std, size, **kwargs):
        return fn(*args, preprocessing=Request.parse(preprocess, mean, std, size), **kwargs)

    return wrapper


def limits_options(fn):
    """--allow-domain, --max-tensor-size, --load-timeout, --no-isolate, --max-memory and --run-timeout, turned
    into `limits` (a Limits)."""

    @click.option("--allow-domain", multiple=True, metavar="DOMAIN",
                  help="Accept operators of this domain (e.g. com.microsoft); only standard ONNX ops by default.")
    @click.option("--max-tensor-size", default="4GB", show_default=True, metavar="SIZE",
                  help="Refuse models with a tensor larger than this (declared, or computed by shape inference).")
    @click.option("--load-timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
                  metavar="SECONDS", help="Time allowed to open the model in the isolated loader process.")
    @click.option("--no-isolate", is_flag=True, help="Open the model in this process (no crash isolation).")
    @click.option("--max-memory", default="4GB", show_default=True, metavar="SIZE",
                  help="Memory one pass of the model may add to this process (onnxruntime or torch).")
    @click.option("--run-timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
                  metavar="SECONDS", help="Time allowed for one onnxruntime pass (an endless Loop is stopped).")
    @functools.wraps(fn)
    def wrapper(*args, allow_domain, max_tensor_size, load_timeout, no_isolate, max_memory, run_timeout, **kwargs):
        limits = Limits(max_tensor_bytes=parse_size(max_tensor_size), allowed_domains=frozenset(allow_domain),
                        load_timeout=load_timeout, isolate=not no_isolate, max_run_memory_bytes=parse_size(max_memory),
                        run_timeout=run_timeout)
        return fn(*args, limits=limits, **kwargs)

    return wrapper


def model_options(fn):
    """--layout, --device, --parity-tol, --no-normalize, the limits and the image options, turned into a loaded
    Model that reads images with the preprocessing asked for."""

    @click.option("--layout", type=click.Choice(["NCHW", "NHWC"]), help="Override the detected input layout.")
    @click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
                  help="cuda needs onnxruntime-gpu (and a CUDA build of torch for gradient methods).")
    @click.option("--parity-tol", type=float, default=DEFAULT_PARITY_TOLERANCE, show_default=True,
                  help="Largest accepted onnxruntime-vs-torch difference, relative to max(1, |output|).")
    @click.option("--no-normalize", is_flag=True, help="Use the graph as stored (skip onnxslim).")
    @limits_options
    @image_options
    @functools.wraps(fn)
    def wrapper(model: str, layout, device, parity_tol, no_normalize, limits, preprocessing, **kwargs):
        loaded = load(model, layout=layout, device=device, parity_tolerance=parity_tol, normalize=not no_normalize,
                      limits=limits, size=preprocessing.size)  # an open input size is probed at --size
        loaded.use_request(preprocessing)
        return fn(loaded, **kwargs)

    return wrapper


def route_options(pairs: tuple[tuple[str, str], ...], names: list[str]) -> dict[str, dict[str, str]]:
    """`-o KEY VALUE` goes to every chosen method that has KEY; `-o METHOD.KEY VALUE` to that method only."""
    routed: dict[str, dict[str, str]] = {n: {} for n in names}
    for key, value in pairs:
        method, _, opt = key.rpartition(".")
        if method:
            if method not in routed:
                raise OptionError(f"-o {key}: {method} is not among the chosen methods ({', '.join(names)})")
            routed[method][opt] = value
            continue
        takers = [n for n in names if opt in {f.name for f in fields(registry.get(n).Options)}]
        if not takers:
            raise OptionError(f"-o {key}: none of {', '.join(names)} has an option {key!r}; "
                              "see `onnxviz methods NAME`")
        for n in takers:
            routed[n][opt] = value
    return routed


TARGET_HELP = ("Class index, top1, softmax:281, one index per image (281,282), or a segmentation region: 7@predicted, "
               "7@box:x0,y0,x1,y1 (output pixels), 7@photo:x0,y0,x1,y1 (pixels of the original image), "
               "7@mask:road.png. Detectors: det:0 (the best detection), box:x0,y0,x1,y1[@CLASS] (input pixels), "
               "class:K@all. Embeddings: similar:REF.png (or .npy). Any output element: value:K. A unit inside: "
               "unit:LAYER:C, unit:LAYER:C:max, unit:LAYER:C:Y:X.")


def parse_target(spec: str | None, output: str | None = None, decoder: str | None = None,
                 confidence: float | None = None):
    """--target (one spec, or one class per image separated by commas) with --output, --boxes and --confidence
    applied; None stays None (the command's default)."""
    if spec is None:
        return None
    words = spec.split(":")[:2]
    if "," in spec and "@" not in spec and not set(words) & set(KIND_WORDS):  # one class per image
        targets = [Target.parse(s) for s in spec.split(",")]
        return [replace(t, output=output) for t in targets] if output else targets
    target = Target.parse(spec)
    target = replace(target, output=output) if output else target
    target = replace(target, confidence=confidence) if confidence is not None else target
    return replace(target, decoder=decoder) if decoder else target


def target_options(default: str | None = "top1", help_default: str = ""):
    """--target, --output and --boxes, turned into one `target` argument (a spec, a list of them, or None)."""

    def decorate(fn):
        @click.option("--target", "target_spec", default=default, show_default=default is not None,
                      help=help_default + TARGET_HELP)
        @click.option("--output", "output_name", help="Which output to explain (needed when the model has several).")
        @click.option("--boxes", "decoder", metavar="DECODER[:TENSORS]",
                      help="How to read a detector's outputs when their shapes do not say: yolov8, yolov5, yolox, "
                           "boxes_scores or nms, optionally with the tensors, e.g. yolov8:output0.")
        @click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), metavar="SCORE",
                      help="Detectors: the score a candidate needs to count as a detection (default 0.25).")
        @functools.wraps(fn)
        def wrapper(*args, target_spec, output_name, decoder, confidence, **kwargs):
            return fn(*args, target=parse_target(target_spec, output_name, decoder, confidence), **kwargs)

        return wrapper

    return decorate


def cell_size(text: str) -> int | str:
    """--cells: "auto" or a whole number of pixels."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise OptionError(f"--cells takes a number of pixels (1, 8, 16) or auto, not {text!r}") from None
