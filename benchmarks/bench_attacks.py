"""Black-box attacks against ART's implementations at the same budgets (eps and queries), on the digits
CNN and a random-weight resnet18: success rate and median queries per image, each image attacked alone so
queries are counted per image on both sides. Both sides query the same onnxruntime session.

    pip install adversarial-robustness-toolbox
    python benchmarks/bench_attacks.py [--images 20] [--resnet-images 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import photos, report, resnet18_pair

import onnxviz
from onnxviz.attacks.oracle import class_scores
from onnxviz.model import Model
from onnxviz.targets import Target, softmax


class Counted:
    """The model's probabilities on NHWC [0, 1] images, counting every image asked for."""

    def __init__(self, model: Model):
        self.model, self.tensor, self.calls = model, model.score_tensor(Target())[0], 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.calls += len(images)
        z = class_scores(self.model, np.asarray(images, np.float32), self.model.preprocessing, self.tensor, 64)
        return softmax(z.astype(np.float64)).astype(np.float32)


def art_attack(name: str, classifier, eps: float, queries: int):
    from art.attacks.evasion import HopSkipJump, PixelAttack, SimBA, SquareAttack

    if name == "simba":  # pixel basis, one step of eps per pixel: the same L-inf budget as ours
        return lambda x: SimBA(classifier, attack="px", max_iter=queries // 2, epsilon=eps, verbose=False).generate(x)
    if name == "square":
        # ART's square attack asks ~3 predictions per iteration: a third of the budget in iterations
        return lambda x: SquareAttack(classifier, norm=np.inf, eps=eps, max_iter=queries // 3, p_init=0.05,
                                      nb_restarts=1, verbose=False).generate(x)
    if name == "one_pixel":
        return lambda x: PixelAttack(classifier, th=1, es=1, max_iter=max(1, queries // 400 - 1),
                                     verbose=False).generate(x)
    return lambda x: HopSkipJump(classifier, max_iter=max(1, queries // 150), max_eval=1000, init_eval=100,
                                 verbose=False).generate(x)


OURS = {"simba": {"basis": "pixel"}, "square": {"p_init": 0.05}, "one_pixel": {"pixels": 1}, "hopskipjump": {}}


def compare(model: Model, images: np.ndarray, name: str, eps: float, queries: int) -> tuple[str, str]:
    from art.estimators.classification import BlackBoxClassifierNeuralNetwork

    counted = Counted(model)
    labels = counted(images).argmax(axis=1)
    classifier = BlackBoxClassifierNeuralNetwork(counted, images.shape[1:], int(counted(images[:1]).shape[1]),
                                                 channels_first=False, clip_values=(0.0, 1.0))
    run = art_attack(name, classifier, eps, queries)
    art_ok, art_q, start = [], [], time.perf_counter()
    for i in range(len(images)):
        counted.calls = 0
        adv = run(images[i : i + 1])
        art_q.append(counted.calls)
        delta = (adv - images[i : i + 1]).ravel()
        within = np.linalg.norm(delta) <= eps + 1e-6 if name == "hopskipjump" else True
        art_ok.append(bool(counted(adv).argmax() != labels[i]) and within)
    art_s = time.perf_counter() - start
    if name == "hopskipjump":  # ART budgets iterations, not queries: give ours what ART actually spent
        queries = int(np.median(art_q))
    options = {**OURS[name], "max_queries": queries}
    if name in ("simba", "square", "hopskipjump"):
        options["eps"] = eps
    ours = onnxviz.attack(model, images, name, progress=False, **options)
    return (f"{model.name} {name}",
            f"onnxviz {ours.success_rate:.0%} fooled, median {np.median(ours.queries):.0f} queries, "
            f"{ours.seconds:.1f} s | ART {np.mean(art_ok):.0%}, median {np.median(art_q):.0f} queries, {art_s:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--resnet-images", type=int, default=4)
    parser.add_argument("--skip-digits", action="store_true")
    args = parser.parse_args()
    from models.digits import digit_images
    from onnxviz.demo import demo_model_path

    digits = onnxviz.load(demo_model_path())
    pool, _ = digit_images()
    x = pool[np.random.default_rng(0).choice(len(pool), args.images, replace=False)][..., None]
    rows = [] if args.skip_digits else [compare(digits, x, name, eps, q) for name, eps, q in
                                        (("simba", 32 / 255, 2000), ("square", 32 / 255, 1000),
                                         ("one_pixel", 0, 2000), ("hopskipjump", 2.0, 1500))]
    _, path = resnet18_pair()
    resnet = onnxviz.load(path)
    from onnxviz.attacks.run import read_images

    photos_x, _ = read_images(photos(args.resnet_images), resnet)
    rows += [compare(resnet, photos_x, name, eps, q) for name, eps, q in
             (("simba", 32 / 255, 1000), ("square", 32 / 255, 500), ("one_pixel", 0, 800),
              ("hopskipjump", 20.0, 750))]  # a random-weight net predicts almost one class: large budgets
    report(rows)


if __name__ == "__main__":
    main()
