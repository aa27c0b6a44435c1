"""TCAV, testing with concept activation vectors (Kim et al. 2018, https://arxiv.org/abs/1711.11279): at a layer, a
linear classifier (scikit-learn's SGDClassifier, Captum's default settings) separates a concept's images from random
ones; its normal is the concept's direction, and the TCAV score of a class is the share of the class's images whose
score rises along it (the directional derivative, as Captum's TCAV computes it). Repeated against several random
sets, and random sets against each other, a two-sided t-test says whether the concept matters."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import ttest_ind

from .context import Context
from .errors import DependencyError, OptionError
from .imagefiles import find_images
from .io import encode_png, write_bytes_atomic
from .model import Model
from .reading import read_batch
from .targets import Target


@dataclass(frozen=True)
class ConceptResult:
    """One concept at one layer over the runs: TCAV scores against random sets, and random against random."""

    concept: str
    layer: str
    scores: np.ndarray  # (runs,) share of the images whose score rises along the concept
    magnitudes: np.ndarray  # (runs,) mean directional derivative (Captum's "magnitude")
    random_scores: np.ndarray  # (runs,) the same for random-vs-random directions: the null
    accuracies: np.ndarray  # (runs,) the concept classifier's held-out accuracy
    p_value: float  # two-sided t-test, scores against random_scores

    def significant(self, alpha: float = 0.05) -> bool:
        return bool(self.p_value < alpha)


@dataclass(frozen=True)
class Tcav:
    classes: np.ndarray  # the class explained, per image
    results: list[ConceptResult]
    alpha: float = 0.05

    def as_dict(self) -> dict:
        return {"classes": self.classes.tolist(), "alpha": self.alpha, "results": [
            {"concept": r.concept, "layer": r.layer, "scores": r.scores.tolist(), "magnitudes": r.magnitudes.tolist(),
             "random_scores": r.random_scores.tolist(), "accuracies": r.accuracies.tolist(), "p_value": r.p_value,
             "significant": r.significant(self.alpha)} for r in self.results]}

    def plot(self) -> np.ndarray:
        """A bar per concept and layer (mean TCAV score, the runs' spread as a line), the random null beside it in
        grey; a star marks significance. RGB float."""
        bar, gap, height, top = 26, 18, 260, 30
        width = 60 + len(self.results) * (2 * bar + gap)
        canvas = np.full((height + 120, width, 3), 255, np.uint8)
        ink = (25, 25, 25)
        cv2.line(canvas, (50, top), (50, top + height), ink, 1)
        for level in (0.0, 0.5, 1.0):
            y = top + int((1 - level) * height)
            cv2.line(canvas, (46, y), (width - 10, y), (220, 220, 220) if level else ink, 1)
            cv2.putText(canvas, f"{level:.1f}", (10, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, ink, 1, cv2.LINE_AA)
        for k, r in enumerate(self.results):
            x0 = 60 + k * (2 * bar + gap)
            for j, (values, color) in enumerate(((r.scores, (70, 110, 190)), (r.random_scores, (170, 170, 170)))):
                mean, spread = float(np.mean(values)), float(np.std(values))
                left = x0 + j * bar
                cv2.rectangle(canvas, (left, top + int((1 - mean) * height)), (left + bar - 3, top + height), color, -1)
                low, high = (top + int((1 - np.clip(v, 0, 1)) * height) for v in (mean - spread, mean + spread))
                cv2.line(canvas, (left + bar // 2, low), (left + bar // 2, high), ink, 1)
            if r.significant(self.alpha):
                cv2.putText(canvas, "*", (x0 + bar // 2, top - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.7, ink, 2, cv2.LINE_AA)
            for line, text in enumerate((r.concept[:12], r.layer[-12:], f"p={r.p_value:.2g}")):
                cv2.putText(canvas, text, (x0, top + height + 18 + 16 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.36, ink, 1,
                            cv2.LINE_AA)
        return canvas.astype(np.float32) / 255.0

    def save(self, out: str | Path) -> list[Path]:
        folder = Path(out)
        return [write_bytes_atomic(folder / "tcav.json", json.dumps(self.as_dict(), indent=2).encode()),
                write_bytes_atomic(folder / "tcav.png", encode_png(self.plot()))]


def concept_vector(concept: np.ndarray, random: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """(the direction from random toward the concept, held-out accuracy): a linear classifier on flattened
    activations, trained on two thirds of each set (SGDClassifier, alpha 0.01, as Captum's default)."""
    try:
        from sklearn.linear_model import SGDClassifier
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise DependencyError('tcav needs scikit-learn: pip install "onnxviz[concepts]"') from None
    features = np.concatenate([concept, random]).astype(np.float64)
    labels = np.r_[np.ones(len(concept)), np.zeros(len(random))]
    train_x, test_x, train_y, test_y = train_test_split(features, labels, test_size=0.33, random_state=seed,
                                                        stratify=labels)
    model = SGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3, random_state=seed).fit(train_x, train_y)
    return model.coef_[0].copy(), float(model.score(test_x, test_y))


def directional_scores(grads: np.ndarray, vector: np.ndarray) -> tuple[float, float]:
    """(share of rows whose gradient points along `vector`, their mean directional derivative): Captum's
    sign_count and magnitude."""
    d = grads.reshape(len(grads), -1).astype(np.float64) @ vector
    return float(np.mean(d > 0)), float(np.mean(d))


def _paths(sources: Sequence[str | Path], what: str, least: int) -> list[Path]:
    found = find_images(list(sources))
    if len(found) < least:
        raise OptionError(f"{what} has {len(found)} image(s); TCAV needs at least {least} to train and test a "
                          "classifier (tens are usual)")
    return found


def tcav(model: Model, images: Sequence[str | Path] | np.ndarray, concepts: Mapping[str, Sequence[str | Path]],
         random: Sequence[Sequence[str | Path]], layers: Sequence[str], target: int | None = None, runs: int = 10,
         seed: int = 0, alpha: float = 0.05, batch_size: int = 32) -> Tcav:
    """TCAV of `target` (a class index; default each image's top class) for `images`, per concept (name -> image
    files or folders) and layer (names as `--layer` takes them). `random`: one or more sets of random images; with
    one set, each run draws its own random subset of it. `runs` CAVs per concept, as many random-vs-random."""
    if runs < 2:
        raise OptionError(f"runs must be >= 2 for the t-test, not {runs}")
    if not concepts:
        raise OptionError("give at least one concept: name=FOLDER")
    x = images if isinstance(images, np.ndarray) else read_batch([str(p) for p in _paths(images, "IMAGES", 1)],
                                                                 model)[0]
    names = [model.layer(layer).name for layer in layers]
    tensor, _ = model.score_tensor(Target())
    (logits,) = model.run(x, (tensor,), batch_size)
    classes = (np.full(len(x), target) if target is not None else logits.reshape(len(x), -1).argmax(axis=1))
    ctx = Context(model, Target(), classes, batch_size=batch_size, seed=seed, show_progress=False)
    pools = [_paths(r, "a random set", 4) for r in random]
    sets = {name: _paths(paths, f"concept {name}", 4) for name, paths in concepts.items()}
    rng = np.random.default_rng(seed)

    def acts(paths: list[Path], layer: str) -> np.ndarray:
        batch = read_batch([str(p) for p in paths], model)[0]
        (out,) = model.run(batch, (layer,), batch_size)
        return out.reshape(len(out), -1)

    def random_pair(size: int, run: int) -> tuple[list[Path], list[Path]]:
        if len(pools) > 1:
            return pools[run % len(pools)], pools[(run + 1) % len(pools)]
        chosen = rng.permutation(len(pools[0]))
        half = min(size, len(chosen) // 2)
        return [pools[0][i] for i in chosen[:half]], [pools[0][i] for i in chosen[half:2 * half]]

    results = []
    for layer in names:
        grads = np.asarray(ctx.grad(x, wrt=layer)).reshape(len(x), -1)
        for name, paths in sets.items():
            concept_acts = acts(paths, layer)
            scores, magnitudes, nulls, accuracies = [], [], [], []
            for run in range(runs):
                first, second = random_pair(len(paths), run)
                random_acts = acts(first, layer)  # read once: the concept's vector and the null both use it
                vector, accuracy = concept_vector(concept_acts, random_acts, seed + run)
                score, magnitude = directional_scores(grads, vector)
                null, _ = concept_vector(acts(second, layer), random_acts, seed + run)
                scores.append(score)
                magnitudes.append(magnitude)
                nulls.append(directional_scores(grads, null)[0])
                accuracies.append(accuracy)
            results.append(ConceptResult(name, layer, np.array(scores), np.array(magnitudes), np.array(nulls),
                                         np.array(accuracies), _t_test(np.array(scores), np.array(nulls))))
    return Tcav(classes, results, alpha)


def _t_test(scores: np.ndarray, nulls: np.ndarray) -> float:
    if np.ptp(np.r_[scores, nulls]) == 0:
        return 1.0
    return float(ttest_ind(scores, nulls).pvalue)
