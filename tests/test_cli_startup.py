"""What `onnxviz --help` and `onnxviz methods` load: the help lists commands without importing them, and listing
methods loads neither torch nor onnx (whose import alone costs 0.6 s here) nor scipy's heavy parts."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from onnxviz.cli.app import COMMANDS, cli

PROBE = """import json, sys
from onnxviz.cli.app import cli
code = cli.main({args!r}, prog_name="onnxviz", standalone_mode=False)
heavy = ("torch", "onnx", "onnx2torch", "scipy.stats", "scipy.optimize", "scipy.fft", "onnxviz.model")
print(json.dumps([m for m in heavy if m in sys.modules]))
"""


def _loaded(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True, text=True,
                          check=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_line_is_the_commands_own(name):
    """The line `onnxviz --help` shows (COMMANDS, read without importing the command) is the command's own."""
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert COMMANDS[name][1] == command.get_short_help_str(limit=500)


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "onnxviz", "--help"], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    listed = out[out.index("Commands:"):]
    for name, (_, line) in COMMANDS.items():
        assert f"  {name} " in listed
        assert line.split()[0] in listed


def test_help_imports_no_command():
    assert _loaded("--help") == []


def test_methods_loads_neither_torch_nor_onnx():
    assert _loaded("methods") == []


def test_one_method_loads_neither_torch_nor_onnx():
    assert _loaded("methods", "fullgrad") == []


def test_a_plugins_imports_load_no_model_code():
    """What a third-party plugin imports at load time (the random_baseline example plugin's line) stays light."""
    probe = ("import json, sys\nfrom onnxviz import Context, Method, option\n"
             "print(json.dumps([m for m in ('torch', 'onnx', 'onnxviz.model') if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(done.stdout) == []
