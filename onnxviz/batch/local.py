"""The local engine: chunks of items through a pool of worker processes, each holding its own loaded model and
prepared methods (created once per process, never per image); one process runs in the caller itself."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from ..errors import OnnxvizError
from .source import Item
from .work import Job, Worker, share_cores

_WORKER: Worker | None = None


def _init(job: Job) -> None:
    global _WORKER
    share_cores(job.threads)
    _WORKER = Worker(job)


def _run(chunk: list[Item]):
    if _WORKER is None:
        raise OnnxvizError("a batch worker process ran a chunk before it was started")
    return _WORKER.run(chunk)


def run_local(first: Worker, chunks: Iterable[list[Item]], workers: int) -> Iterator[list]:
    """Results chunk by chunk as they finish; at most two chunks per worker are in flight (bounded memory). One
    worker runs in this process (`first`, already loaded); more are processes holding their own model."""
    if workers <= 1:
        yield from (first.run(chunk) for chunk in chunks)
        return
    job = first.job
    if not job.threads:
        job = dataclasses.replace(job, threads=max(1, (os.cpu_count() or workers) // workers))
    context = multiprocessing.get_context("spawn")  # fork would copy onnxruntime and torch thread state
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init, initargs=(job,)) as pool:
        pending = set()
        chunks = iter(chunks)
        try:
            for chunk in chunks:
                pending.add(pool.submit(_run, chunk))
                if len(pending) >= 2 * workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        except BaseException:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
