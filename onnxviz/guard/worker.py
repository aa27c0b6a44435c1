"""A reusable worker process for work that native code may crash: calls go over a socket pair, the worker has a
memory limit (RLIMIT_AS) and each call a time limit. A segfault, abort, hang or out-of-memory kill becomes a
ModelError in the caller, and the next call starts a fresh worker."""

from __future__ import annotations

import atexit
import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from multiprocessing.connection import Connection
from pathlib import Path

from ..errors import ModelError, OnnxvizError


class Worker:
    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._log = None
        self._memory: int | None = None
        self._lock = threading.Lock()

    def call(self, task: str, args: tuple, *, timeout: float, memory: int, what: str):
        """Run `module:function(*args)` in the worker; its exceptions are re-raised here."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None or memory != self._memory:
                self._start(memory)
            try:
                self._conn.send((task, args))
                answered = self._conn.poll(timeout)
            except OSError:
                answered = True  # the worker is gone: recv below says how
            if not answered:
                self.stop()
                raise ModelError(f"{what} did not finish within {timeout:g} s (a hang in native code?); the loader "
                                 "process was stopped. If the model is just large, raise --load-timeout")
            try:
                ok, value = self._conn.recv()
            except (EOFError, OSError):
                raise ModelError(f"{what} crashed the loader process ({self._death()}); onnxviz itself is unharmed. "
                                 f"The file may be damaged or hostile.{self._log_tail()}") from None
        if ok:
            return value
        raise value

    def _start(self, memory: int) -> None:
        self.stop()
        ours, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        self._log = tempfile.TemporaryFile()
        code = f"from onnxviz.guard.worker import serve; serve({theirs.fileno()}, {memory})"
        self._proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=(theirs.fileno(),), env=env,
                                      stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        theirs.close()
        self._conn = Connection(ours.detach())
        self._memory = memory

    def _death(self) -> str:
        code = self._proc.wait()
        self._proc = None
        if code < 0:
            name = signal.Signals(-code).name
            hint = " - out of memory?" if name == "SIGKILL" else ""
            return f"killed by {name}{hint}"
        return f"exit status {code}"

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        lines = [line for line in self._log.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return f" Last words: {lines[-1][:300]}" if lines else ""

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._log is not None:
            self._log.close()
            self._log = None


    def forget(self) -> None:
        """In a forked child: the parent's worker and socket are not ours to use or to stop."""
        self._proc = self._conn = self._log = None
        self._lock = threading.Lock()


WORKER = Worker()
atexit.register(WORKER.stop)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WORKER.forget)


def serve(fd: int, memory: int) -> None:
    """The worker's loop: limit memory, then answer calls until the caller closes the socket."""
    if memory > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, resource.RLIM_INFINITY))
    conn = Connection(fd)
    while True:
        try:
            task, args = conn.recv()
        except (EOFError, OSError):
            return
        module, _, name = task.partition(":")
        try:
            conn.send((True, getattr(importlib.import_module(module), name)(*args)))
        except OnnxvizError as exc:
            conn.send((False, exc))
        except MemoryError:
            conn.send((False, ModelError("the model needs more memory than the loader's limit")))
        except Exception as exc:
            conn.send((False, ModelError(f"the loader failed: {type(exc).__name__}: {str(exc)[:400]}")))
