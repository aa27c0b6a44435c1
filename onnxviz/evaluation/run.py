"""`onnxviz.evaluate`: how faithful each method's explanations are on a batch (deletion / insertion AUC, average
drop, increase in confidence), how concentrated (sparseness, complexity), how stable (infidelity, sensitivity-max),
whether they point at a ground truth (pointing game, relevance mass and rank), and optionally the
cascading-randomization sanity check. The CLI's `evaluate` prints and saves what this returns."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import OptionError
from ..explainer import Explainer
from ..explanation import Explanation
from ..io import read_image, resize, write_bytes_atomic
from ..model import Model, load
from ..reading import ImageSource, read_batch
from ..registry import get
from ..targets.spec import TargetSpec
from .complexity import complexity, sparseness
from .faithfulness import Faithfulness, Scorer, faithfulness, target_scorer
from .localization import GroundTruth, ground_truth_masks, pointing_game, relevance_mass, relevance_rank
from .road import road
from .sanity import Sanity, cascading_randomization
from .stability import class_logits, infidelity, sensitivity_max

METRICS = ("faithfulness", "complexity", "localization", "infidelity", "sensitivity", "road")


@dataclass(frozen=True)
class Evaluation:
    """Per method: its faithfulness scores, and its sanity check when one was asked for."""

    faithfulness: dict[str, Faithfulness]
    sanity: dict[str, Sanity] = field(default_factory=dict)
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # method -> metric -> per image

    def as_dict(self) -> dict:
        """The JSON-ready record (`evaluate.json`)."""
        out = {}
        for method in dict.fromkeys([*self.faithfulness, *self.scores]):
            row: dict = {}
            if method in self.faithfulness:
                scores = self.faithfulness[method]
                row |= {"deletion_auc": scores.deletion_auc.tolist(), "insertion_auc": scores.insertion_auc.tolist(),
                        "average_drop": scores.average_drop, "increase": scores.increase}
            row |= {name: values.tolist() for name, values in self.scores.get(method, {}).items()}
            if method in self.sanity:
                check = self.sanity[method]
                row["sanity"] = {"layers": check.layers, "spearman_abs": check.spearman_abs.tolist(),
                                 "ssim": check.ssim.tolist(), "passed": check.passed}
            out[method] = row
        return out

    def save(self, out: str | os.PathLike) -> Path:
        return write_bytes_atomic(Path(out) / "evaluate.json", json.dumps(self.as_dict(), indent=2).encode())


def evaluate(model: Model | str | os.PathLike, images: np.ndarray | ImageSource | Sequence[ImageSource],
             methods: Sequence[str] = ("gradcam",), *, steps: int = 32, sanity: bool = False,
             target: TargetSpec = None, metrics: Sequence[str] = ("faithfulness", "complexity"),
             ground_truth: GroundTruth | None = None, n_perturb: int = 10, seed: int = 0) -> Evaluation:
    """Score each method's maps of `images` (paths, arrays or a model-space batch) for `target` (default: the top
    class; a detection, similarity, unit or value target is followed by its own score): signed maps are scored by
    their magnitude. `metrics`: any of faithfulness, complexity (sparseness, complexity), localization (needs
    `ground_truth`: a box x0,y0,x1,y1, a mask file or array; given, it is scored), infidelity, sensitivity
    (`n_perturb` seeded perturbations each), road (remove and debias, MoRF / LeRF over 9 percentiles). With
    `sanity`, also randomize the weights from the top layer down and check the maps change."""
    metrics = _check_metrics(metrics, ground_truth, methods)
    model = model if isinstance(model, Model) else load(model)
    x = images if isinstance(images, np.ndarray) else read_batch(images, model)[0]
    scorer = target_scorer(model, target, x)
    masks = None
    if "localization" in metrics:
        h, w = model.input_size
        masks = ground_truth_masks(ground_truth, len(x), h, w, read_image)  # type: ignore[arg-type]
    found, scores, checks = {}, {}, {}
    for method in dict.fromkeys(methods):
        explainer = Explainer(model, method, progress=False, seed=seed)
        ex = explainer.explain(x, target)
        maps = ex.maps()
        magnitude = np.abs(maps) if ex.signed else maps
        if "faithfulness" in metrics:
            found[method] = faithfulness(model, ex.inputs, magnitude, ex.targets, steps, scorer=scorer)
        scores[method] = _scores(model, explainer, ex, magnitude, metrics, masks, scorer, target, n_perturb, seed)
        if sanity:
            checks[method] = cascading_randomization(model, ex.inputs, method)
    return Evaluation(found, checks, scores)


def _check_metrics(metrics: Sequence[str], ground_truth: GroundTruth | None,
                   methods: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys([*metrics, *(["localization"] if ground_truth is not None else [])]))
    unknown = [m for m in chosen if m not in METRICS]
    if unknown:
        raise OptionError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    if "localization" in chosen and ground_truth is None:
        raise OptionError("the localization metrics (pointing game, relevance mass and rank) need a ground truth: "
                          "pass ground_truth= (CLI --ground-truth) as a box x0,y0,x1,y1 or a mask image")
    for method in methods if {"infidelity", "road"} & set(chosen) else ():
        if not getattr(get(method), "target_dependent", True):
            raise OptionError(f"{method}'s maps do not depend on the target (class-agnostic), but infidelity and "
                              "ROAD measure how the target's score follows them: score a class-specific method, or "
                              "drop --metric infidelity / road for this one")
    return chosen


def _scores(model: Model, explainer: Explainer, ex: Explanation, magnitude: np.ndarray, metrics: tuple[str, ...],
            masks: np.ndarray | None, scorer: Scorer | None, target: TargetSpec, n_perturb: int,
            seed: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if "complexity" in metrics:
        out["sparseness"], out["complexity"] = sparseness(magnitude), complexity(magnitude)
    if masks is not None or "road" in metrics:  # both read the maps at the input's size: resized once
        h, w = model.input_size
        full = np.stack([resize(m.astype(np.float32), h, w) for m in magnitude])
    if masks is not None:
        out |= {"pointing_game": pointing_game(full, masks), "relevance_mass": relevance_mass(full, masks),
                "relevance_rank": relevance_rank(full, masks)}
    raw = scorer if scorer is not None else class_logits(model, ex.targets)
    if "infidelity" in metrics:
        out["infidelity"] = infidelity(model, ex.inputs, ex.attributions, raw, n_perturb, seed=seed)
    if "road" in metrics:
        axes = model.input.axes
        found = road(axes.to_channels_first(ex.inputs), full, raw, axes.from_channels_first, seed=seed)
        out |= {"road_morf": found.morf, "road_lerf": found.lerf, "road_combined": found.combined}
    if "sensitivity" in metrics:
        def again(batch: np.ndarray, i: int) -> np.ndarray:  # the image's class, or the target's own score
            same = [int(ex.targets[i])] * len(batch) if scorer is None else target
            return explainer.explain(batch, same).attributions

        out["sensitivity_max"] = sensitivity_max(again, ex.inputs, ex.attributions, n_perturb, seed=seed)
    return out
