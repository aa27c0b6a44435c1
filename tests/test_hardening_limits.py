"""Issue 15: the loader worker respects the caller's limits (ulimit -v, cgroups) and dies with its parent."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import hostile_models as hm
import pytest

import onnxviz
from onnxviz.guard import memory
from onnxviz.guard.worker import WORKER

TESTS = Path(__file__).parent
GiB = 2**30


def _python(code: str, limit: tuple[int, int] | None = None, **kwargs) -> subprocess.Popen:
    def cap():
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, limit)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, preexec_fn=cap,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _address_limit(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max address space"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no address-space line")


LOAD = """
    import hostile_models as hm, onnxviz
    from onnxviz.guard.worker import WORKER
    onnxviz.load(hm.linear())
    print(WORKER._proc.pid, flush=True)
    input()
"""


@pytest.mark.parametrize("hard", [True, False], ids=["hard ulimit", "soft ulimit"])
def test_a_ulimit_below_the_default_is_respected_and_never_raised(hard):
    cap = 3 * GiB
    assert memory.available_memory() * 0.8 > cap  # the default worker limit would be higher
    proc = _python(LOAD, (cap, cap if hard else resource.RLIM_INFINITY), stdin=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
        assert line.strip().isdigit(), proc.stderr.read()
        soft, hard_limit = _address_limit(int(line))
        assert int(soft) <= cap  # the caller's soft limit was never raised for the worker
        assert hard_limit == (str(cap) if hard else "unlimited")  # and the hard one never touched
    finally:
        proc.communicate("\n", timeout=60)
    assert proc.returncode == 0


def test_container_memory_limits_are_read_from_cgroups(tmp_path):
    v2 = tmp_path / "v2"
    (v2 / "job" / "step").mkdir(parents=True)
    (v2 / "memory.max").write_text("max\n")
    (v2 / "job" / "memory.max").write_text(str(6 * GiB))
    (v2 / "job" / "step" / "memory.max").write_text("max\n")
    (tmp_path / "cg2").write_text("0::/job/step\n")
    assert memory.cgroup_limit(v2, tmp_path / "cg2") == 6 * GiB  # an ancestor's limit binds
    v1 = tmp_path / "v1"
    (v1 / "memory" / "docker" / "abc").mkdir(parents=True)
    (v1 / "memory" / "docker" / "abc" / "memory.limit_in_bytes").write_text(str(2 * GiB))
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "unlimited"
    (tmp_path / "cg1").write_text("4:memory:/docker/abc\n3:cpu:/\n")
    assert memory.cgroup_limit(v1, tmp_path / "cg1") == 2 * GiB
    (tmp_path / "cg0").write_text("4:memory:/\n")  # a container seeing itself as "/": the mount root's file counts
    (v1 / "memory" / "memory.limit_in_bytes").write_text(str(GiB))
    assert memory.cgroup_limit(v1, tmp_path / "cg0") == GiB
    assert memory.cgroup_limit(tmp_path / "none", tmp_path / "missing") is None


def test_the_default_worker_limit_follows_the_container(monkeypatch):
    monkeypatch.setattr(memory, "cgroup_limit", lambda: 2 * GiB)
    assert onnxviz.Limits().worker_memory_bytes == int(0.8 * 2 * GiB)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@pytest.fixture
def subreaper():
    """Orphans are re-parented to this test process (not to init, which in some sandboxes kills them and would
    hide a worker that outlives its parent)."""
    import ctypes

    libc = ctypes.CDLL(None)
    pr_set_child_subreaper = 36
    libc.prctl(pr_set_child_subreaper, 1)
    yield
    libc.prctl(pr_set_child_subreaper, 0)


def test_a_busy_worker_dies_with_its_parent(subreaper, tmp_path, monkeypatch):
    code = """
        import threading, onnxviz, hostile_models as hm
        import onnxviz.guard.open as o
        from onnxviz.guard.worker import WORKER
        o.CHECK = "crashers:spin"
        threading.Thread(target=lambda: onnxviz.load(hm.linear()), daemon=True).start()
        import time
        while WORKER._proc is None or WORKER._conn is None:
            time.sleep(0.05)
        print(WORKER._proc.pid, flush=True)
        time.sleep(3600)
    """
    marker = tmp_path / "spinning"
    monkeypatch.setenv("ONNXVIZ_TEST_SPINNING", str(marker))
    proc = _python(code)
    worker = int(proc.stdout.readline())
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists() and not _gone(worker)  # the worker is spinning at 100% CPU in its task now
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = not _gone(worker)
    if alive:
        os.kill(worker, signal.SIGKILL)
    os.waitpid(worker, 0)  # it is our child now (the subreaper): reap it
    assert not alive, "the loader worker outlived its parent"


def test_the_worker_outlives_the_thread_that_started_it():
    import threading

    WORKER.stop()
    thread = threading.Thread(target=lambda: onnxviz.load(hm.linear()))
    thread.start()
    thread.join()
    pid = WORKER._proc.pid
    time.sleep(0.5)  # a parent-death signal tied to the finished thread would have fired by now
    onnxviz.load(hm.linear())
    assert WORKER._proc.pid == pid and not _gone(pid)
