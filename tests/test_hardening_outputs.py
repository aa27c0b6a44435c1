"""Issue 15: a run's outputs are all or none (interrupted, failing or full-disk runs leave nothing, and an
--overwrite run leaves the old files untouched), files get the umask's permissions, a killed run's leftovers are
removed by the next one; and every signal, whenever it arrives, ends the command with status 1 and one line."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from onnxviz import interrupts, staging
from onnxviz import io as oio
from onnxviz.cli import cli
from onnxviz.demo import demo_images, demo_model_path

MODEL = str(demo_model_path())


def _explain(out: Path, *extra: str):
    return CliRunner().invoke(cli, ["explain", MODEL, str(demo_images()[0]), "-m", "saliency", "-m", "occlusion",
                                    "-o", "window", "8", "--out", str(out), "-q", *extra])


def _fail_after(monkeypatch, writes: int, error: BaseException) -> None:
    """The `writes`-th file written raises `error` (a signal between two pictures, a disk that fills up)."""
    real = oio.tempfile.mkstemp
    count = [0]

    def mkstemp(*args, **kwargs):
        count[0] += 1
        if count[0] == writes:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(oio.tempfile, "mkstemp", mkstemp)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")],
                         ids=["signal", "full disk"])
def test_an_interrupted_or_failing_run_leaves_nothing_behind(error, tmp_path, monkeypatch):
    assert _explain(tmp_path / "reference").exit_code == 0
    total = len(_files(tmp_path / "reference"))
    assert total > 5
    _fail_after(monkeypatch, total - 1, error)  # everything but the last file was written
    result = _explain(tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.output
    if isinstance(error, OSError):
        assert "No space left on device" in result.stderr
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["reference"]  # no stage folder either


def test_an_overwrite_run_that_fails_leaves_the_old_files_as_they_were(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert _explain(out).exit_code == 0
    (out / "mine.txt").write_text("keep me")
    before = _files(out)
    _fail_after(monkeypatch, 3, KeyboardInterrupt())
    assert _explain(out, "--overwrite", "--seed", "1").exit_code == 1
    assert _files(out) == before


def test_files_and_folders_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        assert _explain(tmp_path / "out").exit_code == 0
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o750
    modes = {p.stat().st_mode & 0o777 for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert modes == {0o640}, modes


def test_a_killed_runs_stage_and_part_files_are_removed_by_the_next_run(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{staging.PREFIX}out-{dead.pid}-abc"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "half.png").write_bytes(b"x")
    mine = tmp_path / f"{staging.PREFIX}out-{os.getpid()}-live"  # a run still alive keeps its stage
    mine.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".grid.png.k3j2.part").write_bytes(b"half")
    assert _explain(out, "--overwrite").exit_code == 0
    assert not stale.exists() and mine.exists() and not list(out.rglob("*.part"))


def test_a_swallowed_keyboard_interrupt_still_stops_at_the_next_checkpoint():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    interrupts.install()
    try:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        except KeyboardInterrupt:
            pass  # what a __del__ or a broad except inside a library does
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
        with pytest.raises(KeyboardInterrupt):  # the engine checks between chunks
            import numpy as np

            from onnxviz.backends.batching import run_batched

            run_batched(lambda x: [x], (np.zeros((4, 1)),), 2, None)
    finally:
        interrupts._received.clear()
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


def _onnxviz(*args: str, before_main: str = "", marker: Path | None = None) -> subprocess.Popen:
    """The onnxviz command as its console script runs it; `marker` is created just before main() (the interpreter
    has started: a signal before that is Python's own start-up, not ours)."""
    touch = f"open({str(marker)!r}, 'w').close()\n" if marker else ""
    code = (f"import sys\n{textwrap.dedent(before_main)}\nfrom onnxviz.__main__ import main\n"
            f"sys.argv = ['onnxviz', {', '.join(map(repr, args))}]\n{touch}main()\n")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("delay", [0.0, 0.2, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_moment_of_start_up_is_status_1_and_one_line(delay, sig, tmp_path):
    marker = tmp_path / "started"
    proc = _onnxviz("explain", MODEL, str(demo_images()[0]), "-m", "saliency", "--out", str(tmp_path / "out"), "-q",
                    marker=marker)
    while not marker.exists() and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(delay)  # the heavy imports (numpy, onnx, onnxruntime, torch) happen in this window
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # finished before the signal came: nothing to check
        return
    assert proc.returncode == 1, (proc.returncode, err)
    assert "Traceback" not in err and len([line for line in err.splitlines() if line.strip()]) <= 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_after_the_work_is_done_is_status_1_not_the_signal(sig):
    late = f"""
        import atexit, os, signal, time
        atexit.register(lambda: (os.kill(os.getpid(), signal.{sig.name}), time.sleep(2)))
    """
    proc = _onnxviz("methods", before_main=late)
    out, err = proc.communicate(timeout=120)
    assert "saliency" in out
    assert proc.returncode == 1, (proc.returncode, err)
    assert "Traceback" not in err
