"""onnxviz.attack: run an attack on image(s) and evaluate the adversarials, here and on other models."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import registry, resolve
from ..errors import ImageError, MethodError, ModelError, OnnxvizError
from ..estimate import Estimator
from ..model import Model, load
from ..options import as_dict
from ..preprocess import Preprocessing
from ..reading import image_space, to_image_space
from ..targets import Target, check_finite, check_range
from .base import Attack
from .budget import norms
from .classnames import class_names as find_class_names
from .oracle import Oracle, class_scores
from .result import AttackResult, Transfer
from .views import DetectionView, detection_view, is_detection, judge

ImageSource = str | os.PathLike | np.ndarray


read_images = image_space  # the name the attack runner and its tests have used


def _classes(spec, n: int, n_classes: int, what: str) -> np.ndarray | None:
    """None, one class for all images, or one per image -> an index array (checked against the classes)."""
    if spec is None:
        return None
    values = list(spec) if isinstance(spec, (list, tuple, np.ndarray)) else [spec] * n
    if len(values) != n:
        raise OnnxvizError(f"{len(values)} {what}s given for {n} images; give one per image or a single one")
    try:
        ints = [int(v) for v in values]
    except (TypeError, ValueError):
        raise OnnxvizError(f"a {what} must be a class index, got {values!r}") from None
    check_range(ints, n_classes)  # before numpy sees them: 2**70 would overflow int64
    return np.array(ints, np.int64)


def _transfer(other: Model | str | os.PathLike, images: np.ndarray, adversarial: np.ndarray, labels_given: bool,
              labels: np.ndarray, targets: np.ndarray | None, counted: np.ndarray, batch_size: int) -> Transfer:
    other = other if isinstance(other, Model) else load(other)
    tensor, _ = other.score_tensor(Target())
    size, channels = other.input_size, other.input.channels or 3
    moved = [np.stack([to_image_space(a, size, channels) for a in batch]) for batch in (images, adversarial)]
    before, after = (class_scores(other, b, other.preprocessing, tensor, batch_size).argmax(axis=1) for b in moved)
    if targets is not None:
        success = after == targets
    else:
        success = after != (labels if labels_given else before)
    return Transfer(other.name, before, after, success, counted)


def attack(model: Model | str | os.PathLike, images: ImageSource | Sequence[ImageSource], method: str = "pgd", /,
           target=None, *, labels=None, eps: float | None = None, batch_size: int = 32, seed: int = 0,
           progress: bool = True, preprocessing: Preprocessing | None = None, gradient: str | Estimator = "auto",
           class_names: str | os.PathLike | list[str] | None = None,
           transfer_to: Sequence[Model | str | os.PathLike] = (), to: int | None = None,
           **options: Any) -> AttackResult:
    """Attack `images` (paths, or [0, 1] HWC arrays) with `method`; eps and every budget live in [0, 1] image
    space, before the model's preprocessing.

    target: None (untargeted: leave the predicted class, or `labels` when given) or class index(es) to reach; on a
    detector, a detection (det:K, box:x0,y0,x1,y1[@CLASS]) to make vanish, or to turn into class `to`.
    eps: shortcut for the attack's `eps` option. gradient: "auto", "exact", "estimate" or an Estimator (white-box
    attacks on graphs torch cannot run). transfer_to: other models to evaluate the adversarials on.
    """
    start = time.perf_counter()
    model = model if isinstance(model, Model) else load(model)
    if not model.input.layout:
        raise ImageError(f"the model's input {model.input.name} {model.input.shape} is not an image (not 4-D)")
    if eps is not None:
        options = {**options, "eps": eps}
    cls, instance = resolve.plugin(method, Attack)
    opts = resolve.options(cls, options)
    estimator = resolve.gradient_source(model, cls, gradient)
    imgs, names = image_space(images, model)
    pre = preprocessing or model.preprocessing
    view: str | DetectionView  # a classifier's output, or the detection under attack
    if is_detection(target):
        if transfer_to or labels is not None:
            raise OnnxvizError("an attack on a detection takes no labels and no --transfer-to: the detection is the "
                               "label, and other models may not detect it")
        view, columns = detection_view(model, Target.parse(target), pre.apply(imgs).astype(model.input.batch_dtype),
                                       batch_size, vanish=to is None)
        clean = class_scores(model, imgs, pre, view, batch_size)
        given = None
        label_arr = np.zeros(len(imgs), np.int64) if to is None else view.classes  # its column
        targets = None if to is None else _classes(to, len(imgs), clean.shape[1] - 1, "class to turn into")
        classes: list[str] | None = columns
    else:
        if to is not None:
            raise OnnxvizError("`to` is the class a detection must turn into: give a detection target (det:K)")
        view = model.score_tensor(Target())[0]
        clean = class_scores(model, imgs, pre, view, batch_size)
        if clean.shape[1] < 2:
            raise ModelError(f"output {view!r} has {clean.shape[1]} class score(s) per image: attacks need a "
                             "classifier, or a detection target (det:K) on a detector")
        given = _classes(labels, len(imgs), clean.shape[1], "label")
        label_arr = clean.argmax(axis=1) if given is None else given
        targets = _classes(target, len(imgs), clean.shape[1], "target")
        classes = find_class_names(class_names, model.metadata)
    check_finite(clean, view if isinstance(view, str) else ",".join(view.tensors), "an attack")
    oracle = Oracle(model, imgs, view, clean, label_arr, targets, preprocessing=pre,
                    max_queries=getattr(opts, "max_queries", None), estimator=estimator,
                    batch_size=batch_size, seed=seed, progress=progress)
    adv = np.asarray(instance.attack(oracle, opts), np.float32)
    if adv.shape != imgs.shape or not np.isfinite(adv).all() or adv.min() < 0 or adv.max() > 1:
        raise MethodError(f"attack {cls.name} must return finite images of shape {imgs.shape} in [0, 1]")
    after = class_scores(model, adv, pre, view, batch_size)
    success = oracle.is_adversarial(after, np.arange(len(adv)))
    if isinstance(view, DetectionView):  # judged on the model's own detections of the adversarials
        success = judge(model, view, pre.apply(adv).astype(model.input.batch_dtype), targets, batch_size)
    linf, l2 = norms(adv - imgs)
    transfers = [_transfer(m, imgs, adv, given is not None, label_arr, targets, success, batch_size)
                 for m in transfer_to]
    extras = {"gradient": estimator.describe(tuple(imgs.shape[1:]), (0, 1))} if estimator is not None else {}
    if "onnxruntime (estimated gradient)" in oracle.backends_used:
        oracle.backends_used.discard("onnxruntime")
    return AttackResult(
        method=cls.name, options=as_dict(opts), model_name=model.name, images=imgs, adversarial=adv,
        labels=label_arr, targets=targets, logits_before=clean, logits_after=after, success=success, linf=linf,
        l2=l2, queries=oracle.queries.copy(), iterations=oracle.gradients.copy(),
        seconds=time.perf_counter() - start, backend="+".join(sorted(oracle.backends_used)) or "none", names=names,
        class_names=classes, transfers=transfers, extras=extras)


def attack_names() -> list[str]:
    return registry.names(Attack)
