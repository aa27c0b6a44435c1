"""Attacks: exact answers on a linear model, budgets (norm, pixel range, queries), targeted success,
determinism, the torchattacks reference, transfer, results and the CLI."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pytest
from click.testing import CliRunner

import onnxviz
from onnxviz.attacks import Oracle, QueryBudgetError
from onnxviz.cli import cli
from onnxviz.demo import demo_images, demo_model_path
from onnxviz.estimate import Estimator
from onnxviz.options import option
from tests.tiny_models import linear

RNG = np.random.default_rng(5)
SIGNS = RNG.choice([-1.0, 1.0], size=48)
W_DIR = (SIGNS * RNG.uniform(0.5, 1.5, 48)).astype(np.float32)  # no weight near zero: signs are unambiguous
IMAGES = RNG.uniform(0.3, 0.7, (3, 4, 4, 3)).astype(np.float32)  # eps steps never reach the pixel range


def _two_class(batch="N"):
    """logits = [w.x + 100, -w.x]: class 0 wins, and every loss falls fastest along -sign(w)."""
    return onnxviz.load(linear(np.stack([W_DIR, -W_DIR]), np.array([100.0, 0.0]), shape=(3, 4, 4), batch=batch))


def _w_in_image_space() -> np.ndarray:
    return W_DIR.reshape(3, 4, 4).transpose(1, 2, 0)  # the model reads CHW; images are HWC


@pytest.mark.parametrize("loss", ["ce", "logit", "margin"])
def test_fgsm_on_a_linear_model_is_eps_times_the_weight_sign(loss):
    eps = 4 / 255
    result = onnxviz.attack(_two_class(), IMAGES, "fgsm", eps=eps, loss=loss, progress=False)
    expected = -eps * np.sign(_w_in_image_space())  # imagenet normalization divides by std > 0: same sign
    np.testing.assert_allclose(result.perturbation, np.broadcast_to(expected, IMAGES.shape), atol=1e-6)
    targeted = onnxviz.attack(_two_class(), IMAGES, "fgsm", target=1, eps=eps, loss=loss, progress=False)
    np.testing.assert_allclose(targeted.perturbation, result.perturbation, atol=1e-6)


def test_fgsm_with_estimated_gradients_and_a_fixed_batch_model():
    model = _two_class(batch=1)  # fixed batch of 1: the engine splits the three images
    exact = onnxviz.attack(model, IMAGES, "fgsm", eps=4 / 255, progress=False)
    estimated = onnxviz.attack(model, IMAGES, "fgsm", eps=4 / 255, loss="logit", progress=False,
                               gradient=Estimator("nes", 2000))
    assert np.mean(np.isclose(estimated.perturbation, exact.perturbation, atol=1e-6)) >= 0.95
    assert estimated.queries.tolist() == [2000] * 3 and "estimated gradient" in estimated.extras["gradient"]
    assert estimated.backend == "onnxruntime (estimated gradient)"


@pytest.fixture(scope="module")
def digits():
    return onnxviz.load(demo_model_path()), demo_images()


BUDGETS = [
    ("fgsm", {"eps": 8 / 255}, "linf"),
    ("pgd", {"eps": 8 / 255}, "linf"),
    ("pgd", {"eps": 1.0, "norm": "l2"}, "l2"),
    ("simba", {"eps": 8 / 255, "max_queries": 300}, "linf"),
    ("simba", {"eps": 0.5, "norm": "l2", "basis": "dct", "max_queries": 300}, "l2"),
    ("square", {"eps": 8 / 255, "max_queries": 300}, "linf"),
    ("hopskipjump", {"eps": 1.0, "max_queries": 300}, "l2"),
]


@pytest.mark.parametrize(("method", "options", "norm"), BUDGETS, ids=lambda v: v if isinstance(v, str) else "")
def test_every_attack_respects_its_budget(digits, method, options, norm):
    model, images = digits
    result = onnxviz.attack(model, images, method, progress=False, **options)
    assert result.adversarial.shape == (4, 32, 32, 1) and result.adversarial.dtype == np.float32
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    measured = result.linf if norm == "linf" else result.l2
    assert (measured <= options["eps"] + 1e-5).all(), measured
    if "max_queries" in options:
        assert (result.queries <= options["max_queries"]).all()
        assert result.queries.max() > 0


def test_one_pixel_changes_at_most_its_pixels_and_spends_its_queries_exactly(digits):
    model, images = digits
    result = onnxviz.attack(model, images[:2], "one_pixel", pixels=2, max_queries=900, progress=False)
    changed = (np.abs(result.perturbation).max(axis=-1) > 0).reshape(2, -1).sum(axis=1)
    assert (changed <= 2).all()
    assert all(q == 900 or ok for q, ok in zip(result.queries, result.success, strict=True))


@pytest.mark.parametrize("method", ["square", "simba", "hopskipjump"])
def test_an_attack_that_cannot_win_spends_exactly_its_query_budget(digits, method):
    model, images = digits
    eps = {"hopskipjump": 1e-3}.get(method, 1 / 255)
    result = onnxviz.attack(model, images[:1], method, eps=eps, max_queries=120, progress=False)
    assert not result.success[0]
    assert result.queries.tolist() == [120]


def test_the_oracle_refuses_a_query_beyond_the_budget(digits):
    model, images = digits

    @dataclass(frozen=True)
    class Greedy:
        max_queries: int = option(3, "budget")

    class Overspender(onnxviz.Attack):
        name = "overspender"
        Options = Greedy

        def attack(self, oracle: Oracle, opts):
            for _ in range(opts.max_queries + 1):
                oracle.logits(oracle.images[:1], [0])
            return oracle.images

    with pytest.raises(QueryBudgetError, match="max_queries=3"):
        onnxviz.attack(model, images, Overspender, progress=False)


@pytest.mark.parametrize(("method", "options"), [("pgd", {"eps": 0.3, "steps": 40, "step_size": 0.02}),
                                                 ("square", {"eps": 0.3, "max_queries": 2000}),
                                                 ("simba", {"eps": 0.3, "max_queries": 3000})])
def test_targeted_attacks_reach_the_target_on_an_easy_model(digits, method, options):
    model, images = digits
    result = onnxviz.attack(model, images, method, target=[1, 7, 2, 4], progress=False, **options)
    assert result.success.all()
    assert result.predictions_after.tolist() == [1, 7, 2, 4]


@pytest.mark.parametrize(("method", "options"), [("pgd", {}), ("square", {"max_queries": 200}),
                                                 ("simba", {"max_queries": 200}), ("hopskipjump", {"max_queries": 200}),
                                                 ("one_pixel", {"max_queries": 200})])
def test_seeded_attacks_are_deterministic_and_a_batch_equals_its_images(digits, method, options):
    model, images = digits
    first = onnxviz.attack(model, images, method, seed=1, progress=False, **options)
    again = onnxviz.attack(model, images, method, seed=1, progress=False, **options)
    np.testing.assert_array_equal(first.adversarial, again.adversarial)
    alone = onnxviz.attack(model, images[2:3], method, seed=1, progress=False, **options)
    np.testing.assert_allclose(alone.adversarial[0], first.adversarial[2], atol=1e-6)
    if method != "pgd":
        other = onnxviz.attack(model, images, method, seed=2, progress=False, **options)
        assert not np.array_equal(other.adversarial, first.adversarial)


@pytest.fixture(scope="module")
def digit_set():
    from models.digits import digit_images

    images, _ = digit_images()
    return images[np.random.default_rng(0).choice(len(images), 200, replace=False)][..., None]


def test_fgsm_and_pgd_equal_torchattacks_on_the_digits_network(build_reference, digit_set):
    torch = pytest.importorskip("torch")
    torchattacks = pytest.importorskip("torchattacks")
    ref = build_reference("digits")
    model = onnxviz.load(ref.path)
    x = torch.tensor(digit_set.transpose(0, 3, 1, 2))
    ours = onnxviz.attack(model, digit_set, "fgsm", eps=8 / 255, progress=False)
    labels = torch.tensor(ours.labels)
    theirs = torchattacks.FGSM(ref.net.eval(), eps=8 / 255)(x, labels).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(ours.adversarial, theirs)  # every pixel, bit for bit
    ours = onnxviz.attack(model, digit_set, "pgd", eps=8 / 255, random_start=False, progress=False)
    adv = torchattacks.PGD(ref.net.eval(), eps=8 / 255, alpha=2 / 255, steps=10, random_start=False)(x, labels)
    np.testing.assert_array_equal(ours.adversarial, adv.numpy().transpose(0, 2, 3, 1))
    for norm, eps, make in (("linf", 4 / 255, torchattacks.PGD), ("linf", 8 / 255, torchattacks.PGD),
                            ("l2", 0.5, torchattacks.PGDL2), ("l2", 1.0, torchattacks.PGDL2)):
        ours = onnxviz.attack(model, digit_set, "pgd", eps=eps, norm=norm, steps=10, progress=False)
        torch.manual_seed(0)
        adv = make(ref.net.eval(), eps=eps, alpha=eps / (4 if norm == "linf" else 5), steps=10)(x, labels)
        with torch.no_grad():
            rate = float((ref.net(adv).argmax(dim=1) != labels).float().mean())
        assert 0.05 < ours.success_rate < 0.95  # a budget where the comparison means something
        assert abs(ours.success_rate - rate) <= 0.02, (norm, eps, ours.success_rate, rate)


def test_fgsm_equals_torchattacks_through_imagenet_normalization(build_reference, photos):
    torch = pytest.importorskip("torch")
    torchattacks = pytest.importorskip("torchattacks")
    ref = build_reference("resnet18_legacy")
    ours = onnxviz.attack(ref.path, photos[:2], "fgsm", eps=2 / 255, progress=False)
    mean, std = (torch.tensor(v).reshape(1, 3, 1, 1) for v in ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))

    class Normalized(torch.nn.Module):
        def forward(self, images):
            return ref.net((images - mean) / std)

    attack = torchattacks.FGSM(Normalized().eval(), eps=2 / 255)
    x = torch.tensor(ours.images.transpose(0, 3, 1, 2))
    theirs = attack(x, torch.tensor(ours.labels)).numpy().transpose(0, 2, 3, 1)
    same = np.isclose(ours.adversarial, theirs, atol=1e-6)
    assert same.mean() >= 0.999, same.mean()  # a random-weight net: a few gradients sit at rounding level


def test_transfer_to_the_same_network_from_another_exporter(build_reference, photos):
    legacy, dynamo = build_reference("resnet18_legacy"), build_reference("resnet18_dynamo")
    result = onnxviz.attack(legacy.path, photos[:2], "pgd", eps=4 / 255, progress=False,
                            transfer_to=[dynamo.path])
    assert result.success.all()
    (transfer,) = result.transfers
    assert transfer.model_name == "resnet18_dynamo" and transfer.rate == 1.0
    np.testing.assert_array_equal(transfer.before, result.predictions_before)


def test_nhwc_softmax_model_attacks_the_logits(build_reference):
    ref = build_reference("tiny_nhwc")
    images = np.random.default_rng(0).uniform(0, 1, (3, 16, 16, 3)).astype(np.float32)
    result = onnxviz.attack(ref.path, images, "pgd", eps=0.1, progress=False)
    assert result.logits_before.shape == (3, 4)
    assert not np.allclose(result.logits_before.sum(axis=1), 1)  # logits behind the Softmax, not probabilities
    assert (result.linf <= 0.1 + 1e-6).all()


def test_result_saves_figure_arrays_and_json_with_class_names(digits, tmp_path):
    model, images = digits
    names = [f"digit {k}" for k in range(10)]
    result = onnxviz.attack(model, images[:2], "square", eps=0.3, max_queries=100, class_names=names,
                            progress=False)
    written = {p.name for p in result.save(tmp_path)}
    assert written == {"attack.png", "adversarial_0.png", "adversarial_1.png", "result.npz", "result.json"}
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["method"] == "square" and data["images"][0]["before"][0][0] == "0 digit 0"
    assert set(data["images"][0]) >= {"before", "after", "success", "linf", "l2", "queries"}
    np.testing.assert_array_equal(np.load(tmp_path / "result.npz")["adversarial"], result.adversarial)
    assert result.figure().shape[1] > 3 * 224
    assert "fooled" in result.summary() or "resisted" in result.summary()


def test_class_names_from_metadata_and_files(tmp_path):
    from onnxviz.attacks.classnames import class_names

    assert class_names(None, {"names": "{0: 'cat', 1: 'dog'}"}) == ["cat", "dog"]
    assert class_names(None, {"labels": '["a", "b"]'}) == ["a", "b"]
    assert class_names(None, {"author": "me"}) is None
    path = tmp_path / "labels.txt"
    path.write_text("tench\ngoldfish\n")
    assert class_names(path, {}) == ["tench", "goldfish"]
    path.write_text("")
    with pytest.raises(onnxviz.OptionError, match="no class names"):
        class_names(path, {})


def test_bad_requests_are_clear(digits, build_reference):
    model, images = digits
    with pytest.raises(onnxviz.ModelError, match=r"attacks need a classifier: output .* not \(N, classes\)"):
        onnxviz.attack(build_reference("tiny_seg").path, np.zeros((32, 32, 3), np.float32), "fgsm")
    with pytest.raises(onnxviz.MethodError, match="is not an attack"):
        onnxviz.attack(model, images, "gradcam")
    with pytest.raises(onnxviz.MethodError, match="is an attack"):
        onnxviz.explain(model, images, "fgsm")
    with pytest.raises(onnxviz.OptionError, match="has no option 'eps'"):
        onnxviz.attack(model, images, "one_pixel", eps=0.1)
    with pytest.raises(onnxviz.TargetError, match="out of range"):
        onnxviz.attack(model, images, "fgsm", target=10)
    with pytest.raises(onnxviz.ImageError, match=r"in \[0, 1\]"):
        onnxviz.attack(model, np.full((32, 32, 1), 255.0, np.float32), "fgsm")
    with pytest.raises(onnxviz.OnnxvizError, match="3 targets given for 4 images"):
        onnxviz.attack(model, images, "fgsm", target=[1, 2, 3])


def test_cli_attack_writes_the_figure_and_reports_each_image(tmp_path):
    image = str(demo_model_path().parent / "digit_3.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["attack", str(demo_model_path()), image, "-m", "square", "--eps", "64/255",
                                      "--max-queries", "200", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "digit_3.png: 3" in result.output and "square: 1/1 fooled" in result.output
    assert (out / "attack.png").is_file() and (out / "result.json").is_file()
    bad = CliRunner().invoke(cli, ["attack", str(demo_model_path()), image, "-m", "occlusion"])
    assert bad.exit_code == 1 and "is not an attack; choose one of: fgsm" in bad.output
    bad = CliRunner().invoke(cli, ["attack", str(demo_model_path()), image, "--target", "three"])
    assert bad.exit_code == 1 and "--target takes a class index" in bad.output


def test_black_box_attacks_run_without_torch_and_white_box_ones_say_how_to_install():
    from tests.test_bad_input import _without_torch

    code = ("import onnxviz; from onnxviz.demo import demo_model_path, demo_images; "
            "r = onnxviz.attack(demo_model_path(), demo_images()[:1], 'square', eps=0.3, max_queries=50, "
            "progress=False); print('square', r.backend, r.queries.tolist())")
    done = _without_torch(code)
    assert done.returncode == 0, done.stderr
    assert "square onnxruntime [" in done.stdout
    refused = _without_torch(code.replace("'square', eps=0.3, max_queries=50", "'fgsm'"))
    assert refused.returncode == 1 and 'pip install "onnxviz[torch]"' in refused.stderr


def test_hopskipjump_shrinks_its_distance_as_it_queries_more():
    """The decision boundary walk must get closer with every budget (a step against its own gradient estimate, the
    issue's planted bug, leaves the distance where the first binary search put it)."""
    from onnxviz.demo import demo_images, demo_model_path

    model = onnxviz.load(demo_model_path())
    distances = [onnxviz.attack(model, demo_images()[:1], "hopskipjump", max_queries=q, progress=False).l2[0]
                 for q in (300, 1200, 4000)]
    assert distances[0] > distances[1] > distances[2], distances
    assert distances[2] < 0.8 * distances[0], distances


@pytest.mark.parametrize(("peak", "seeds"), [((11, 4), 4), ((15, 0), 2), ((0, 15), 2)])
def test_one_pixel_climbs_to_the_only_pixel_that_flips_a_linear_model(peak, seeds):
    """A linear model whose blue weights form a smooth bump peaking at row 11, column 4 of a 16 x 16 image, with a
    margin only that pixel's blue near 1 can overcome: random candidates almost never hit it (1 pixel of 256, a
    value in the top 2%), so the evolution must climb the bump. One that climbs the wrong way (the loss negated)
    never gets there. Peaks in the last row and the first column, and the first row and last column, show every
    pixel can be placed (a search bounded one pixel short of an edge never reaches them)."""
    h = w = 16
    rows, cols = np.mgrid[:h, :w]
    weights = np.zeros((h, w, 3))
    weights[..., 2] = -np.exp(-((rows - peak[0]) ** 2 + (cols - peak[1]) ** 2) / (2 * 3.0**2))
    flat = weights.transpose(2, 0, 1).ravel()  # the model reads CHW
    x = np.full((1, h, w, 3), 0.5, np.float32)
    bias = 0.49 - 0.5 * flat.sum()  # class 0 by 0.49: blue at (11, 4) must rise above 0.98
    model = onnxviz.load(linear(np.stack([flat, np.zeros_like(flat)]).astype(np.float32), np.array([bias, 0.0]),
                                shape=(3, h, w)))
    model.use_preprocessing("unit")
    for seed in range(seeds):  # the climb takes 800-1600 queries over 8 seeds; the negated loss, mostly 2400+
        result = onnxviz.attack(model, list(x), "one_pixel", pixels=1, loss="margin", max_queries=2000, seed=seed,
                                progress=False)
        assert result.success[0], seed
        changed = np.argwhere(np.abs(result.adversarial[0] - x[0]).max(axis=2) > 0)
        assert changed.tolist() == [list(peak)]
        assert result.adversarial[0, peak[0], peak[1], 2] > 0.98


def _hand_made_result(targeted: bool):
    from onnxviz.attacks.result import AttackResult, Transfer

    images = np.zeros((2, 3, 4, 1), np.float32)
    adversarial = images.copy()
    adversarial[1, 0, 0] = 0.2
    before = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]))
    after = np.log(np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]))
    transfer = Transfer("other", np.array([0, 1]), np.array([0, 2]), np.array([False, True]), np.array([False, True]))
    return AttackResult(
        "square", {"eps": 0.2}, "net", images, adversarial, labels=np.array([0, 1]),
        targets=np.array([2, 2]) if targeted else None, logits_before=before, logits_after=after,
        success=np.array([False, True]), linf=np.array([0.0, 0.2]), l2=np.array([0.0, 0.2]),
        queries=np.array([50, 12]), iterations=np.array([0, 3]), seconds=1.5, backend="onnxruntime",
        names=["a.png"], class_names=["cat", "dog", "fox"], transfers=[transfer], extras={"note": 1})


def test_an_attack_result_reports_every_field_under_its_name(tmp_path):
    """Rows, the text summary, the JSON and the files of a hand-made result (every number known): the second
    image has no name and falls back to its index; probabilities come back from the logits."""
    result = _hand_made_result(targeted=True)
    first, second = result.rows()
    assert first == {"image": "a.png", "label": "0 cat",
                     "before": [["0 cat", pytest.approx(0.7)], ["1 dog", pytest.approx(0.2)],
                                ["2 fox", pytest.approx(0.1)]],
                     "after": [["0 cat", pytest.approx(0.5)], ["1 dog", pytest.approx(0.3)],
                               ["2 fox", pytest.approx(0.2)]],
                     "success": False, "linf": 0.0, "l2": 0.0, "queries": 50, "iterations": 0, "target": "2 fox",
                     "transfer:other": {"prediction": "0 cat", "fooled": False}}
    assert second["image"] == "1" and second["success"] is True and second["after"][0] == ["2 fox", pytest.approx(0.7)]
    assert second["transfer:other"] == {"prediction": "2 fox", "fooled": True}
    lines = result.summary().splitlines()
    assert lines[1] == ("1: 1 dog (0.60) -> target 2 fox => 2 fox (0.70)  fooled  Linf 51.0/255  L2 0.200  "
                        "queries 12  steps 3")
    assert lines[0].startswith("a.png: 0 cat (0.70) -> target 2 fox => 0 cat (0.50)  resisted")
    assert lines[2:] == ["square: 1/2 fooled in 1.50 s (onnxruntime)", "transfer to other: 100% of 1 adversarials"]
    assert " -> target" not in _hand_made_result(targeted=False).summary()
    saved = result.to_dict()
    assert {k: saved[k] for k in ("method", "options", "model", "backend", "success_rate", "seconds", "note",
                                  "transfer_rates")} == {
        "method": "square", "options": {"eps": 0.2}, "model": "net", "backend": "onnxruntime", "success_rate": 0.5,
        "seconds": 1.5, "note": 1, "transfer_rates": {"other": 1.0}}
    written = result.save(tmp_path)
    assert sorted(p.name for p in written) == ["adversarial_0.png", "adversarial_1.png", "attack.png", "result.json",
                                              "result.npz"]
    assert json.loads((tmp_path / "result.json").read_text()) == json.loads(json.dumps(saved))
    with np.load(tmp_path / "result.npz") as npz:
        assert sorted(npz.files) == ["adversarial", "images", "labels", "logits_after", "logits_before", "success"]
        np.testing.assert_array_equal(npz["adversarial"], result.adversarial)
        np.testing.assert_array_equal(npz["logits_after"], result.logits_after)
    from PIL import Image

    png = np.asarray(Image.open(tmp_path / "adversarial_1.png"))
    assert png.shape == (3, 4, 3) and png[0, 0].tolist() == [51, 51, 51] and png[1, 1].tolist() == [0, 0, 0]


def test_attack_options_accept_their_smallest_values_and_refuse_each_bad_one(digits):
    model, images = digits
    for method, options in [("simba", {"max_queries": 1}), ("square", {"max_queries": 1}),
                            ("one_pixel", {"max_queries": 1, "population": 1}), ("pgd", {"steps": 1})]:
        result = onnxviz.attack(model, images[:1], method, progress=False, **options)
        assert result.queries.tolist() == ([0] if method == "pgd" else [1]), method
    refused = [("pgd", {"eps": -0.1, "steps": 5}, "eps must be >= 0, steps >= 1 and step_size > 0"),
               ("pgd", {"steps": 0}, "eps must be >= 0"), ("pgd", {"step_size": 0.0}, "step_size > 0"),
               ("simba", {"max_queries": 0}, "eps must be > 0, max_queries >= 1 and freq in"),
               ("simba", {"freq": 1.5}, "freq in"), ("square", {"max_queries": 0}, "p_init in"),
               ("one_pixel", {"pixels": 0}, "pixels, max_queries and population must be >= 1")]
    for method, options, message in refused:
        with pytest.raises(onnxviz.OptionError, match=re.escape(message)):
            onnxviz.attack(model, images[:1], method, progress=False, **options)


def test_one_label_stands_for_every_image(digits):
    model, images = digits
    result = onnxviz.attack(model, images[:3], "fgsm", labels=7, progress=False)
    assert result.labels.tolist() == [7, 7, 7]


def test_hopskipjump_without_an_adversarial_start_returns_the_clean_images():
    """logits w.x + 100 vs -w.x: no image in [0, 1] is class 1, so there is no start to walk from."""
    result = onnxviz.attack(_two_class(), list(IMAGES[:2]), "hopskipjump", max_queries=200, progress=False)
    np.testing.assert_array_equal(result.adversarial, IMAGES[:2])
    assert not result.success.any()


def test_a_plugin_that_returns_bad_images_is_refused_with_what_it_must_return(digits):
    model, images = digits
    for bad in (lambda x: x[:, :-1], lambda x: x + 2.0, lambda x: x * np.nan, lambda x: x - 1.0):
        class Broken(onnxviz.Attack):
            name = "broken"

            def attack(self, oracle: Oracle, opts, bad=bad):
                return bad(oracle.images)

        with pytest.raises(onnxviz.MethodError, match=r"broken must return finite images of shape \(2, 32, 32, 1\) in"):
            onnxviz.attack(model, images[:2], Broken, progress=False)


def test_the_ce_loss_is_per_row_in_numpy_and_torch_alike():
    torch = pytest.importorskip("torch")
    from onnxviz.attacks.losses import class_loss

    z = np.random.default_rng(0).normal(size=(4, 5))
    classes = np.array([0, 3, 3, 1])
    expected = np.log(np.exp(z).sum(axis=1)) - z[np.arange(4), classes]
    np.testing.assert_allclose(class_loss(z, classes, "ce"), expected, rtol=1e-12)
    np.testing.assert_allclose(class_loss(torch.from_numpy(z), torch.from_numpy(classes), "ce").numpy(), expected,
                               rtol=1e-12)
    margin = np.array([max(np.delete(row, c)) - row[c] for row, c in zip(z, classes, strict=True)])
    np.testing.assert_allclose(class_loss(torch.from_numpy(z), torch.from_numpy(classes), "margin").numpy(), margin)
    saturated = z * 1000  # exp() of these overflows or underflows: the loss must not
    shifted = saturated.max(axis=1)
    expected = shifted + np.log(np.exp(saturated - shifted[:, None]).sum(axis=1)) - saturated[np.arange(4), classes]
    np.testing.assert_allclose(class_loss(saturated, classes, "ce"), expected, rtol=1e-12)
    np.testing.assert_allclose(class_loss(saturated, classes, "ce"),
                               torch.nn.functional.cross_entropy(torch.from_numpy(saturated), torch.from_numpy(classes),
                                                                 reduction="none").numpy(), rtol=1e-12)


def test_simba_dct_directions_are_single_frequencies_normalized_in_the_norm():
    """Each DCT direction, taken back to frequencies with an orthonormal 2-D DCT, is one frequency (u, v) of one
    channel (a transposed basis would put it at (v, u) or spread it); L2 directions have unit length."""
    from scipy.fft import dctn

    from onnxviz.attacks.simba import Basis, SimbaOptions

    shape = (6, 10, 3)
    basis = Basis(shape, SimbaOptions(norm="l2", basis="dct", eps=0.5))
    for index in (0, 7, 31, 95, 170):
        u, v, ch = np.unravel_index(index, shape)
        q = basis.vector(index)
        assert np.linalg.norm(q) == pytest.approx(1.0)
        spectrum = dctn(q[..., ch].astype(np.float64), norm="ortho")
        expected = np.zeros(shape[:2])
        expected[u, v] = np.sign(spectrum[u, v]) or 1
        np.testing.assert_allclose(spectrum, expected, atol=1e-6)
        assert not np.delete(q, ch, axis=2).any()
    linf = Basis(shape, SimbaOptions(norm="linf", basis="dct"))
    assert np.abs(linf.vector(31)).max() == pytest.approx(1.0)


def test_pgd_l2_random_starts_lie_inside_the_ball_at_a_uniform_radius():
    from types import SimpleNamespace

    from onnxviz.attacks.gradient_attacks import Pgd, PgdOptions

    oracle = SimpleNamespace(images=np.zeros((64, 5, 7, 3), np.float32), rng=lambda row: np.random.default_rng(row))
    starts = Pgd._start(oracle, PgdOptions(norm="l2", eps=0.5))
    radii = np.linalg.norm(starts.reshape(64, -1), axis=1)
    assert radii.max() <= 0.5 + 1e-6 and abs(radii.mean() / 0.5 - 0.5) < 0.1
    box = Pgd._start(oracle, PgdOptions(norm="linf", eps=0.1))
    assert np.abs(box).max() <= 0.1 and np.abs(box).max() > 0.09


@pytest.mark.parametrize(("norm", "step"), [("linf", 0.3), ("l2", 0.2)])
def test_simbas_default_step_is_eps_in_linf_and_at_most_0_2_in_l2(digits, norm, step):
    """Pixel basis: each accepted step moves one value by the step (each direction is tried once), so every changed
    value that was not clipped at 0 or 1 moved by exactly eps (L-inf) or min(0.2, eps) (L2, eps 5: 30 steps of 0.2
    stay inside the ball, so no projection rescales them)."""
    model, images = digits
    result = onnxviz.attack(model, images[:2], "simba", eps=0.3 if norm == "linf" else 5.0, norm=norm,
                            max_queries=60, progress=False)
    moved = np.abs(result.perturbation)
    inside = (result.adversarial > 1e-6) & (result.adversarial < 1 - 1e-6) & (moved > 1e-6)
    assert inside.sum() > 3
    np.testing.assert_allclose(moved[inside], step, rtol=1e-5)


def test_an_unknown_loss_is_refused_not_read_as_another():
    from onnxviz.attacks.losses import class_loss

    z = np.array([[1.0, 3.0, 2.0]])
    assert class_loss(z, np.array([1]), "margin")[0] == -1.0
    with pytest.raises(ValueError, match="unknown attack loss 'CE'; choose one of ce, logit, margin"):
        class_loss(z, np.array([1]), "CE")


def test_the_figures_perturbation_scale_is_the_callers(digits, tmp_path):
    """scale=None fills the range with the largest change; a given scale is used as given, also by save()."""
    import cv2

    model, images = digits
    result = onnxviz.attack(model, images[:1], "fgsm", eps=2 / 255, progress=False)
    auto, given = result.figure(), result.figure(scale=1.0)
    assert auto.shape == given.shape and np.abs(auto - given).max() > 0.2  # 0.5 / eps = 64x vs 1x
    result.save(tmp_path, scale=1.0)
    saved = cv2.imread(str(tmp_path / "attack.png"))[..., ::-1] / 255.0
    np.testing.assert_allclose(saved, given, atol=1 / 255 + 1e-6)


def test_an_attack_class_without_attack_is_refused_by_name():
    from onnxviz import registry

    class Empty(onnxviz.Attack):
        name = "empty_attack"
        paper = "https://example.org"

    with pytest.raises(onnxviz.MethodError, match=r"^Empty: it does not implement attack\(oracle, opts\)$"):
        registry.validate(Empty, "Empty")


def test_class_names_with_gaps_are_filled_by_their_index(tmp_path):
    from onnxviz.attacks.classnames import class_names

    path = tmp_path / "names.json"
    path.write_text('{"0": "cat", "2": "dog"}', encoding="utf-8")
    assert class_names(path, {}) == ["cat", "1", "dog"]


class _PlaneOracle:
    """Labels from a known plane w . x > c, for HopSkipJump's estimate of the boundary's normal."""

    def __init__(self, image: np.ndarray, w: np.ndarray, c: float, batch_size: int, budget: int = 10**9):
        self.images, self.w, self.c, self.batch_size, self.left = image[None], w, c, batch_size, budget

    def rng(self, row):
        return np.random.default_rng(7)

    def remaining(self, rows):
        return np.array([self.left])

    def decide(self, imgs, rows):
        self.left -= len(imgs)
        return (imgs.reshape(len(imgs), -1) @ self.w.ravel()) > self.c


@pytest.mark.parametrize("batch_size", [3, 64])
def test_hopskipjump_normal_estimate_is_the_papers_baseline_corrected_mean(batch_size):
    """Chen et al. 2020, eq. 16: the probes' directions weighted by their signs minus the signs' mean; taken in
    chunks of the batch size it must equal the one-batch formula, computed here from the same draws."""
    from onnxviz.attacks.hopskipjump import HopSkipJumpOptions, _Walk

    rng = np.random.default_rng(0)
    image, w = rng.random((6, 5, 3)), rng.standard_normal((6, 5, 3))
    boundary = image * 0.5 + 0.25
    c = float(w.ravel() @ boundary.ravel()) + 0.02  # off-centre: the signs' mean is far from 0
    opts = HopSkipJumpOptions(init_evals=40, max_evals=40)
    walk = _Walk(_PlaneOracle(image, w, c, batch_size), 0, opts, type("Bar", (), {"update": lambda s, n: None})())
    dist = float(np.linalg.norm(boundary - image))
    got = walk.gradient_direction(boundary, 1, dist)

    delta = np.sqrt(walk.d) * walk.theta * dist
    u = np.random.default_rng(7).standard_normal((40, *image.shape))
    u /= np.sqrt((u.reshape(40, -1) ** 2).sum(axis=1)).reshape(-1, 1, 1, 1)
    probes = np.clip(boundary + delta * u, 0, 1)
    signs = np.where(probes.reshape(40, -1) @ w.ravel() > c, 1.0, -1.0)
    assert 0.2 < abs(signs.mean()) < 1  # the baseline matters here
    expected = np.tensordot(signs - signs.mean(), (probes - boundary) / delta, axes=1)
    np.testing.assert_allclose(got, expected / np.linalg.norm(expected), rtol=1e-6, atol=1e-9)
    assert float((got * w).sum() / np.linalg.norm(w)) > 0.3  # and it points across the plane


def test_a_failed_one_pixel_attack_returns_its_best_candidate(monkeypatch):
    """Out of budget, the attack returns the candidate with the highest objective it saw (not merely one it
    tried): spy on every objective the oracle computed and compare the returned image's own."""
    seen: list[float] = []
    original = Oracle.objective

    def spy(self, z, rows, loss):
        j = original(self, z, rows, loss)
        seen.extend(np.asarray(j).tolist())
        return j

    monkeypatch.setattr(Oracle, "objective", spy)
    model = onnxviz.load(demo_model_path())
    result = onnxviz.attack(model, demo_images()[:1], "one_pixel", population=20, max_queries=60, progress=False)
    assert not result.success[0], "the budget should be too small to flip the digit"
    changed = np.argwhere(np.any(result.adversarial[0] != result.images[0], axis=-1))
    assert len(changed) <= 1
    best = max(seen[:60])  # the attack's own queries (the engine's final forward comes after)
    from onnxviz.attacks.losses import objective

    own = objective(result.logits_after[:1].astype(np.float64), result.labels[:1], None, "ce")
    np.testing.assert_allclose(own[0], best, rtol=1e-5)
