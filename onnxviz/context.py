"""Context: everything a method may ask of the model. Batching and backend choice live here."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm

from .backends.batching import run_batched
from .layers import Layer
from .model import Model
from .targets import Target, as_indices, pick

Progress = Callable[[int], None] | None


class Context:
    """Primitives over one model and one resolved target. All take batches of any size."""

    def __init__(self, model: Model, target: Target, targets: np.ndarray, layer: Layer | None = None,
                 batch_size: int = 32, seed: int = 0, progress: bool = True):
        self.model = model
        self.target = target
        self.targets = targets
        self.layer = layer
        self.batch_size = batch_size
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.show_progress = progress
        self.score_tensor, self.softmax = model.score_tensor(target)
        self.backends_used: set[str] = set()

    def _targets(self, targets, n: int) -> np.ndarray:
        return as_indices(self.targets if targets is None else targets, n)

    def _run(self, fn, arrays: tuple[np.ndarray, ...], on_chunk: Progress = None) -> list[np.ndarray]:
        return run_batched(fn, arrays, self.batch_size, self.model.input.fixed_batch, on_chunk)

    # -- forward (onnxruntime) --------------------------------------------------------------------------
    def outputs(self, xb: np.ndarray, names: tuple[str, ...] | list[str],
                on_chunk: Progress = None) -> list[np.ndarray]:
        """Any tensors of the graph for a batch."""
        self.backends_used.add("onnxruntime")
        names = tuple(names)
        return self._run(lambda x: self.model.ort.run(x, names), (xb,), on_chunk)

    def score(self, xb: np.ndarray, targets=None, on_chunk: Progress = None) -> np.ndarray:
        """Target score per sample; `targets` is an int, one index per sample, or None for ctx.targets."""
        (out,) = self.outputs(xb, (self.score_tensor,), on_chunk)
        return pick(out, self._targets(targets, len(xb)), self.softmax).astype(np.float32)

    def activations(self, xb: np.ndarray, layer: str | None = None) -> np.ndarray:
        """The layer's tensor (default: ctx.layer) for a batch."""
        return self.outputs(xb, (layer or self.layer.name,))[0]

    def score_from(self, layer: str, acts: np.ndarray, xb: np.ndarray, targets=None,
                   on_chunk: Progress = None) -> np.ndarray:
        """Target score when the network runs on from `layer` fed with `acts` (a cached subgraph)."""
        self.backends_used.add("onnxruntime")
        run = self.model.ort.run_from
        t = self._targets(targets, len(acts))
        outs = self._run(lambda a, x, tt: [pick(run(layer, a, x, (self.score_tensor,))[0], tt, self.softmax)],
                         (acts, xb, t), on_chunk)
        return outs[0].astype(np.float32)

    # -- gradients (torch) ------------------------------------------------------------------------------
    def grad(self, xb: np.ndarray, wrt: str = "input", targets=None, with_activations: bool = False,
             on_chunk: Progress = None):
        """d(target score)/d(input), or d/d(layer tensor) when `wrt` names a layer.

        With `with_activations`, returns (activations, gradients) of `wrt`.
        """
        import torch

        backend = self.model.gradient_backend()
        self.backends_used.add("torch")
        on_input = wrt == "input"

        def chunk(x: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
            xt = backend.to_tensor(x, requires_grad=True)  # weights are frozen: the graph hangs on x
            names = (self.score_tensor,) if on_input else tuple(dict.fromkeys((wrt, self.score_tensor)))
            outs = backend.forward(xt, names)
            source = xt if on_input else outs[0]
            score = pick(outs[-1], t, self.softmax)
            (g,) = torch.autograd.grad(score.sum(), source)
            return [source.detach().cpu().numpy(), g.detach().cpu().numpy()]

        with torch.enable_grad():
            acts, grads = self._run(chunk, (xb, self._targets(targets, len(xb))), on_chunk)
        return (acts, grads) if with_activations else grads

    # -- progress ---------------------------------------------------------------------------------------
    def progress(self, total: int, desc: str) -> tqdm:
        """A progress bar on stderr that only appears for work longer than a second."""
        return tqdm(total=total, desc=desc, delay=1.0, leave=False, file=sys.stderr, disable=not self.show_progress,
                    unit="input")
