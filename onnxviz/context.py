"""Context: everything a method may ask of the model. Batching and backend choice live here.

A Context is built complete by the Explainer (targets resolved on the clean input, region masks, clean scores,
the gradient source) and never changed afterwards; `for_samples` makes a new one for perturbed copies."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import backward
from .attention import global_attention, residual_stream
from .backward import BackwardRules
from .clean_forward import CleanForward
from .errors import MethodError
from .estimate import Estimator
from .heads import gap_linear_head
from .layers import Layer
from .layout import Layout, TokenLayout
from .progress import Bar
from .reading import load_image
from .runner import Progress, Runner
from .targets import ClassScore, DetectionScore, Score, Target
from .targets.scores import Tensor

if TYPE_CHECKING:  # a plugin imports Context; loading the model's code (and onnx, 0.6 s) waits for a model
    from .model import Model


@dataclass(frozen=True)
class Context:
    """Primitives over one model and one resolved target, for the batch being explained. Every primitive
    takes a batch whose rows line up with `targets`; for perturbed copies of the samples use `for_samples(rows)`."""

    model: Model
    target: Target
    targets: np.ndarray  # class index explained, per row
    layer: Layer | None = None
    batch_size: int = 32
    seed: int = 0
    show_progress: bool = True
    masks: np.ndarray | None = None  # (N, H, W) region weights for segmentation targets, else None
    clean_scores: np.ndarray | None = None  # target scores of the batch being explained (the clean forward)
    estimator: Estimator | None = None  # set when gradients are estimated through onnxruntime
    backends_used: set[str] = field(default_factory=set)  # a record shared with every for_samples view
    scorer: Score | None = None  # the resolved target (default: the class score of `target`, `targets`, `masks`)
    clean: CleanForward | None = None  # set when the engine's clean forward is left to the first torch pass
    runner: Runner = field(init=False, repr=False)  # chunking, per-sample seeds, progress, estimates: shared

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", np.asarray(self.targets, dtype=np.int64))
        if self.scorer is None:
            tensor, softmax = self.model.score_tensor(self.target)
            object.__setattr__(self, "scorer", ClassScore((tensor,), self.targets, softmax, self.masks))
        object.__setattr__(self, "runner", Runner(self.model, self.batch_size, self.seed, self.show_progress))

    @property
    def score_tensor(self) -> str:
        """The tensor the target is scored on (the logits behind a trailing Softmax, by default)."""
        return self.score_fn.tensors[0]

    @property
    def softmax(self) -> bool:
        return bool(getattr(self.score_fn, "softmax", False))

    @property
    def score_fn(self) -> Score:
        if self.scorer is None:  # __post_init__ always sets it
            raise MethodError("the Context has no resolved target: build it through onnxviz.Explainer")
        return self.scorer

    def for_samples(self, rows: np.ndarray | list[int]) -> Context:
        """A view whose row k scores the target of sample rows[k]: for batches of perturbed, noisy or
        interpolated copies. It shares the record of backends used."""
        rows = np.asarray(rows, dtype=np.int64)
        return dataclasses.replace(self, targets=self.targets[rows], clean_scores=None, clean=None,
                                   masks=None if self.masks is None else self.masks[rows],
                                   scorer=self.score_fn.rows(rows))

    def probabilities(self) -> Context:
        """A view that scores the softmax probability of the target class over the score tensor's class axis
        instead of its logit (what Recipro-CAM reads); a view already scoring probabilities is returned as is."""
        fn = self.score_fn
        if not isinstance(fn, ClassScore):
            raise MethodError(f"this method reads class probabilities; the target is a {type(fn).__name__}: explain "
                              "a class, or pass the method's option that keeps the target's own score")
        return self if fn.softmax else dataclasses.replace(self, scorer=dataclasses.replace(fn, softmax=True),
                                                           clean_scores=None, clean=None)

    def scoring(self, score: Score) -> Context:
        """A view whose target score is `score` (a unit inside the network, say) instead of the target's."""
        return dataclasses.replace(self, scorer=score, clean_scores=None, clean=None)

    def sample_rng(self, sample: np.ndarray) -> np.random.Generator:
        """A generator seeded by the run's seed and the sample's bytes: random draws that depend on the
        image, not on its position in the batch (so a batch equals its samples run one by one)."""
        return self.runner.rng(sample)

    def _run(self, fn: Callable[..., list[np.ndarray]], arrays: tuple[np.ndarray, ...], on_chunk: Progress = None,
             names: tuple[str, ...] | None = None) -> list[np.ndarray]:
        return self.runner.chunked(fn, arrays, on_chunk, names)

    def _rows(self, xb: np.ndarray, primitive: str) -> np.ndarray:
        if len(xb) != len(self.targets):
            raise MethodError(f"ctx.{primitive} got a batch of {len(xb)} inputs for {len(self.targets)} targets: "
                              "every row needs its target. For perturbed, noisy or interpolated copies of the samples "
                              f"use ctx.for_samples(rows).{primitive}(batch), where rows[k] is the sample that row k "
                              "copies (e.g. [i] * len(batch))")
        return np.arange(len(xb))

    def _pick(self, outs: Sequence[Tensor], rows: np.ndarray) -> Tensor:
        return self.score_fn(outs, rows)

    # -- forward (onnxruntime) --------------------------------------------------------------------------
    def outputs(self, xb: np.ndarray, names: tuple[str, ...] | list[str],
                on_chunk: Progress = None) -> list[np.ndarray]:
        """Any tensors of the graph for a batch."""
        self.backends_used.add("onnxruntime")
        names = tuple(names)
        return self._run(lambda x: self.model.ort.run(x, names), (xb,), on_chunk, names)

    def score(self, xb: np.ndarray, on_chunk: Progress = None) -> np.ndarray:
        """Target score per row."""
        rows = self._rows(xb, "score")
        self.backends_used.add("onnxruntime")
        run, names = self.model.ort.run, self.score_fn.tensors
        outs = self._run(lambda x, r: [self._pick(run(x, names), r)], (xb, rows), on_chunk)
        return outs[0].astype(np.float32)

    def similarity(self, xb: np.ndarray, on_chunk: Progress = None) -> np.ndarray:
        """Per row, D-RISE's similarity of the best-matching detection to the explained one (detection targets)."""
        rows = self._rows(xb, "similarity")
        fn = self.score_fn
        if not isinstance(fn, DetectionScore):
            raise MethodError(f"this method explains a detection; the target is a {type(fn).__name__}: use det:K, "
                              "box:x0,y0,x1,y1 or class:K@all on a detector")
        self.backends_used.add("onnxruntime")
        run, names = self.model.ort.run, fn.tensors
        outs = self._run(lambda x, r: [fn.similarity(run(x, names), r)], (xb, rows), on_chunk)
        return outs[0].astype(np.float32)

    @property
    def layout(self) -> Layout:
        """Where the model input's channel and spatial axes are: ask it instead of branching on a name."""
        return self.model.input.axes

    def input_size(self, xb: np.ndarray) -> tuple[int, int]:
        """(height, width) of a batch in the model's layout."""
        return self.layout.size(xb.shape)

    def over_channels(self, maps: np.ndarray) -> np.ndarray:
        """(N, H, W) maps with a channel axis added where the model's layout has it, to scale input batches."""
        return self.layout.over_channels(maps)

    def to_pixels(self, xb: np.ndarray) -> np.ndarray:
        """A batch as (N, H, W, C), whatever the model's layout (`ctx.layout.from_channels_last` goes back)."""
        return self.layout.to_channels_last(xb)

    def image(self, path: str) -> np.ndarray:
        """An image file as a (1, ...) batch in the model's input space (its preprocessing and size)."""
        return load_image(path, self.model)

    def explained_scores(self, xb: np.ndarray) -> np.ndarray:
        """Target scores of `xb`, the batch this context explains: the engine's clean forward, not a new one."""
        if self.clean_scores is not None:
            return self.clean_scores
        if self.clean is not None and self.clean.outputs is not None and self.clean.matches(xb):
            return self._pick(self.clean.outputs, self._rows(xb, "explained_scores")).astype(np.float32)
        return self.score(xb)

    def _layer_name(self, layer: str | None, primitive: str) -> str:
        if layer is not None:
            return layer
        if self.layer is None:
            raise MethodError(f"ctx.{primitive} needs a layer: pass one by name, or declare needs_layer = True on the "
                              "method so the engine resolves --layer (default: the last spatial layer)")
        return self.layer.name

    def activations(self, xb: np.ndarray, layer: str | None = None) -> np.ndarray:
        """The layer's tensor (default: ctx.layer) for a batch."""
        return self.outputs(xb, (self._layer_name(layer, "activations"),))[0]

    def score_from(self, layer: str | Sequence[str], acts: np.ndarray | Sequence[np.ndarray], xb: np.ndarray,
                   on_chunk: Progress = None) -> np.ndarray:
        """Target score per row when the network runs on from `layer` fed with `acts` (a cached subgraph;
        `xb` feeds any branch that bypasses the layer). Several layers: one array of activations each."""
        rows = self._rows(xb, "score_from")
        self.backends_used.add("onnxruntime")
        layers, arrays = ((layer,), (acts,)) if isinstance(layer, str) else (tuple(layer), tuple(acts))
        run, names, k = self.model.ort.run_from, self.score_fn.tensors, len(layers)
        outs = self._run(lambda *a: [self._pick(run(layers, a[:k], a[k], names), a[k + 1])],
                         (*arrays, xb, rows), on_chunk)
        return outs[0].astype(np.float32)

    def outputs_from(self, layer: str, acts: np.ndarray, xb: np.ndarray, names: Sequence[str],
                     on_chunk: Progress = None) -> list[np.ndarray]:
        """Any tensors after `layer` when the network runs on from it fed with `acts` (rows of `xb` feed branches
        that bypass the layer)."""
        self.backends_used.add("onnxruntime")
        run, wanted = self.model.ort.run_from, tuple(names)
        return self._run(lambda a, x: run((layer,), (a,), x, wanted), (acts, xb), on_chunk, wanted)

    # -- gradients (torch) ------------------------------------------------------------------------------
    def grad(self, xb: np.ndarray, wrt: str = "input", with_activations: bool = False, relu: str = "standard",
             on_chunk: Progress = None, *, rules: str | BackwardRules | None = None,
             reference: np.ndarray | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """d(target score)/d(input), or d/d(layer tensor) when `wrt` names a layer.

        rules: the backward rules (`onnxviz.backward`: "guided", "deconv", DeepLift(), Lrp(...)); `relu` is the
        older name for the first two. Rules that compare with a reference (DeepLIFT) take `reference`, one row per
        row of `xb`. With `with_activations`, returns (activations, gradients) of `wrt`.
        """
        chosen = backward.resolve(rules if rules is not None else relu)
        needs = chosen is not None and chosen.needs_reference
        if needs != (reference is not None):
            raise MethodError(f"ctx.grad: {type(chosen).__name__ if needs else 'these rules'} "
                              f"{'need' if needs else 'take no'} reference rows (reference=)")
        if reference is not None and reference.shape != xb.shape:
            raise MethodError(f"ctx.grad: the reference has shape {reference.shape}, the batch {xb.shape}")
        if self.estimator is not None:
            return self._estimated_grad(xb, wrt, with_activations, chosen, on_chunk)
        acts, grads = self._torch_grads(xb, (wrt,), chosen, on_chunk, "grad", reference)
        return (acts, grads) if with_activations else grads

    def layer_grads(self, xb: np.ndarray, layers: Sequence[str],
                    on_chunk: Progress = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """(activations, d(target score)/d(activations)) of several layers, from one backward pass per chunk."""
        if self.estimator is not None:
            raise MethodError("estimated gradients cover the input gradient only; layer gradients need the torch "
                              "backend")
        flat = self._torch_grads(xb, tuple(layers), None, on_chunk, "layer_grads")
        return list(zip(flat[0::2], flat[1::2], strict=True))

    def readout_grads(self, xb: np.ndarray, pairs: Sequence[tuple[str, str]], head: str,
                      on_chunk: Progress = None) -> list[np.ndarray]:
        """Per (wrt, readout) pair: d s / d wrt, where s is the target score that the network's head (the graph from
        tensor `head` on) gives when fed `readout` in place of `head`: the score an intermediate tensor would get
        (LeGrad's per-layer readout). One forward pass, one backward per pair."""
        if self.estimator is not None:
            raise MethodError("readout gradients need the torch backend, not estimated gradients")
        rows = self._rows(xb, "readout_grads")
        self._check_differentiable()
        backend = self.model.gradient_backend()
        head_backend = self.model.torch_from(head, self.score_fn.tensors)
        import torch

        self.backends_used.add("torch")
        names = tuple(dict.fromkeys(name for pair in pairs for name in pair))

        def chunk(x: np.ndarray, r: np.ndarray) -> list[np.ndarray]:
            with backend.bounded(x.shape):
                outs = dict(zip(names, backend.forward(backend.to_tensor(x, requires_grad=True), names), strict=True))
                grads = []
                for wrt, readout in pairs:
                    score = self._pick(list(head_backend.forward(outs[readout], self.score_fn.tensors)), r).sum()
                    (g,) = torch.autograd.grad(score, outs[wrt], retain_graph=True, allow_unused=True)
                    grads.append((torch.zeros_like(outs[wrt]) if g is None else g).detach().cpu().numpy())
                return grads

        with torch.enable_grad():
            return self._run(chunk, (xb, rows), on_chunk)

    def _check_differentiable(self) -> None:
        problem = self.score_fn.gradient_problem()
        if problem:
            raise MethodError(f"this target has no gradient: {problem}")

    def _torch_grads(self, xb: np.ndarray, sources: tuple[str, ...], rules: BackwardRules | None,
                     on_chunk: Progress, primitive: str, reference: np.ndarray | None = None) -> list[np.ndarray]:
        """[tensor, gradient] per source ("input" or a layer name), flat, for the batch."""
        rows = self._rows(xb, primitive)
        self._check_differentiable()
        backend = self.model.gradient_backend()  # first: without the torch extra it says how to install it
        import torch

        self.backends_used.add("torch")
        layers = tuple(s for s in sources if s != "input")
        scored = self.score_fn.tensors
        names = tuple(dict.fromkeys((*layers, *scored)))
        clean = self.clean if self.clean is not None and self.clean.wants(xb) else None

        def chunk(x: np.ndarray, r: np.ndarray, *ref: np.ndarray) -> list[np.ndarray]:
            with backend.bounded(x.shape):  # forward and backward share one memory budget
                if ref:  # the rules' reference pass first: they keep what they need of it
                    backend.record_reference(backend.to_tensor(ref[0]), names, rules)
                xt = backend.to_tensor(x, requires_grad=True)  # weights are frozen: the graph hangs on x
                outs = dict(zip(names, backend.forward(xt, names, rules), strict=True))
                tensors = [xt if s == "input" else outs[s] for s in sources]
                score = self._pick([outs[t] for t in scored], r).sum()
                grads = torch.autograd.grad(score, tensors, allow_unused=True)  # unused: no effect on the score
                pairs = [(t, torch.zeros_like(t) if g is None else g) for t, g in zip(tensors, grads, strict=True)]
                seen = [outs[t] for t in scored] if clean is not None else []  # rules change backwards only
                return [a.detach().cpu().numpy() for a in [*(a for pair in pairs for a in pair), *seen]]

        arrays = (xb, rows) if reference is None else (xb, rows, reference)
        with torch.enable_grad():
            flat = self._run(chunk, arrays, on_chunk)
        if clean is not None:
            flat, clean.outputs = flat[:2 * len(sources)], flat[2 * len(sources):]
        return flat

    def _estimated_grad(self, xb: np.ndarray, wrt: str, with_activations: bool, rules: BackwardRules | None,
                        on_chunk: Progress) -> np.ndarray:
        if wrt != "input" or rules is not None or with_activations:
            raise MethodError("estimated gradients cover the input gradient only; this method needs layer "
                              "gradients or modified backward rules, which need the torch backend")
        self._rows(xb, "grad")
        self.backends_used.add("onnxruntime (estimated gradient)")
        if self.estimator is None:
            raise MethodError("gradients are not estimated in this run: ctx.grad uses the torch backend")
        estimator = self.estimator
        if np.issubdtype(self.model.input.dtype, np.integer) and estimator.sigma < 1:
            estimator = dataclasses.replace(estimator, sigma=1.0)  # integer pixels are fed in whole steps
        return self.runner.estimated_gradients(xb, lambda i, batch: self.for_samples([i] * len(batch)).score(batch),
                                               estimator, on_chunk)

    # -- graph facts ------------------------------------------------------------------------------------
    def linear_head(self, layer: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(W, b) of a global-average-pooling + linear head after `layer`: logits = W @ mean_hw(A) + b."""
        return gap_linear_head(self.model, self._layer_name(layer, "linear_head"), self.score_tensor)

    def node_input(self, layer: str | None = None) -> str:
        """The first input tensor of the node that produces the layer (default: ctx.layer)."""
        name = self._layer_name(layer, "node_input")
        node = next((n for n in self.model.proto.graph.node if name in n.output), None)
        if node is None or not node.input:
            raise MethodError(f"{name} is not produced by a node with an input (a graph input or a constant)")
        return node.input[0]

    def residual_stream(self) -> list[str]:
        """The token tensor leaving each transformer block (the next block's input; after the last, the last token
        Add before the head), in block order."""
        return residual_stream(self.model.layers, self.model.proto, self.model.source)

    def attention(self) -> tuple[list[str], TokenLayout]:
        """The model's global self-attention matrices (Softmax over all tokens), in block order, and the token
        layout (prefix tokens, patch grid) they index."""
        layers, axes = global_attention(self.model.layers, self.model.source)
        return [layer.name for layer in layers], axes

    # -- progress ---------------------------------------------------------------------------------------
    def progress(self, total: int, desc: str) -> Bar:
        """A progress bar on stderr that only appears for work longer than a second."""
        return self.runner.bar(total, desc)
