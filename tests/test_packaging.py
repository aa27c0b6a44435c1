"""The wheel carries the demo model, the demo images and the built-in entry points (so `onnxviz demo` works
from a wheel install, offline); output files are written atomically."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from onnxviz import io as oio

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_has_the_demo_data_and_entry_points(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           str(ROOT), "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("onnxviz-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "onnxviz/data/digits_cnn.onnx" in names
    assert sum(n.startswith("onnxviz/data/digit_") and n.endswith(".png") for n in names) >= 3
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for name in ("saliency", "gradcam", "occlusion"):
        assert f"{name} = onnxviz.methods." in entry_points


def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "out" / "grid.png"

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        oio.save_png(target, np.zeros((4, 4, 3), np.float32))
    assert list(target.parent.iterdir()) == []
