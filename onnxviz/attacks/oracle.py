"""The Oracle: all an attack sees of the model. Images live in [0, 1] image space (HWC, the model's size
and channels); preprocessing is applied inside, every forward query is counted per image against the
attack's budget, and gradients are taken in image space (torch, or estimated through onnxruntime)."""

from __future__ import annotations

import numpy as np

from ..errors import MethodError, ModelError
from ..estimate import Estimator
from ..model import Model
from ..preprocess import Preprocessing
from ..progress import Bar
from ..runner import Runner
from .losses import Loss, objective
from .views import ClassView, DetectionView


def class_scores(model: Model, images: np.ndarray, pre: Preprocessing, view: str | ClassView | DetectionView,
                 batch_size: int, rows: np.ndarray | None = None) -> np.ndarray:
    """(N, classes) scores of [0, 1] images through onnxruntime (not counted: the engine's own passes): a
    classifier's output, or what a view reads (see views.py); `rows` say which image each row belongs to."""
    view = ClassView(view) if isinstance(view, str) else view
    outs = model.run(pre.apply(images).astype(model.input.batch_dtype), view.tensors, batch_size)
    if isinstance(view, ClassView) and outs[0].ndim != 2:
        raise ModelError(f"attacks need a classifier: output {view.tensor!r} has shape {outs[0].shape}, not "
                         "(N, classes); for a detector, attack one detection: --target det:K")
    return np.asarray(view(outs, np.arange(len(images)) if rows is None else rows), np.float32)


class QueryBudgetError(MethodError):
    """An attack asked for more forward passes than its budget allows (a bug in the attack)."""


class Oracle:
    """Queries on the batch under attack. `rows` always says which image each row of a batch belongs to."""

    def __init__(self, model: Model, images: np.ndarray, view: str | ClassView | DetectionView,
                 clean_logits: np.ndarray, labels: np.ndarray, targets: np.ndarray | None, *,
                 preprocessing: Preprocessing,
                 max_queries: int | None = None, estimator: Estimator | None = None, batch_size: int = 32,
                 seed: int = 0, progress: bool = True):
        self.model = model
        self.images = images
        self.view = ClassView(view) if isinstance(view, str) else view  # a classifier's output, or a detection
        self.clean_logits = clean_logits  # from the engine's clean forward: free, not counted
        self.labels = labels  # the class each image must leave (untargeted)
        self.targets = targets  # the class each image must reach, or None
        self.pre = preprocessing
        self.max_queries = max_queries
        self.estimator = estimator
        self.batch_size = batch_size
        self.seed = seed
        self.runner = Runner(model, batch_size, seed, progress)  # chunking, per-image seeds, progress, estimates
        self.queries = np.zeros(len(images), np.int64)
        self.gradients = np.zeros(len(images), np.int64)
        self.backends_used: set[str] = set()

    @property
    def targeted(self) -> bool:
        return self.targets is not None

    def rng(self, row: int) -> np.random.Generator:
        """A generator for image `row`, seeded by the run's seed and the image's bytes: a batch draws the
        same numbers as its images attacked one by one."""
        return self.runner.rng(self.images[row])

    def remaining(self, rows) -> np.ndarray:
        """Forward queries each image may still spend (a large number when there is no budget)."""
        left = np.iinfo(np.int64).max // 4 if self.max_queries is None else self.max_queries - self.queries
        return np.broadcast_to(left, self.queries.shape)[np.asarray(rows)]

    # -- forward queries (onnxruntime) ------------------------------------------------------------------
    def _forward(self, imgs: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return class_scores(self.model, imgs, self.pre, self.view, self.batch_size, rows)

    def logits(self, imgs: np.ndarray, rows) -> np.ndarray:
        """Class scores of a batch of images (N, classes); counts one query per row."""
        rows = np.asarray(rows, np.int64)
        if len(rows) != len(imgs):
            raise ValueError(f"{len(imgs)} images for {len(rows)} rows")
        if self.max_queries is not None:
            asked = np.bincount(rows, minlength=len(self.queries))
            over = np.flatnonzero(self.queries + asked > self.max_queries)
            if len(over):
                raise QueryBudgetError(f"the attack asked for more than max_queries={self.max_queries} forward "
                                       f"passes on image {int(over[0])}")
        np.add.at(self.queries, rows, 1)
        self.backends_used.add("onnxruntime")
        return self._forward(imgs, rows)

    def objective(self, z: np.ndarray, rows, loss: Loss) -> np.ndarray:
        """J per row, to ascend (see losses.py): away from the label, or towards the target."""
        rows = np.asarray(rows, np.int64)
        targets = None if self.targets is None else self.targets[rows]
        return objective(z.astype(np.float64), self.labels[rows], targets, loss)  # float64: saturated softmax

    def is_adversarial(self, z: np.ndarray, rows) -> np.ndarray:
        """Whether each row's prediction left its label (untargeted) or reached its target."""
        rows = np.asarray(rows, np.int64)
        pred = z.argmax(axis=1)
        if self.targets is not None:
            return pred == self.targets[rows]
        return pred != self.labels[rows]

    def decide(self, imgs: np.ndarray, rows) -> np.ndarray:
        """Labels-only access for decision-based attacks: is each image adversarial? (counted)"""
        return self.is_adversarial(self.logits(imgs, rows), rows)

    # -- gradients ---------------------------------------------------------------------------------------
    def gradient(self, imgs: np.ndarray, rows, loss: Loss) -> np.ndarray:
        """dJ/d(image) in image space: exact through torch, or estimated with the run's Estimator (then
        its queries count against the budget)."""
        rows = np.asarray(rows, np.int64)
        np.add.at(self.gradients, rows, 1)
        if self.estimator is not None:
            return self._estimated_gradient(imgs, rows, loss)
        import torch

        backend = self.model.gradient_backend()
        self.backends_used.add("torch")
        labels = self.labels
        targets = self.targets
        view = self.view

        def chunk(x: np.ndarray, r: np.ndarray) -> list[np.ndarray]:
            with backend.bounded(x.shape):
                xt = backend.to_tensor(x, requires_grad=True)
                z = view(backend.forward(xt, view.tensors), r)
                t = None if targets is None else torch.as_tensor(targets[r], device=z.device)
                j = objective(z, torch.as_tensor(labels[r], device=z.device), t, loss)
                (g,) = torch.autograd.grad(j.sum(), xt)
                return [g.detach().cpu().numpy()]

        x = self.pre.apply(imgs).astype(self.model.input.batch_dtype)
        with torch.enable_grad():
            (g,) = self.runner.chunked(chunk, (x, rows))
        return self.pre.pullback(g, imgs.shape[-1])

    def _estimated_gradient(self, imgs: np.ndarray, rows: np.ndarray, loss: Loss) -> np.ndarray:
        self.backends_used.add("onnxruntime (estimated gradient)")

        def j(k: int, batch: np.ndarray) -> np.ndarray:
            same = [int(rows[k])] * len(batch)
            return self.objective(self.logits(np.clip(batch, 0, 1), same), same, loss)

        if self.estimator is None:
            raise MethodError("no gradient estimator was set for this attack: use gradient='estimate'")
        # seeded by the image under attack (not by the current step's copy of it)
        return self.runner.estimated_gradients(imgs, j, self.estimator, rng_of=lambda k: self.rng(int(rows[k])),
                                               spatial=(0, 1))  # images are (H, W, C) here

    # -- progress ----------------------------------------------------------------------------------------
    def progress(self, total: int, desc: str, unit: str = "step") -> Bar:
        """A progress bar on stderr that only appears for work longer than a second."""
        return self.runner.bar(total, desc, unit)
