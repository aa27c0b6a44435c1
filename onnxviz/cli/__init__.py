"""The command line: `app` holds the group and its error handling, `options` the options shared by commands, and
each command is one module (imported when it is invoked)."""

from .app import COMMANDS, cli, run


def main() -> None:
    """`python -m onnxviz.cli` and old entry points: the `onnxviz` command is onnxviz.__main__:main."""
    from ..__main__ import main as entry

    entry()


__all__ = ["COMMANDS", "cli", "main", "run"]
