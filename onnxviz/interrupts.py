"""Ctrl-C and SIGTERM for the command line. A KeyboardInterrupt can be swallowed by code that runs while it is
raised (a __del__ during an import, a library's broad except); the handler therefore also records the signal, and
`check()` at the engine's checkpoints (every chunk of a batch, before outputs are committed) stops the run for
good. Nothing here is installed by `import onnxviz`: only the command line takes over the signals."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_received: list[int] = []
_scope = threading.local()  # the server's jobs: a cancel flag and a count of work done, per worker thread


class Cancelled(Exception):
    """The work was cancelled (a server job's Cancel)."""


@contextmanager
def job_scope(cancel: threading.Event, tick: Callable[[], None] | None = None) -> Iterator[None]:
    """Within: `check()` raises Cancelled once `cancel` is set, and calls `tick()` at every checkpoint (every chunk
    of every batch), on this thread only."""
    _scope.cancel, _scope.tick = cancel, tick
    try:
        yield
    finally:
        _scope.cancel, _scope.tick = None, None


def _handler(signum, frame) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def _unraisable(hook):
    def quiet(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            return  # raised inside a __del__ and swallowed there: remembered by _handler, said once by the CLI
        hook(unraisable)

    return quiet


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt and are remembered (main thread only); a KeyboardInterrupt that
    Python could not raise (inside a __del__) is not printed as a traceback."""
    _received.clear()
    signal.signal(signal.SIGINT, _handler)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _handler)
    sys.unraisablehook = _unraisable(sys.__unraisablehook__)


def check() -> None:
    """Raise KeyboardInterrupt if a signal arrived, even when its first KeyboardInterrupt was swallowed; in a job
    scope, raise Cancelled once the job is cancelled, and count the checkpoint."""
    if _received:
        raise KeyboardInterrupt
    cancel = getattr(_scope, "cancel", None)
    if cancel is not None:
        if cancel.is_set():
            raise Cancelled("cancelled")
        tick = _scope.tick
        if tick is not None:
            tick()


def interrupted() -> bool:
    return bool(_received)


def finished() -> None:
    """After the command: a late signal (while Python shuts down) still ends the process with exit status 1,
    not with the signal's own -2 / -15."""

    def leave(signum, frame) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    signal.signal(signal.SIGINT, leave)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, leave)
