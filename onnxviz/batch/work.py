"""What one worker does, whatever the engine: load the model and prepare the methods once, then turn chunks of
items into manifest rows and the files that go with them (arrays, overlays), a failure per item never per run."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import registry
from ..backends import ort
from ..errors import GuessWarning, OnnxvizError
from ..explainer import Explainer
from ..guard import Limits
from ..io import encode_png, safe_filename
from ..model import load
from ..preprocess import Request
from ..reading import load_image
from ..targets import Target
from .source import Item


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, picklable: the same on every engine."""

    model: str
    methods: tuple[str, ...]
    options: dict[str, dict] = field(default_factory=dict)
    target: str = "top1"  # a class index, top1, softmax:K, or "label" (each item's label)
    layer: str | None = None
    batch_size: int = 32
    seed: int = 0
    save: frozenset[str] = frozenset({"npz"})
    device: str = "cpu"
    limits: Limits | None = None
    threads: int = 0  # per worker: onnxruntime and torch threads (0: their defaults)
    preprocessing: Request = field(default_factory=Request)  # over the model's own

    def describe(self) -> dict:
        """What identifies a run: a rerun with the same description resumes it."""
        described = {"methods": list(self.methods), "options": self.options, "target": self.target,
                     "layer": self.layer, "seed": self.seed}
        if self.preprocessing:  # absent when not asked for, so runs recorded before it existed still resume
            described["preprocessing"] = asdict(self.preprocessing)
        return described


def share_cores(threads: int) -> None:
    """In a worker process: onnxruntime sessions from now on, and torch (now or at import), use `threads`."""
    ort.set_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch at import
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


@contextmanager
def cores(threads: int):
    """share_cores for the duration of an in-process run, then the caller's settings back."""
    if not threads:
        yield
        return
    before = (ort.get_threads(), os.environ.get("OMP_NUM_THREADS"),
              sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None)
    share_cores(threads)
    try:
        yield
    finally:
        ort.set_threads(before[0])
        if before[1] is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before[1]
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(before[2] or os.cpu_count() or 1)


def stem(path: str) -> str:
    """A file stem for an item: its name, made safe, plus a hash of the full path (names repeat across folders)."""
    return f"{safe_filename(Path(path).stem, 'image')}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"


class Worker:
    def __init__(self, job: Job):
        self.job = job
        self.model = load(job.model, device=job.device, limits=job.limits, size=job.preprocessing.size)
        self.model.use_request(job.preprocessing)
        # an output no method can use is one error before any work, not a failed row per image
        wanted = Target.parse(job.target if job.target != "label" else "top1")
        if wanted.kind == "class" and wanted.region != "all":
            tensor, _ = self.model.score_tensor(wanted)
            self.model.run(self.model.probe_input(), (tensor,))
        self.explainers = {m: Explainer(self.model, m, layer=job.layer if registry.get(m).needs_layer else None,
                                        seed=job.seed, progress=False, **job.options.get(m, {}))
                           for m in job.methods}  # the chunk is the images; forward batches keep their default

    def run(self, chunk: list[Item]) -> list[tuple[dict, dict[str, bytes]]]:
        """(row, {relative path: bytes}) for every (item, method) of the chunk."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GuessWarning)  # the run said it once, and summary.html says it
            return self._run(chunk)

    def _run(self, chunk: list[Item]) -> list[tuple[dict, dict[str, bytes]]]:
        start = time.perf_counter()
        images, good, results = [], [], []
        for item in chunk:
            try:
                images.append(load_image([item.path], self.model)[0])
                good.append(item)
            except OnnxvizError as exc:
                results += [self._failed(item, m, exc) for m in self.job.methods]
        read_s = (time.perf_counter() - start) / max(len(chunk), 1)
        if good:
            for method in self.job.methods:
                results += self._explain(good, np.stack(images), method, read_s)
        return results

    def _explain(self, items: list[Item], x: np.ndarray, method: str, read_s: float) -> list:
        try:
            targets = self._targets(items)
            start = time.perf_counter()
            ex = self._call(x, method, targets)
            each = (time.perf_counter() - start) / len(items) + read_s
            return [self._row(item, ex, i, method, each) for i, item in enumerate(items)]
        except Exception as exc:  # one bad item must not take its chunk down: retry them one by one
            if len(items) > 1:
                return [r for i, item in enumerate(items) for r in self._explain([item], x[i:i + 1], method, read_s)]
            return [self._failed(items[0], method, exc)]

    def _targets(self, items: list[Item]):
        if self.job.target != "label":
            return self.job.target
        try:
            return [int(str(item.label)) for item in items]
        except (TypeError, ValueError):
            bad = next(item.label for item in items if not str(item.label).lstrip("-").isdigit())
            raise OnnxvizError(f"--target label needs integer labels, and this item's label is {bad!r}") from None

    def _call(self, x: np.ndarray, method: str, targets):
        return self.explainers[method].explain(x, targets)

    def _row(self, item: Item, ex, i: int, method: str, seconds: float) -> tuple[dict, dict[str, bytes]]:
        attr = ex.attributions[i]
        files, name = {}, f"{stem(item.path)}_{safe_filename(method)}"
        if "npz" in self.job.save:
            buf = io.BytesIO()
            np.savez(buf, attributions=attr, target=ex.targets[i], score=ex.scores[i], predicted=ex.predictions[i])
            files[f"arrays/{name}.npz"] = buf.getvalue()
        if "png" in self.job.save:
            files[f"overlays/{name}.png"] = encode_png(ex.overlay(i))
        row = {"path": item.path, "method": method, "status": "done", "error": None, "label": item.label,
               "predicted": int(ex.predictions[i]), "score": float(ex.scores[i]), "target": int(ex.targets[i]),
               "options": json.dumps(ex.options, sort_keys=True, default=str),
               "attr_min": float(attr.min()), "attr_max": float(attr.max()), "attr_mean": float(attr.mean()),
               "attr_abs_mean": float(np.abs(attr).mean()), "seconds": seconds,
               "array": next((k for k in files if k.endswith(".npz")), None),
               "overlay": next((k for k in files if k.endswith(".png")), None)}
        return row, files

    @staticmethod
    def _failed(item: Item, method: str, exc: BaseException) -> tuple[dict, dict]:
        text = str(exc) if isinstance(exc, OnnxvizError) else f"{type(exc).__name__}: {exc}"
        return {"path": item.path, "method": method, "status": "failed", "error": text[:2000], "label": item.label,
                "seconds": 0.0}, {}
