"""Bounds on running an untrusted model in this process, for onnxruntime and torch alike.

- Memory: while a pass runs, the process's address space may grow by at most `max_run_memory_bytes` (the soft
  RLIMIT_AS is lowered for the pass and restored after, never above the caller's own limits). An allocation past
  it fails inside the runtime, which then reports an error instead of the machine swapping or the OOM killer.
- Time: an onnxruntime pass that runs past `run_timeout` is stopped through its RunOptions.terminate flag.
- Signals: Ctrl-C and SIGTERM stop an onnxruntime pass at once, even one stuck in an endless Loop: Python's own
  C-level handler writes the signal to a wakeup pipe that a watcher thread reads, and the watcher sets the
  terminate flag of every pass in flight (Python handlers alone would wait for the pass to return).

POSIX only for memory (Linux reads /proc/self/statm); elsewhere the memory bound is skipped."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ModelError
from ..text import bytes_text
from .limits import Limits
from .memory import lower_address_space

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM: list[int] = []  # an open /proc/self/statm: reading it again costs a pread, not an open


def _forget_statm() -> None:
    _STATM.clear()  # after a fork the descriptor would describe the parent


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_statm)


def _address_space() -> int | None:
    try:
        if not _STATM:
            _STATM.append(os.open("/proc/self/statm", os.O_RDONLY))
        return int(os.pread(_STATM[0], 64, 0).split()[0]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


class _MemoryWindow:
    """Process-wide: the first pass to start lowers the soft limit to (current size + budget); passes that start
    meanwhile in other threads widen it by their own budget; the last one to end restores the caller's limit.
    Re-entrant: a pass inside a pass of the same thread changes nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._saved: tuple[int, int] | None = None
        self._local = threading.local()

    def __call__(self, budget: int) -> _Window:
        return _Window(self, budget)

    def enter(self, budget: int) -> bool:
        """Open the window for this thread; False when nothing was adjusted (nested, or no /proc)."""
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        size = _address_space() if depth == 0 else None
        if size is None:
            return False
        import resource

        with self._lock:
            if self._active == 0:
                self._saved = resource.getrlimit(resource.RLIMIT_AS)
                lower_address_space(size + budget)
            else:
                current = resource.getrlimit(resource.RLIMIT_AS)[0]
                wanted = size + budget if current == resource.RLIM_INFINITY else max(size + budget, current)
                _widen(wanted, self._saved)
            self._active += 1
        return True

    def leave(self, adjusted: bool) -> None:
        self._local.depth -= 1
        if not adjusted:
            return
        import resource

        with self._lock:
            self._active -= 1
            if self._active == 0 and self._saved is not None:
                resource.setrlimit(resource.RLIMIT_AS, self._saved)
                self._saved = None


class _Window:
    __slots__ = ("adjusted", "budget", "owner")

    def __init__(self, owner: _MemoryWindow, budget: int) -> None:
        self.owner, self.budget, self.adjusted = owner, budget, False

    def __enter__(self) -> None:
        self.adjusted = self.owner.enter(self.budget)

    def __exit__(self, *exc) -> None:
        self.owner.leave(self.adjusted)


def _widen(wanted: int, saved: tuple[int, int] | None) -> None:
    """Raise the lowered soft limit for another pass, never past the caller's own soft and hard limits."""
    import resource

    ceiling = [v for v in (saved or (resource.RLIM_INFINITY,) * 2) if v != resource.RLIM_INFINITY]
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    new = min([wanted, *ceiling])
    if soft == resource.RLIM_INFINITY or new > soft:
        resource.setrlimit(resource.RLIMIT_AS, (new, hard))


memory_window = _MemoryWindow()


@dataclass
class _Pass:
    options: Any  # onnxruntime.RunOptions
    deadline: float
    why: str = ""  # "timeout" or "signal" once the watcher stopped it
    previous_fd: int | None = None  # the wakeup fd to put back (main thread only)


class _Watcher:
    """One daemon thread: stops passes past their deadline, and all passes when a signal arrives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._passes: dict[int, _Pass] = {}
        self._thread: threading.Thread | None = None
        self._read_fd = self._write_fd = -1
        self._forward_to = -1  # the wakeup fd someone else (asyncio, ...) had set: it gets the signals too

    def _ensure(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._thread = threading.Thread(target=self._loop, name="onnxviz-run-watcher", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        stopping = {int(signal.SIGINT), int(getattr(signal, "SIGTERM", signal.SIGINT))}
        while True:
            ready, _, _ = select.select([self._read_fd], [], [], 0.2)
            received = os.read(self._read_fd, 512) if ready else b""
            if received and self._forward_to >= 0:
                with contextlib.suppress(OSError):
                    os.write(self._forward_to, received)
            stop = any(b in stopping for b in received)
            now = time.monotonic()
            with self._lock:
                for p in self._passes.values():
                    if stop and not p.why:
                        p.why, p.options.terminate = "signal", True
                    elif now > p.deadline and not p.why:
                        p.why, p.options.terminate = "timeout", True

    def begin(self, options: Any, timeout: float) -> _Pass:
        """Watch one pass: its deadline, and (on the main thread) signals through the wakeup pipe."""
        record = _Pass(options, time.monotonic() + timeout)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._ensure()
            self._passes[id(record)] = record
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError):
                previous = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
                record.previous_fd = previous
                self._forward_to = previous if previous != self._write_fd else -1
        return record

    def end(self, record: _Pass) -> None:
        if record.previous_fd is not None:
            with contextlib.suppress(ValueError):
                signal.set_wakeup_fd(record.previous_fd)
            self._forward_to = -1
        with self._lock:
            self._passes.pop(id(record), None)


_WATCHER = _Watcher()


def _is_memory_failure(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or any(k in text for k in ("failed to allocate", "bad_alloc",
                                                                   "can't allocate memory", "not enough memory",
                                                                   "cannot allocate memory"))


def memory_error(limits: Limits, what: str) -> ModelError:
    return ModelError(f"{what} needed more than {bytes_text(limits.max_run_memory_bytes)} of memory beyond what the "
                      "process already uses, the budget for one pass of a model; if the model really needs it, raise "
                      "--max-memory (Python: Limits(max_run_memory_bytes=...)) or lower --batch-size")


def run_onnxruntime(fn: Callable[[Any], Any], limits: Limits, what: str) -> Any:
    """fn(run_options) -> its result, within the memory budget and the time limit, stoppable by signals."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = 4  # failures come back as exceptions; the log line would be a second copy
    record = _WATCHER.begin(options, limits.run_timeout)
    adjusted = memory_window.enter(limits.max_run_memory_bytes)
    try:
        return fn(options)
    except Exception as exc:
        if record.why == "signal":
            raise KeyboardInterrupt from None
        if record.why == "timeout":
            raise ModelError(f"{what} did not finish within {limits.run_timeout:g} s and was stopped (an endless "
                             "Loop in the graph?); if the model is just slow, raise --run-timeout") from None
        if _is_memory_failure(exc):
            raise memory_error(limits, what) from None
        raise
    finally:
        memory_window.leave(adjusted)
        _WATCHER.end(record)


@contextlib.contextmanager
def torch_pass(limits: Limits, what: str) -> Iterator[None]:
    """The memory budget around torch work (forward and backward); its allocation failures become one error."""
    with memory_window(limits.max_run_memory_bytes):
        try:
            yield
        except (RuntimeError, MemoryError) as exc:
            if _is_memory_failure(exc):
                raise memory_error(limits, what) from None
            raise
