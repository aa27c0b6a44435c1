"""The `onnxviz` command group: one line per user error (tracebacks only with --debug), escaped output, signals
that fail the run, warnings as one line each. Commands live one per module and are imported when invoked."""

from __future__ import annotations

import functools
import importlib
import sys
import warnings
from typing import IO, cast

import click

from .. import interrupts
from ..errors import OnnxvizError
from ..text import printable

# command name -> (module:attribute, the line `onnxviz --help` shows); a command is imported on use, so the help
# and one command load only what they need (tests/test_cli_startup.py checks each line against its command's own)
COMMANDS = {
    "attack": ("attack:attack_command", "Adversarial examples: white-box (torch) or black-box (onnxruntime)."),
    "batch": ("batch:batch", "Explain a whole folder, glob or list of images (local or Ray), resumably."),
    "compare": ("compare:compare_command", "Several models on the same images: predictions, maps, agreement."),
    "demo": ("demo:demo", "Offline demo: bundled model and images -> out/index.html."),
    "evaluate": ("evaluate:evaluate_command",
                 "How faithful explanations are: deletion/insertion AUC, sanity checks."),
    "explain": ("explain:explain", "Explain images with one or more methods."),
    "info": ("info:info", "Describe a model: inputs, layout, softmax tail, torch parity."),
    "inspect": ("inspect:inspect_group", "Kernels, feature maps, embeddings, top-k patches (no torch needed)."),
    "layers": ("layers:layers", "List layers (tensor names for --layer); * marks the CAM default."),
    "methods": ("methods:methods", "List registered methods, or show one method's options."),
    "report": ("report:report_command",
               "One self-contained HTML page: predictions, overlays, metrics, model facts."),
    "robustness": ("robustness:robustness", "Confidence and top-1 against noise and blur levels (CSV + PNG)."),
    "serve": ("serve:serve", "A local web explorer and JSON API for one or more models."),
    "synthesize": ("synthesize:synthesize_command",
                   "Feature visualization: maximize, deepdream, invert, style transfer."),
    "tcav": ("tcav:tcav_command", "TCAV: which concepts (image folders) a class is sensitive to, per layer."),
}

class _Printable:
    """A stderr that shows control characters as escapes: click's own errors repeat what was typed."""

    def write(self, text: str) -> int:
        return sys.stderr.write(printable(text))

    def flush(self) -> None:
        sys.stderr.flush()


class Group(click.Group):
    """Turns OnnxvizError into one line on stderr and exit code 1; --debug shows the traceback instead. Its
    commands are the modules named in COMMANDS, imported when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return super().get_command(ctx, name)
        module, _, attribute = COMMANDS[name][0].partition(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from COMMANDS' lines: click's own would import every command to ask for its help."""
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx) if name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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

    def _status(self, args, prog_name, complete_var, **extra) -> int:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            interrupts.check()
            return code if isinstance(code, int) else 0
        except click.ClickException as exc:
            exc.show(file=cast(IO[str], _Printable()))
            return exc.exit_code
        except (click.exceptions.Abort, KeyboardInterrupt, EOFError):
            click.echo(printable("\nAborted!"), err=True)
            return 1
        except click.exceptions.Exit as exc:
            return exc.exit_code


def _show_warning(message, category, filename, lineno, file=None, line=None, debug: bool = False) -> None:
    """Our warnings as one `warning:` line each; other libraries' only with --debug."""
    text = str(message)
    if text.startswith("onnxviz: "):
        click.echo(printable(f"warning: {text.removeprefix('onnxviz: ')}"), err=True)
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


def run() -> int:
    """The command line; its exit status (1 for user errors and interruptions, 2 for an export problem)."""
    return cli.main(prog_name="onnxviz", standalone_mode=False)
