"""The `onnxviz` command line: each command is a thin call into the Python API."""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path

import click

from . import api, interrupts, registry
from .cli_attack import attack_command
from .cli_batch import batch_command
from .cli_compare import compare_command
from .cli_evaluate import evaluate_command
from .cli_inspect import inspect_group
from .cli_options import echo, image_options, out_option
from .cli_synthesize import synthesize_command
from .errors import NumericWarning, OnnxvizError, OptionError
from .estimate import Estimator
from .explainer import Explainer
from .guard.limits import Limits, parse_size
from .inspect.summary import shape_text
from .model import DEFAULT_PARITY_TOLERANCE, Model, load
from .targets import Target
from .text import printable


class _Printable:
    """A stderr that shows control characters as escapes: click's own errors repeat what was typed."""

    def write(self, text: str) -> int:
        return sys.stderr.write(printable(text))

    def flush(self) -> None:
        sys.stderr.flush()


class Group(click.Group):
    """Turns OnnxvizError into one line on stderr and exit code 1; --debug shows the traceback instead."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OnnxvizError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            raise click.ClickException(str(exc)) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode: bool = True, **extra):
        """click's standalone handling, with every message escaped and a run that a signal reached failing; the
        exit status is raised as SystemExit (standalone) or returned."""
        code = self._status(args, prog_name, complete_var, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _status(self, *args, **extra) -> int:
        try:
            code = super().main(*args, standalone_mode=False, **extra)
            interrupts.check()
            return code if isinstance(code, int) else 0
        except click.ClickException as exc:
            exc.show(file=_Printable())
            return exc.exit_code
        except (click.exceptions.Abort, KeyboardInterrupt, EOFError):
            echo("\nAborted!", err=True)
            return 1
        except click.exceptions.Exit as exc:
            return exc.exit_code


def _show_warning(message, category, filename, lineno, file=None, line=None, debug: bool = False) -> None:
    """Our warnings as one `warning:` line each; other libraries' only with --debug."""
    text = str(message)
    if text.startswith("onnxviz: "):
        echo(f"warning: {text.removeprefix('onnxviz: ')}", err=True)
    elif debug:
        sys.stderr.write(printable(warnings.formatwarning(message, category, filename, lineno, line)))


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="onnxviz")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Explain and visualize vision models from nothing but an ONNX file.

    \b
      onnxviz demo                                   bundled model and images -> out/index.html
      onnxviz info model.onnx                        what the model is and whether torch can run it
      onnxviz layers model.onnx                      tensor names to pass as --layer
      onnxviz methods [NAME]                         what can explain it, with options
      onnxviz explain model.onnx cat.jpg -m gradcam  heatmaps in out/
      onnxviz attack model.onnx cat.jpg -m pgd       adversarial example in out/
      onnxviz synthesize model.onnx --objective class:3   what the model wants to see
      onnxviz inspect kernels model.onnx             conv weights and statistics
      onnxviz batch model.onnx photos/ -m gradcam    a whole folder -> batch/manifest.parquet, resumable
    """
    ctx.obj = {"debug": debug}
    warnings.showwarning = functools.partial(_show_warning, debug=debug)


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
                      limits=limits)
        loaded.use_preprocessing(preprocessing.preset, mean=preprocessing.mean, std=preprocessing.std)
        return fn(loaded, **kwargs)

    return wrapper


@cli.command(short_help="Describe a model: inputs, layout, softmax tail, torch parity.")
@click.argument("model")
@click.option("--no-torch", is_flag=True, help="Skip the PyTorch conversion and parity check.")
@click.option("--brief", is_flag=True,
              help="Skip the per-layer table (layers with weights or pooling: shape, parameters, FLOPs, "
                   "receptive field).")
@model_options
def info(model: Model, no_torch: bool, brief: bool) -> None:
    """Inputs, outputs, layout, opset, producer, softmax tail, and torch conversion + parity."""
    from .inspect.summary import facts, human, summarize

    rows = facts(model, with_torch=not no_torch)
    for key, value in rows:
        echo(f"{key:<11}{value}")
    if not brief:
        echo(f"\n  {'layer':<48}{'op':<20}{'shape':<22}{'params':>10}{'FLOPs':>10}  receptive field")
        for row in summarize(model):
            if row.params or row.flops or row.op_type in ("MaxPool", "AveragePool", "GlobalAveragePool"):
                echo(f"  {row.name[-47:]:<48}{row.op_type:<20}{shape_text(row.shape):<22}{human(row.params):>10}"
                           f"{human(row.flops):>10}  {row.field or '-'}")


@cli.command(short_help="List layers (tensor names for --layer); * marks the CAM default.")
@click.argument("model")
@click.option("--spatial", is_flag=True, help="Only 4-D layers with a spatial extent (CAM candidates).")
@model_options
def layers(model: Model, spatial: bool) -> None:
    """Tensor names, op types and shapes; * marks the default CAM layer."""
    default = model.default_layer.name if model.default_layer else None
    shown = [layer for layer in model.layers if not spatial or layer.spatial]
    width = min(max((len(layer.name) for layer in shown), default=10), 60)
    echo(f"  {'tensor':<{width}}  {'op':<20}shape")
    for layer in shown:
        mark = "*" if layer.name == default else " "
        echo(f"{mark} {layer.name:<{width}}  {layer.op_type:<20}{shape_text(layer.shape)}")
    if default:
        echo("\n* default layer for CAM methods (--layer auto); --layer also takes node names and last_conv")


@cli.command(short_help="List registered methods, or show one method's options.")
@click.argument("name", required=False)
def methods(name: str | None) -> None:
    """Registered methods (built-in and plugins); with NAME, its options and paper."""
    rows = api.methods()
    if name:
        registry.get(name)  # the error for an unknown or broken name
        row = next(r for r in rows if r["name"] == name)
        needs = row["requires"] + (" + a layer" if row["needs_layer"] else "")
        echo(f"{row['name']}  ({row['family']}, needs {needs}, from {row['distribution']})")
        echo(f"  {row['summary']}")
        echo(f"  paper: {row['paper'] or '-'}")
        echo("  options:" if row["options"] else "  options: none")
        for opt, kind, default, help_text in row["options"]:
            echo(f"    {opt} ({kind}, default {default}): {help_text}")
        return
    for row in rows:
        if row["error"]:
            echo(f"{row['name']:<22}BROKEN ({row['distribution']}): {row['error']}")
            continue
        needs = row["requires"] + ("+layer" if row["needs_layer"] else "")
        echo(f"{row['name']:<22}{row['family']:<13}{needs:<17}{row['distribution']:<25}{row['summary']}")


def _route_options(pairs: tuple[tuple[str, str], ...], names: list[str]) -> dict[str, dict[str, str]]:
    """`-o KEY VALUE` goes to every chosen method that has KEY; `-o METHOD.KEY VALUE` to that method only."""
    from dataclasses import fields

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


def _target(spec: str, output: str | None):
    """--target (one spec, or one class per image separated by commas) with --output applied."""
    from dataclasses import replace

    if "," in spec and "@" not in spec:
        targets = [Target.parse(s) for s in spec.split(",")]
        return [replace(t, output=output) for t in targets] if output else targets
    return replace(Target.parse(spec), output=output) if output else spec


@cli.command(short_help="Explain images with one or more methods.")
@click.argument("model")
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--method", "method_names", multiple=True, default=("gradcam",), show_default=True,
              help="Method name (repeat for several); see `onnxviz methods`.")
@click.option("-o", "--option", "options", nargs=2, multiple=True, metavar="KEY VALUE",
              help="Method option, e.g. -o window 32 or -o occlusion.stride 16.")
@click.option("--target", default="top1", show_default=True,
              help="Class index, top1, softmax:281, one index per image (281,282), or a segmentation "
                   "region: 7@predicted, 7@box:x0,y0,x1,y1 (output pixels), 7@photo:x0,y0,x1,y1 (pixels of the "
                   "original image), 7@mask:road.png.")
@click.option("--layer", help="Tensor or node name, last_conv or conv:-2, for layer methods "
                              "(default: the last spatial layer).")
@click.option("--output", "output_name", help="Which output to explain (needed when the model has several).")
@out_option
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Inputs per backend call.")
@click.option("--seed", default=0, show_default=True, help="Seed for methods that sample.")
@click.option("--gradient", type=click.Choice(["auto", "exact", "estimate"]), default="auto", show_default=True,
              help="Gradients from torch (exact), black-box estimates through onnxruntime (estimate), or torch "
                   "with an estimate when the graph cannot be converted (auto).")
@click.option("--backend", type=click.Choice(["ort", "torch"]),
              help="Force the gradient source: ort = --gradient estimate, torch = --gradient exact.")
@click.option("--estimator", type=click.Choice(["nes", "spsa"]), default="nes", show_default=True,
              help="Gradient estimator.")
@click.option("--queries", type=int, default=200, show_default=True, help="Forward passes per estimated gradient.")
@click.option("--no-arrays", is_flag=True, help="Write pictures only, no .npz arrays.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@model_options
def explain(model: Model, images, method_names, options, target, layer, output_name, out, batch_size, seed,
            gradient, backend, estimator, queries, no_arrays, quiet) -> None:
    """Explain IMAGES with one or more methods; writes overlays, a grid, arrays and index.html to --out."""
    from .viz.report import write_run

    names = list(dict.fromkeys(method_names))
    routed = _route_options(options, names)
    classes = {n: registry.get(n) for n in names}
    if layer and not any(c.needs_layer for c in classes.values()):
        raise OptionError(f"--layer is only used by layer methods, and none of {', '.join(names)} takes one")
    x, sizes = api.read_batch(list(images), model)
    gradient = {"ort": "estimate", "torch": "exact"}.get(backend, gradient)
    source = Estimator(estimator, queries) if gradient == "estimate" else gradient
    explainers = {n: Explainer(model, n, layer=layer if classes[n].needs_layer else None, gradient=source,
                               batch_size=batch_size, seed=seed, progress=not quiet, **routed[n]) for n in names}
    results = []
    for n in names:  # every method is resolved above: a bad option or layer fails before any work
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericWarning)  # printed below, one line each
            ex = explainers[n].explain(x, _target(target, output_name), image_sizes=sizes)
        results.append(ex)
        where = f" at {ex.layer}" if ex.layer else ""
        errors = ex.extras.get("relative_completeness_error")
        complete = f", completeness error up to {max(errors):.2%}" if errors else ""
        estimated = f", {ex.extras['gradient']}" if "gradient" in ex.extras else ""
        echo(f"{n}: {ex.backend}{where}, {ex.timings['explain_s']:.2f} s{complete}{estimated}", err=True)
        for note in ex.extras.get("warnings", []):
            echo(f"warning: {n}: {note}", err=True)
    written = write_run(out, results, list(images), model.name, arrays=not no_arrays)
    for i, image in enumerate(images):
        ex = results[0]
        boxes = ex.extras.get("region_boxes")
        region = ""
        if boxes:  # say which pixels were meant, in the output's own coordinates
            h, w = ex.extras["region_space"]
            region = f" over box {','.join(map(str, boxes[i]))} of the {w}x{h} output"
        echo(f"{Path(image).name}: predicted {int(ex.predictions[i])}, explained class {int(ex.targets[i])}{region} "
             f"(score {float(ex.scores[i]):.4g})")
    echo(f"wrote {len(written)} files to {out}/ (open {Path(out) / 'index.html'})")


@cli.command(short_help="Confidence and top-1 against noise and blur levels (CSV + PNG).")
@click.argument("model")
@click.argument("images", nargs=-1, required=True)
@click.option("--labels-from-folders", is_flag=True,
              help="Each image's class index is the name of its folder (for top-1 accuracy).")
@click.option("--target", type=int, help="Class whose confidence is tracked (default: each image's clean top-1).")
@click.option("--levels", default=11, show_default=True, type=click.IntRange(min=2), help="Levels per noise.")
@click.option("--seed", default=0, show_default=True)
@out_option
@model_options
def robustness(model: Model, images, labels_from_folders, target, levels, seed, out) -> None:
    """Mean confidence in the target and top-1 accuracy as Gaussian, salt-and-pepper and uniform noise and
    blur grow. IMAGES are files or folders."""
    from .robustness import find_images, noise_robustness

    paths = find_images(list(images))
    labels = None
    if labels_from_folders:
        try:
            labels = [int(p.parent.name) for p in paths]
        except ValueError:
            raise OptionError("--labels-from-folders needs folders named by class index (0, 1, ...)") from None
    result = noise_robustness(model, paths, labels, levels, target, seed)
    written = result.save(out)
    for noise in dict.fromkeys(r[0] for r in result.rows):
        last = [r for r in result.rows if r[0] == noise][-1]
        echo(f"{noise:<12} at level {last[1]:.3g}: confidence {last[2]:.3f}, top-1 {last[3]:.3f}")
    echo(f"wrote {', '.join(str(p) for p in written)} ({len(paths)} images, {result.accuracy_kind})")


@cli.command("report", short_help="One self-contained HTML page: predictions, overlays, metrics, model facts.")
@click.argument("model")
@click.argument("images", nargs=-1, required=True)
@click.option("-m", "--method", "method_names", multiple=True, default=("gradcam", "occlusion"), show_default=True,
              help="Method (repeat for several).")
@click.option("-o", "--option", "options", nargs=2, multiple=True, metavar="KEY VALUE",
              help="Method option, e.g. -o occlusion.window 8.")
@click.option("--no-metrics", is_flag=True, help="Skip deletion / insertion AUC and average drop.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False),
              help="Class names, one per line or a JSON list (default: the model's metadata, if any).")
@out_option
@click.option("--quiet", "-q", is_flag=True)
@model_options
def report_command(model: Model, images, method_names, options, no_metrics, labels_file, out, quiet) -> None:
    """Explain IMAGES with every method and write report.html: the model's facts, top-5 predictions, each
    method's overlay, and the faithfulness metrics; images embedded, nothing else needed to view it."""
    from .report import report

    names = list(dict.fromkeys(method_names))
    path = report(model, list(images), names, out, metrics=not no_metrics, options=_route_options(options, names),
                  class_names=labels_file, progress=not quiet)
    echo(f"wrote {path}")


@cli.command(short_help="Offline demo: bundled model and images -> out/index.html.")
@out_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def demo(out: str, quiet: bool) -> None:
    """Explain the bundled digits model on bundled images (offline) and write out/index.html."""
    from .demo import run_demo

    written, notes = run_demo(out, progress=not quiet)
    for note in notes:
        echo(f"note: {note}", err=True)
    echo(f"wrote {len(written)} files to {out}/; open {Path(out) / 'index.html'} or "
               f"{Path(out) / 'report.html'}")


cli.add_command(attack_command(model_options))
cli.add_command(synthesize_command(model_options))
cli.add_command(inspect_group(model_options))
cli.add_command(compare_command(limits_options))
cli.add_command(evaluate_command(model_options))
cli.add_command(batch_command(limits_options, image_options, _route_options))


def run() -> int:
    """The command line; its exit status (1 for user errors and interruptions, 2 for an export problem)."""
    return cli.main(prog_name="onnxviz", standalone_mode=False)


def main() -> None:
    """Kept for `python -m onnxviz.cli` and old entry points: the `onnxviz` command is onnxviz.__main__:main."""
    from .__main__ import main as entry

    entry()


if __name__ == "__main__":
    main()
