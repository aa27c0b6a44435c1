"""The command line: `app` holds the group and its error handling, `options` the options shared by commands, and
each command is one module (imported when it is invoked)."""

from ..__main__ import main  # `python -m onnxviz.cli` and old entry points: the `onnxviz` command is the same
from .app import COMMANDS, cli, run

__all__ = ["COMMANDS", "cli", "main", "run"]
