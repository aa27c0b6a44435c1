"""A reusable worker process for work that native code may crash: calls go over a socket pair, the worker has a
memory limit (RLIMIT_AS, never above the caller's own) and each call a time limit. A segfault, abort, hang or
out-of-memory kill becomes a ModelError in the caller, and the next call starts a fresh worker. The worker dies
with its parent (a parent-death signal), even when it is busy in native code."""

from __future__ import annotations

import atexit
import importlib
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO

from ..errors import ModelError, OnnxvizError
from .memory import lower_address_space

READY = "ready"
_SPAWNS: queue.Queue = queue.Queue()


def _spawner() -> None:
    """Starts worker processes from one thread that lives as long as the process: the parent-death signal
    fires when the *thread* that started a child ends, so a short-lived caller thread must not be it."""
    while True:
        args, kwargs, answer = _SPAWNS.get()
        try:
            answer.put(subprocess.Popen(*args, **kwargs))
        except BaseException as exc:  # handed to the caller, which raises it
            answer.put(exc)


def _popen(*args, **kwargs) -> subprocess.Popen:
    if not any(t.name == "onnxviz-spawner" for t in threading.enumerate()):
        threading.Thread(target=_spawner, name="onnxviz-spawner", daemon=True).start()
    answer: queue.Queue = queue.Queue()
    _SPAWNS.put((args, kwargs, answer))
    result = answer.get()
    if isinstance(result, BaseException):
        raise result
    return result


class Worker:
    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._log: IO[bytes] | None = None
        self._memory: int | None = None
        self._lock = threading.Lock()

    def call(self, task: str, args: tuple, *, timeout: float, memory: int, what: str):
        """Run `module:function(*args)` in the worker; its exceptions are re-raised here."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None or memory != self._memory:
                self._start(memory)
            conn = self._conn
            if conn is None:
                raise ModelError(f"{what}: the loader process did not start")
            try:
                conn.send((task, args))
                answered = conn.poll(timeout)
            except OSError:
                answered = True  # the worker is gone: recv below says how
            except BaseException:  # Ctrl-C while it works: its late answer must not reach the next call
                self.stop()
                raise
            if not answered:
                self.stop()
                raise ModelError(f"{what} did not finish within {timeout:g} s (a hang in native code?); the loader "
                                 "process was stopped. If the model is just large, raise --load-timeout")
            try:
                ok, value = conn.recv()
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
        code = f"from onnxviz.guard.worker import serve; serve({theirs.fileno()}, {memory}, {os.getpid()})"
        try:
            self._proc = _popen([sys.executable, "-c", code], pass_fds=(theirs.fileno(),), env=env,
                                stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._memory = memory
        try:
            ready = self._conn.poll(60) and self._conn.recv() == READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            death = self._death() if self._proc.poll() is not None else "no answer within 60 s"
            tail = self._log_tail()
            self.stop()
            raise ModelError(f"the isolated loader process could not start ({death}); under a tight memory limit "
                             "(ulimit -v, a container) give onnxviz more room, or pass --no-isolate."
                             f"{tail}")

    def _death(self) -> str:
        if self._proc is None:
            return "not running"
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
        global _SPAWNS
        self._proc = self._conn = self._log = None
        self._lock = threading.Lock()
        _SPAWNS = queue.Queue()  # the spawner thread did not survive the fork; its queue's lock may be held


WORKER = Worker()
atexit.register(WORKER.stop)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WORKER.forget)


def _die_with(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent ends; if the parent is already gone, leave now."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)


def serve(fd: int, memory: int, parent: int | None = None) -> None:
    """The worker's loop: tie its life to the parent's, lower its memory limit (never raising the caller's),
    say it is ready, then answer calls until the caller closes the socket."""
    if parent is not None:
        _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the terminal is the parent's to handle
    if memory > 0 and os.name == "posix":
        lower_address_space(memory)
    conn = Connection(fd)
    importlib.import_module("onnxviz.guard.check")  # the imports that need memory happen before "ready"
    conn.send(READY)
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
