"""The Ray engine: Ray Data map_batches over an actor pool whose actors each hold a Worker (the loaded model and
prepared methods), GPUs assigned per actor when the job runs on CUDA. Results stream back to the driver, which
writes the same manifest and files as the local engine."""

from __future__ import annotations

import dataclasses
import logging
import pickle
from collections.abc import Iterable, Iterator

import numpy as np

from ..errors import DependencyError
from .source import Item
from .work import Job, Worker, share_cores


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise DependencyError("--engine ray needs Ray Data: pip install 'onnxviz[ray]' (or pip install 'ray[data]')"
                              ) from None
    return ray


class _Actor:
    def __init__(self, job: Job):
        share_cores(job.threads)
        self.worker = Worker(job)

    def __call__(self, batch: dict) -> dict:
        """One row per chunk, so Ray runs exactly the chunks the local engine would (identical numerics)."""
        out = []
        for paths, labels in zip(batch["paths"], batch["labels"], strict=True):
            chunk = [Item(p, None if lab == "" else lab) for p, lab in zip(paths, labels, strict=True)]
            out.append(pickle.dumps(self.worker.run(chunk)))
        return {"result": np.array(out, dtype=object)}


def run_ray(job: Job, chunks: Iterable[list[Item]], workers: int, address: str | None) -> Iterator[list]:
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                 **({} if address else {"num_cpus": max(workers, 1)}))
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver shows one bar for the whole run
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        yield from _map(ray, job, chunks, workers)
    finally:
        if started:  # a cluster we started for this run goes with it
            ray.shutdown()


def _map(ray, job: Job, chunks: Iterable[list[Item]], workers: int) -> Iterator[list]:
    rows = [{"paths": [i.path for i in chunk], "labels": [i.label or "" for i in chunk]} for chunk in chunks]
    if not rows:
        return
    gpus = 1 if job.device == "cuda" and ray.cluster_resources().get("GPU", 0) >= 1 else 0
    data = ray.data.from_items(rows, override_num_blocks=len(rows))
    actor_job = job if job.threads else dataclasses.replace(job, threads=1)  # an actor holds one CPU
    results = data.map_batches(_Actor, fn_constructor_args=(actor_job,), batch_size=1, batch_format="numpy",
                               compute=ray.data.ActorPoolStrategy(size=max(workers, 1)), num_gpus=gpus,
                               num_cpus=1 if not gpus else 0)
    for batch in results.iter_batches(batch_size=1, batch_format="numpy", prefetch_batches=1):
        yield from (pickle.loads(blob) for blob in batch["result"])
