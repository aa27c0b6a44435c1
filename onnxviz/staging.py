"""A run's output files, all or none. While `staged(out)` is active, every file written under `out` (through
io.write_bytes_atomic) lands in a hidden folder beside it; when the run succeeds the folder is renamed into place
(or, when `out` already exists, its files are moved in one by one with Ctrl-C / SIGTERM deferred), and when it
fails or is interrupted the folder is removed. A folder left by a killed run is removed by the next run."""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError

PREFIX = ".onnxviz-partial-"
_ACTIVE: contextvars.ContextVar[tuple[Path, Path] | None] = contextvars.ContextVar("onnxviz_stage", default=None)
_UMASK_LOCK = threading.Lock()


def umask() -> int:
    """The process's umask (read by setting it back at once)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def redirect(path: Path) -> Path:
    """Where a file meant for `path` is written now: inside the active stage when `path` lies under its folder."""
    active = _ACTIVE.get()
    if active is None:
        return path
    out, stage = active
    try:
        rel = path.absolute().relative_to(out)
    except ValueError:
        return path
    return stage / rel


def _existing_ancestor(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(folder: Path, name: str) -> None:
    """Stage folders of killed runs for `name` in `folder`, and temporary .part files a killed writer left."""
    if not folder.is_dir():
        return
    for entry in folder.glob(f"{PREFIX}{name}-*"):
        pid = entry.name.removeprefix(f"{PREFIX}{name}-").split("-")[0]
        if entry.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
    target = folder / name
    if target.is_dir():
        for part in target.rglob(".*.part"):
            part.unlink(missing_ok=True)


@contextlib.contextmanager
def _deferred_signals() -> Iterator[list[int]]:
    """Ctrl-C and SIGTERM wait until the block ends (main thread only; elsewhere signals do not reach us)."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    received: list[int] = []
    names = [s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None]
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in names}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if received:
            handler = previous.get(received[0])
            if callable(handler):
                handler(received[0], None)  # what the signal would have done, now that the files are in place
            else:
                raise KeyboardInterrupt


def _commit(stage: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        os.rename(stage, out)
        return
    for src in sorted(p for p in stage.rglob("*") if p.is_file()):
        dest = out / src.relative_to(stage)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
    shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def staged(out: str | os.PathLike) -> Iterator[Path]:
    """Files written under `out` inside this block appear there together when it ends normally, or not at all."""
    out = Path(out).absolute()
    home = _existing_ancestor(out.parent)
    remove_leftovers(home, out.name)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{out.name}-{os.getpid()}-", dir=home))
        stage.chmod(0o777 & ~umask())
    except OSError as exc:
        raise OutputError(f"cannot write to the output folder {out}: {exc.strerror or exc}; choose another --out") \
            from None
    token = _ACTIVE.set((out, stage))
    try:
        yield stage
    except BaseException:
        _ACTIVE.reset(token)
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _ACTIVE.reset(token)
    try:
        with _deferred_signals():
            _commit(stage, out)
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise OutputError(f"cannot move the results into {out}: {exc.strerror or exc}") from None
