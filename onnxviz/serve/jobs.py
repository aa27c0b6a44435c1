"""Jobs: explanations run on a bounded pool of worker threads, at most `queue` waiting; each can be cancelled (the
engine stops at its next checkpoint, every chunk of every batch) and reports how many checkpoints it has passed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import interrupts
from ..errors import OnnxvizError, first_line

Work = Callable[[], tuple[dict[str, Any], Any]]  # a job's work: (its public result, the value kept)


@dataclass
class Job:
    id: str
    key: tuple
    status: str = "queued"  # queued, running, done, failed, cancelled
    ticks: int = 0  # checkpoints passed: live progress
    result: dict[str, Any] | None = None  # what the API returns
    value: Any = None  # what the server keeps for later (an Explanation, for the exported report)
    kind: str = "explain"
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "status": self.status, "ticks": self.ticks, "error": self.error,
                "result": self.result}


class Jobs:
    """The pool, the queue bound and the cache of finished results by request key."""

    def __init__(self, workers: int = 2, queue: int = 8, keep: int = 256):
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="onnxviz-job")
        self.limit = workers + queue
        self.keep = keep  # finished jobs remembered (and served from the cache); older ones are forgotten
        self.jobs: dict[str, Job] = {}
        self.by_key: dict[tuple, Job] = {}
        self.lock = threading.Lock()

    def active(self) -> int:
        return sum(job.status in ("queued", "running") for job in self.jobs.values())

    def submit(self, key: tuple, work: Work, kind: str = "explain") -> Job:
        """A job for `key`: the finished one when the same request was answered before, else a new one."""
        with self.lock:
            known = self.by_key.get(key)
            if known is not None and known.status in ("done", "queued", "running"):
                return known
            if self.active() >= self.limit:
                raise OnnxvizError(f"the server is busy: {self.active()} jobs are running or waiting (at most "
                                   f"{self.limit}); try again when one finishes, or cancel one")
            job = Job(uuid.uuid4().hex, key, kind=kind)
            self.jobs[job.id] = job
            self.by_key[key] = job
            self._forget_old()
        self.pool.submit(self._run, job, work)
        return job

    def _forget_old(self) -> None:
        """Drop the oldest finished jobs beyond `keep` (dicts keep insertion order), so a long-running server does
        not grow with every distinct request."""
        finished = [job for job in self.jobs.values() if job.done.is_set()]
        for job in finished[: max(0, len(finished) - self.keep)]:
            del self.jobs[job.id]
            if self.by_key.get(job.key) is job:
                del self.by_key[job.key]

    def _run(self, job: Job, work: Work) -> None:
        if job.cancel.is_set():
            job.status = "cancelled"
            job.done.set()
            return
        job.status = "running"

        def tick() -> None:
            job.ticks += 1

        try:
            with interrupts.job_scope(job.cancel, tick):
                job.result, job.value = work()
            job.status = "done"
        except interrupts.Cancelled:
            job.status = "cancelled"
        except OnnxvizError as exc:
            job.status, job.error = "failed", first_line(exc)
        except Exception as exc:  # a bug or a library's error: said in one line, the server stays up
            job.status, job.error = "failed", f"{type(exc).__name__}: {first_line(exc)}"
        finally:
            job.done.set()

    def cancel(self, job: Job) -> None:
        job.cancel.set()
        if job.status == "queued":
            job.status = "cancelled"

    def shutdown(self) -> None:
        for job in self.jobs.values():
            job.cancel.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
