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


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_exits_non_zero_and_leaves_no_partial_file(tmp_path, sig):
    import signal
    import subprocess
    import sys
    import time

    from onnxviz.demo import demo_images, demo_model_path

    out = tmp_path / "out"
    # rise with many masks runs for seconds: long enough to be interrupted while computing
    # SIGINT's handler is restored first: a suite started in the background inherits SIGINT ignored
    start = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "from onnxviz.cli import main; main()")
    cmd = [sys.executable, "-c", start, "explain", str(demo_model_path()),
           *map(str, demo_images()), "-m", "rise", "-o", "n_masks", "200000", "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    # a clean abort (exit 1), not a kill by the signal (-15): except/finally blocks ran and removed partial files
    assert proc.returncode == 1 and "Aborted" in err and "Traceback" not in err, (proc.returncode, err)
    assert not out.exists() or not any(out.iterdir())


def test_the_installed_dependencies_meet_the_security_floors():
    from importlib.metadata import requires, version

    from packaging.requirements import Requirement

    declared = [Requirement(r) for r in requires("onnxviz")]
    floors = {r.name: r for r in declared if r.marker is None or r.marker.evaluate({"extra": ""})}
    for name in ("onnx", "onnxruntime", "protobuf", "opencv-python-headless"):
        assert version(name) in floors[name].specifier, f"{name} {version(name)} vs {floors[name].specifier}"
    assert str(floors["protobuf"].specifier) == ">=6.33.5" and str(floors["onnx"].specifier) == ">=1.22"


def test_the_lazy_public_api_lists_what_it_loads():
    import onnxviz

    lazy = {name for names in onnxviz._EXPORTS.values() for name in names}
    assert set(onnxviz.__all__) == {*lazy, "__version__"}
    for name in lazy:
        assert getattr(onnxviz, name) is not None
