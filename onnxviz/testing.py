"""`check_method`: the contract every method must keep, shipped for plugin authors.

    from onnxviz.testing import check_method
    def test_my_method():
        check_method("my_method")
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import onnx

from . import registry
from .attacks import Attack
from .attacks.run import attack
from .bundled import demo_images, demo_model_path
from .errors import MethodError, TargetError
from .evaluation.sanity import parametric_layers, randomized
from .explainer import Explainer
from .method import Method
from .model import Model, load
from .plugin import Plugin
from .reading import load_image
from .synthesis import Synthesis
from .synthesis.run import synthesize
from .targets import Target


def check_method(method: str | type[Plugin], /, model: Model | None = None, x: np.ndarray | None = None,
                 layer: str | None = None, atol: float = 1e-5, target: str | None = None,
                 other_target: str | None = None, **options: Any) -> dict[str, Any]:
    """Run a plugin of any kind and fail with AssertionError unless it keeps its kind's contract. For explanation
    methods: the right shape and dtype, finite values, the same result twice with one seed, and a batch equal to
    its samples run one by one. Attacks get `check_attack`, synthesis methods `check_synthesis`.

    Defaults: the bundled digits model and three bundled images, each explaining its top class. A method for another
    kind of target (a detection: det:0) is checked with `target`, and `other_target` for "it follows the target".
    Returns what was checked.
    """
    cls = registry.get(method) if isinstance(method, str) else registry.validate(method, repr(method))
    model = model or load(demo_model_path())
    if issubclass(cls, Attack):
        images = demo_images()[:3] if x is None else x
        return check_attack(cls, model, images, atol, **options)
    if issubclass(cls, Synthesis):
        return check_synthesis(cls, model, demo_images()[:2], **options)
    if not issubclass(cls, Method):
        raise MethodError(f"{cls.name} is a {cls.kind or 'plugin'} of no kind the contract kit knows")
    x = load_image(demo_images()[:3], model) if x is None else x
    explainer = Explainer(model, cls, layer=layer, seed=0, progress=False, **options)

    def run(batch: np.ndarray, wanted) -> np.ndarray:
        return explainer.explain(batch, wanted).attributions

    def same(rows: slice | None = None):  # the target each check explains again: the spec, or the classes found
        if target is not None:
            return target
        return first.targets.tolist() if rows is None else first.targets[rows].tolist()

    first = explainer.explain(x, target)
    a = first.attributions
    expected = x.shape if cls.output == "pixels" else (len(x), *model.input_size)
    _require(a.shape == expected, f"{cls.name}: attributions have shape {a.shape}, expected {expected}")
    _require(a.dtype == np.float32, f"{cls.name}: attributions are {a.dtype}, expected float32")
    _require(bool(np.isfinite(a).all()), f"{cls.name}: attributions contain NaN or inf")
    again = run(x, same())
    _require(np.allclose(a, again, atol=atol), f"{cls.name}: two runs with seed 0 differ by "
             f"{np.abs(a - again).max():.3g}")
    singles = np.concatenate([run(x[i : i + 1], same(slice(i, i + 1))) for i in range(len(x))])
    _require(np.allclose(a, singles, atol=atol, rtol=1e-4), f"{cls.name}: a batch differs from its samples run one "
             f"by one by {np.abs(a - singles).max():.3g}")
    checked = ["shape", "dtype", "finite", "deterministic", "batch = samples"]
    if cls.target_dependent and (target is None or other_target is not None):
        if target is None:
            classes = int(np.prod(model.run(x[:1], (model.score_tensor(first_target(first))[0],))[0].shape[1:2]))
            other = run(x, ((first.targets + 1) % max(classes, 2)).tolist())
        else:
            other = run(x, other_target)
        _require(_differs(a, other), f"{cls.name}: the attributions do not change when the target changes (a map "
                 "that ignores the model's output); a class-agnostic method declares target_dependent = False")
        checked.append("follows the target")
    if cls.model_dependent:
        scrambled = load(randomized(model.proto, {n for _, names in parametric_layers(model) for n in names},
                                    np.random.default_rng(7)), layout=model.input.layout)
        try:
            other = Explainer(scrambled, cls, layer=layer, seed=0, progress=False, **options).explain(
                x, same()).attributions
        except TargetError:  # the randomized detector no longer finds the detection: the model clearly matters
            other = np.full_like(a, np.nan)
        _require(not np.isfinite(other).all() or _differs(a, other), f"{cls.name}: the attributions do not change "
                 "when the model's weights are randomized (a map that ignores the model); a baseline declares "
                 "model_dependent = False")
        checked.append("follows the weights")
    if model.input.layout and not _differs(a, explainer_with_seed(model, cls, layer, options, 1).explain(
            x, same()).attributions):  # seeded draws depend on the layout: deterministic ones only
        transposed = load(transposed_copy(model), layout="NCHW" if model.input.layout == "NHWC" else "NHWC")
        moved = _to_layout(x, model.input.layout, transposed.input.layout)
        got = Explainer(transposed, cls, layer=layer, seed=0, progress=False, **options).explain(
            moved, same()).attributions
        back = _to_layout(got, transposed.input.layout, model.input.layout) if cls.output == "pixels" else got
        _require(np.allclose(a, back, atol=max(atol, 1e-4 * float(np.abs(a).max())), rtol=1e-3),
                 f"{cls.name}: the same model laid out {transposed.input.layout} gives another map (differs by "
                 f"{np.abs(a - back).max():.3g}): an axis is read in the wrong layout; ask ctx.layout")
        checked.append(f"same map in {transposed.input.layout}")
    return {"method": cls.name, "shape": a.shape, "targets": first.targets.tolist(), "backend": first.backend,
            "checks": checked}


def first_target(ex) -> Target:
    return Target.parse(ex.target) if ex.target != "top1" else Target()


def explainer_with_seed(model: Model, cls: type[Method], layer: str | None, options: dict, seed: int) -> Explainer:
    return Explainer(model, cls, layer=layer, seed=seed, progress=False, **options)


def _differs(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two attribution arrays differ by more than float noise (relative to their scale)."""
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), 1e-12)
    return bool(np.abs(a - b).max() > 1e-4 * scale)


def _to_layout(x: np.ndarray, source: str, target: str) -> np.ndarray:
    if source == target:
        return x
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1) if source == "NCHW" else x.transpose(0, 3, 1, 2))


def transposed_copy(model: Model) -> onnx.ModelProto:
    """The same network taking its input in the other layout: a Transpose in front of the original graph."""
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    graph = proto.graph
    value = next(v for v in graph.input if v.name == model.input.name)
    dims = list(value.type.tensor_type.shape.dim)
    perm_in, perm_back = ((0, 2, 3, 1), [0, 3, 1, 2]) if model.input.layout == "NCHW" else ((0, 3, 1, 2), [0, 2, 3, 1])
    moved = onnx.helper.make_tensor_value_info(f"{value.name}_moved", value.type.tensor_type.elem_type,
                                               [dims[k].dim_value or dims[k].dim_param or None for k in perm_in])
    graph.node.insert(0, onnx.helper.make_node("Transpose", [moved.name], [value.name], perm=perm_back))
    graph.input.remove(value)
    graph.input.insert(0, moved)
    return proto


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check_attack(method: str | type[Attack], /, model: Model, images, atol: float = 1e-6,
                 **options: Any) -> dict[str, Any]:
    """The attack contract: adversarials of the images' shape in [0, 1], the same twice with one seed, a batch
    equal to its images attacked one by one, and queries within `max_queries` (cut to 200 unless given)."""
    cls = registry.get(method) if isinstance(method, str) else method
    if "max_queries" in {f.name for f in fields(cls.Options)}:
        options.setdefault("max_queries", 200)

    def run(batch):
        return attack(model, batch, cls, seed=0, progress=False, **options)

    first = run(images)
    adv = first.adversarial
    _require(adv.shape == first.images.shape and adv.dtype == np.float32,
             f"{cls.name}: adversarials have shape {adv.shape} {adv.dtype}, expected {first.images.shape} float32")
    _require(bool(np.isfinite(adv).all()) and adv.min() >= 0 and adv.max() <= 1,
             f"{cls.name}: adversarials leave the pixel range [0, 1]")
    budget = options.get("max_queries")
    _require(budget is None or bool((first.queries <= budget).all()), f"{cls.name}: spent more than {budget} queries")
    again = run(images).adversarial
    _require(np.allclose(adv, again, atol=atol), f"{cls.name}: two runs with seed 0 differ")
    singles = np.concatenate([run(first.images[i : i + 1]).adversarial for i in range(len(adv))])
    _require(np.allclose(adv, singles, atol=atol), f"{cls.name}: a batch differs from its images attacked one by one "
             f"by {np.abs(adv - singles).max():.3g}")
    return {"method": cls.name, "shape": adv.shape, "success": first.success.tolist(), "backend": first.backend}


def check_synthesis(method: str | type[Synthesis], /, model: Model, images, objective: str = "class:0",
                    **options: Any) -> dict[str, Any]:
    """The synthesis contract: images in [0, 1] of the model's size and channels, a caption and an objective
    history each, the same twice with one seed. Steps are cut to 3 unless given. The capabilities the class
    declares (needs_images, needs_style, takes_objective) decide what it is handed."""
    cls = registry.get(method) if isinstance(method, str) else method
    if not issubclass(cls, Synthesis):
        raise MethodError(f"{cls.name} is not a synthesis method")
    if "steps" in {f.name for f in fields(cls.Options)}:
        options.setdefault("steps", 3)
    kwargs = {"images": images[: max(cls.needs_images, 1)]} if cls.needs_images else {}
    if cls.needs_style:
        kwargs["style"] = images[-1]
    spec = objective if cls.takes_objective else None

    def run():
        return synthesize(model, cls, spec, seed=0, progress=False, **kwargs, **options)

    first = run()
    out = first.images
    h, w = model.input_size
    _require(out.ndim == 4 and out.shape[1:3] == (h, w) and out.dtype == np.float32,
             f"{cls.name}: images have shape {out.shape} {out.dtype}, expected (B, {h}, {w}, C) float32")
    _require(bool(np.isfinite(out).all()) and out.min() >= 0 and out.max() <= 1,
             f"{cls.name}: images leave [0, 1]")
    _require(len(first.captions) == len(out) == len(first.history), f"{cls.name}: one caption and history per image")
    _require(np.allclose(out, run().images, atol=1e-6), f"{cls.name}: two runs with seed 0 differ")
    return {"method": cls.name, "shape": out.shape}
