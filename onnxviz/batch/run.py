"""onnxviz.batch: explain every image of a folder, glob or list with one or more methods, resumably."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import registry
from ..errors import OptionError, OutputError
from ..guard import Limits
from ..io import ensure_writable, write_bytes_atomic
from ..method import Method
from ..preprocess import Request
from ..reading import warn_assumptions
from ..staging import remove_leftovers
from . import manifest
from .local import run_local
from .ray_engine import run_ray
from .source import Item, items
from .summary import write_summary
from .work import Job, Worker, cores

ENGINES = ("local", "ray")


@dataclass
class BatchResult:
    out: Path
    manifest: Path
    done: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    rows: list[dict] = field(default_factory=list)
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (seconds, rows written) after each chunk
    assumptions: list[str] = field(default_factory=list)  # what was guessed about feeding the model (said once)

    def summary(self) -> str:
        return (f"done {self.done} · failed {self.failed} · skipped {self.skipped} in {self.seconds:.1f} s "
                f"-> {self.manifest}")


def _explanations_only(job: Job) -> None:
    """Refused before the model loads (options, layer and the model itself are checked by the first Worker)."""
    for name in job.methods:
        if not issubclass(registry.get(name), Method):
            raise OptionError(f"{name} is not an explanation method; onnxviz batch runs attribution and CAM methods")


def _start(out: Path, job: Job, model_hash: str, overwrite: bool) -> manifest.Journal:
    """A fresh run, or the resumption of the run recorded in out/run.json (the same model and settings)."""
    ensure_writable(out)
    remove_leftovers(out.absolute().parent, out.name)  # .part files of a writer killed in an earlier run
    described = json.loads(json.dumps({"model_hash": model_hash, **job.describe()}))  # as run.json reads back
    recorded = out / "run.json"
    if recorded.exists() and not overwrite:
        before = json.loads(recorded.read_text())
        if before != described:
            changed = sorted(k for k in described if before.get(k) != described[k])
            raise OutputError(f"{out} holds a batch run with other settings ({', '.join(changed)} differ); use "
                              "another --out, or --overwrite to start it again")
    elif out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"{out} already holds files that are not a batch run; choose another --out or --overwrite")
    if overwrite:
        for name in (manifest.JOURNAL, "manifest.parquet", "summary.html", "run.json", "arrays", "overlays"):
            target = out / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    write_bytes_atomic(recorded, json.dumps(described, indent=2).encode())
    return manifest.Journal(out)


def _chunks(todo: Iterator[Item], size: int) -> Iterator[list[Item]]:
    while chunk := list(itertools.islice(todo, size)):
        yield chunk


def batch(model: str, source: str, methods: str | list[str] = "gradcam", out: str = "batch", *,
          engine: str = "local", workers: int = 1, save: str | set[str] = "npz", target: str = "top1",
          layer: str | None = None, options: dict[str, dict] | None = None, batch_size: int = 16, seed: int = 0,
          device: str = "cpu", retry_failed: bool = False, overwrite: bool = False, ray_address: str | None = None,
          limits: Limits | None = None, threads: int | None = None, progress: bool = True,
          preprocessing: Request | None = None) -> BatchResult:
    """Explain every image of `source` (folder, glob, CSV / Parquet / text list) with `methods` into `out`:
    manifest.jsonl (+ manifest.parquet with pyarrow), arrays/*.npz, overlays/*.png (save "png"), summary.html.
    Rerunning the same call skips what the manifest already holds; `retry_failed` runs failed items again.
    threads: onnxruntime / torch threads per worker (default: all cores for one local worker, cores / workers
    for several, 1 per Ray actor). preprocessing: a preprocess.Request over the model's own (a preset, mean, std)."""
    if engine not in ENGINES:
        raise OptionError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    save = set(save.split(",")) if isinstance(save, str) else set(save)
    if not save <= {"npz", "png", "none"}:
        raise OptionError(f"--save takes npz, png (comma-separated) or none, not {','.join(sorted(save))}")
    names = [methods] if isinstance(methods, str) else list(dict.fromkeys(methods))
    job = Job(str(Path(model).resolve()), tuple(names), options or {}, str(target), layer, batch_size, seed,
              frozenset(save - {"none"}), device, limits, threads or 0, preprocessing or Request())
    _explanations_only(job)
    with cores(job.threads if workers <= 1 and engine == "local" else 0):
        return _run(job, source, Path(out), engine, workers, retry_failed, overwrite, ray_address, progress)


def _run(job: Job, source, out: Path, engine: str, workers: int, retry_failed: bool, overwrite: bool,
         ray_address: str | None, progress: bool) -> BatchResult:
    first = Worker(job)  # the model, layer and methods checked here: a bad setting is one error, not N failed rows
    names = job.methods
    journal = _start(out, job, first.model.hash, overwrite)
    previous = manifest.latest(journal.read())
    keep = {k for k, r in previous.items() if r["status"] == "done" or not retry_failed}
    result = BatchResult(out, out / manifest.JOURNAL, assumptions=first.model.assumptions())
    warn_assumptions(first.model, stacklevel=4)  # once here, not once per worker and chunk
    inside = str(out.resolve()) + os.sep
    listed = [i for i in items(source) if not i.path.startswith(inside)]  # never our own overlays
    todo = [i for i in listed if any((i.path, m) not in keep for m in names)]
    result.skipped = (len(listed) - len(todo)) * len(names)
    start = time.perf_counter()
    bar = _bar(len(todo) * len(names), progress)
    try:
        for rows in _engine(engine, first, _chunks(iter(todo), job.batch_size), workers, ray_address):
            fresh = [(r, files) for r, files in rows if (r["path"], r["method"]) not in keep]
            for _, files in fresh:
                for rel, data in files.items():
                    write_bytes_atomic(out / rel, data)
            journal.append([r for r, _ in fresh])
            for row, _ in fresh:
                previous[(row["path"], row["method"])] = row
                result.done += row["status"] == "done"
                result.failed += row["status"] == "failed"
            bar.update(len(fresh))
            result.timeline.append((time.perf_counter() - start, result.done + result.failed))
    finally:
        bar.close()
        journal.close()
        result.seconds = time.perf_counter() - start
        result.rows = list(previous.values())
        result.manifest = manifest.finalize(out, result.rows)
        write_summary(out, result)
    return result


def _engine(engine: str, first: Worker, chunks, workers: int, ray_address: str | None):
    if engine == "ray":
        return run_ray(first.job, chunks, workers, ray_address)
    return run_local(first, chunks, workers)


def _bar(total: int, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, disable=not progress, unit="item", desc="batch", dynamic_ncols=True)
