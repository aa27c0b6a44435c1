"""compare: agreement measures against their references, identical files, exports of one network (legacy vs
dynamo, NHWC vs NCHW), a broken export flagged, different architectures not flagged."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

import onnxviz
from onnxviz.cli import cli
from onnxviz.demo import demo_images, demo_model_path
from onnxviz.evaluation import spearman, ssim, top_iou
from onnxviz.evaluation.compare import DEFAULT_TOLERANCE


def test_agreement_measures_equal_their_references():
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a, b = rng.random((24, 30)), rng.random((24, 30))
    b = 0.5 * a + 0.5 * b
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic)
    unit_a, unit_b = ((m - m.min()) / np.ptp(m) for m in (a, b))
    assert ssim(a, b) == pytest.approx(structural_similarity(unit_a, unit_b, data_range=1.0, win_size=7), abs=1e-6)
    x = np.array([[9.0, 8.0], [1.0, 0.0]])
    y = np.array([[9.0, 0.0], [8.0, 1.0]])
    assert top_iou(x, y, percent=50) == pytest.approx(1 / 3)  # {0, 1} vs {0, 2}: 1 shared of 3
    assert spearman(a, a) == 1.0 and ssim(a, a) == pytest.approx(1.0) and top_iou(a, a) == 1.0
    # the default top 10%: of 1000 values, 100; one of a's top 100 pushed out of b's leaves 99 shared of 101
    big = np.arange(1000.0).reshape(25, 40)
    pushed = big.copy()
    pushed.flat[900] = -1
    assert top_iou(big, pushed) == pytest.approx(99 / 101)
    # at least one value even when 10% rounds to none
    assert top_iou(np.array([[5.0, 4, 3, 2, 1]]), np.array([[5.0, 1, 2, 3, 4]])) == 1.0
    # constant maps: equal ones agree fully, anything else not at all (rank correlation is undefined there)
    const, other = np.full((24, 30), 0.3), np.full((24, 30), 0.7)
    assert spearman(const, const) == 1.0 and spearman(const, other) == 0.0
    assert spearman(const, a) == 0.0 and spearman(a, const) == 0.0
    assert ssim(const, const) == pytest.approx(1.0)
    # a map spanning exactly 1 is an ordinary map; SSIM on small, odd and sparse maps as skimage computes it
    unit = unit_a
    assert spearman(unit, b) == pytest.approx(spearmanr(unit.ravel(), b.ravel()).statistic)
    assert spearman(b, unit) == pytest.approx(spearmanr(unit.ravel(), b.ravel()).statistic)
    small_a, small_b = rng.random((9, 8)), rng.random((9, 8))
    sparse_a, sparse_b = (np.where(rng.random((24, 30)) > 0.95, rng.random((24, 30)), 0) for _ in range(2))
    for p, q in ((small_a, small_b), (sparse_a, sparse_b)):
        scaled = [(m - m.min()) / np.ptp(m) for m in (p, q)]
        assert ssim(p, q) == pytest.approx(structural_similarity(*scaled, data_range=1.0, win_size=7), abs=1e-6)
    for side in (5, 6):  # smaller than the window's margins: the mean over the whole map, finite
        tiny = rng.random((side, side))
        assert ssim(tiny, tiny) == pytest.approx(1.0)
        assert np.isfinite(ssim(tiny, rng.random((side, side))))


def test_two_identical_files_agree_perfectly():
    path = demo_model_path()
    result = onnxviz.compare([path, path], demo_images()[:2], ["gradcam", "saliency"], progress=False)
    (pair,) = result.pairs
    assert pair.same_network and not pair.export_problem
    assert pair.max_abs_diff == 0 and pair.top1_agreement == 1.0
    for scores in pair.methods.values():
        assert scores == pytest.approx({"spearman": 1.0, "top_iou": 1.0, "ssim": 1.0})
    assert result.figure().shape[1] > 4 * 192


def test_a_comparison_records_names_targets_and_scores(tmp_path):
    """The same file twice gets the names NAME and NAME#2; both models explain the targets they share; describe()
    says the outputs, the agreement and each method; compare.json holds every field under its name."""
    import json

    path = demo_model_path()
    result = onnxviz.compare([path, path], demo_images()[:2], ["saliency"], progress=False)
    (pair,) = result.pairs
    name = onnxviz.load(path).name
    assert result.models == [name, f"{name}#2"] and (pair.a, pair.b) == (name, f"{name}#2")
    text = pair.describe()
    assert text.startswith(f"{name} vs {name}#2:  outputs max |diff| 0 (probabilities 0), top-1 agreement 100%")
    assert "saliency: Spearman 1.000" in text and "EXPORT PROBLEM" not in text
    result.save(tmp_path)
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert saved == json.loads(json.dumps(result.to_dict()))
    assert sorted(saved) == ["images", "models", "pairs", "predictions", "tolerance"]
    assert saved["models"] == result.models and saved["images"] == result.images
    assert saved["pairs"][0]["a"] == name and saved["predictions"] == result.predictions
    assert result.figure(cell=100).shape[0] < result.figure().shape[0]  # 192 pixels a cell by default
    assert saved["tolerance"] == result.tolerance == DEFAULT_TOLERANCE
    stricter = onnxviz.compare([path, path], demo_images()[:1], ["saliency"], tolerance=1e-6, progress=False)
    assert stricter.to_dict()["tolerance"] == 1e-6
    from onnxviz.viz.grid import grid

    keys = list(result.explanations)
    bare = grid([[result.explanations[k].overlay(i) for k in keys] for i in range(2)], cell=192)
    assert result.figure().shape[0] > bare.shape[0]  # every cell captioned with image, model, method, prediction


def test_exports_of_one_network_agree(build_reference, photos):
    legacy, dynamo = build_reference("resnet18_legacy"), build_reference("resnet18_dynamo")
    result = onnxviz.compare([legacy.path, dynamo.path], photos[:2], ["gradcam"], progress=False)
    (pair,) = result.pairs
    assert pair.same_network and not pair.export_problem and pair.top1_agreement == 1.0
    assert pair.methods["gradcam"]["spearman"] > 0.99 and pair.methods["gradcam"]["ssim"] > 0.95


def test_an_nhwc_export_and_an_nchw_export_of_the_same_weights_agree(build_reference, tmp_path):
    from models.exports import export

    ref = build_reference("tiny_nhwc")  # NHWC input and a Softmax tail, as Keras exports look
    nchw = export(ref.net, tmp_path / "tiny_nchw.onnx", "legacy", size=16)
    images = list(np.random.default_rng(1).uniform(0, 1, (3, 16, 16, 3)).astype(np.float32))
    result = onnxviz.compare([ref.path, nchw], images, ["saliency", "gradcam"], progress=False)
    (pair,) = result.pairs
    assert pair.same_network and not pair.export_problem, pair.describe()
    assert pair.max_abs_diff < 1e-4 and pair.top1_agreement == 1.0
    assert pair.methods["saliency"]["spearman"] > 0.999


def test_a_broken_export_is_flagged_and_other_architectures_are_not(build_reference, tmp_path):
    proto = onnx.load(demo_model_path())
    weight = [i for i in proto.graph.initializer if len(i.dims) == 4][-1]
    w = numpy_helper.to_array(weight) * 1.05  # the last conv 5% off: what a wrong BatchNorm folding does
    weight.CopyFrom(numpy_helper.from_array(w, weight.name))
    broken = tmp_path / "digits_broken.onnx"
    onnx.save(proto, broken)
    image = str(demo_model_path().parent / "digit_3.png")
    run = CliRunner().invoke(cli, ["compare", str(demo_model_path()), str(broken), image, "-m", "saliency",
                                   "--out", str(tmp_path / "out"), "-q"])
    assert run.exit_code == 2, run.output
    assert "EXPORT PROBLEM" in run.output and (tmp_path / "out" / "compare.png").is_file()
    resnet, mobilenet = build_reference("resnet18_legacy"), build_reference("mobilenet_v2_legacy")
    result = onnxviz.compare([resnet.path, mobilenet.path], [np.full((64, 64, 3), 0.5, np.float32)],
                             ["saliency"], progress=False)
    assert not result.pairs[0].same_network and not result.pairs[0].export_problem


def test_compare_needs_two_models_and_an_image():
    run = CliRunner().invoke(cli, ["compare", str(demo_model_path()), "x.png"])
    assert run.exit_code == 1 and "two or more .onnx models" in run.output


DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"


def _torch_twin(tmp_path):
    """The Keras CNN of models/keras_pair.py rebuilt in PyTorch from the same weights, exported NCHW."""
    torch = pytest.importorskip("torch")
    from models.exports import export

    w = np.load(DATA / "keras_cnn_weights.npz")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(16, 5)).eval()
    with torch.no_grad():
        for conv, name in ((net[0], "conv1"), (net[3], "conv2")):
            conv.weight.copy_(torch.tensor(w[f"{name}_kernel"].transpose(3, 2, 0, 1)))  # HWIO -> OIHW
            conv.bias.copy_(torch.tensor(w[f"{name}_bias"]))
        net[7].weight.copy_(torch.tensor(w["dense_kernel"].T))
        net[7].bias.copy_(torch.tensor(w["dense_bias"]))
    return export(net, tmp_path / "torch_cnn.onnx", "legacy", size=32)


def test_a_keras_export_and_a_pytorch_export_of_the_same_weights_agree(tmp_path):
    keras = onnxviz.load(DATA / "keras_cnn.onnx")  # tf2onnx, NHWC, ends in Softmax
    probe = np.random.default_rng(1).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    (logits,) = keras.ort.run(probe, (keras.softmax_tails["probabilities"],))
    np.testing.assert_allclose(logits, np.load(DATA / "keras_cnn_probe_logits.npy"), atol=1e-5)  # = TensorFlow
    images = list(np.random.default_rng(2).uniform(0, 1, (3, 32, 32, 3)).astype(np.float32))
    result = onnxviz.compare([DATA / "keras_cnn.onnx", _torch_twin(tmp_path)], images,
                             ["saliency", "gradcam", "occlusion"], progress=False, )
    (pair,) = result.pairs
    assert pair.same_network and not pair.export_problem, pair.describe()
    assert pair.max_abs_diff < 1e-4 and pair.top1_agreement == 1.0
    for method in ("saliency", "gradcam", "occlusion"):
        assert pair.methods[method]["spearman"] > 0.99, (method, pair.methods[method])


def _softmax_model(weights: np.ndarray, reshape_tail: bool) -> onnx.ModelProto:
    """logits = W @ flatten(x); probabilities either by Softmax on (N, C) or, as PyTorch exports
    `softmax(x.view(N, C, 1, 1), 1).view(N, C)`, by Reshape -> Softmax -> Reshape."""
    from onnx import TensorProto, helper

    classes = weights.shape[0]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])
    y = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", classes])
    nodes = [helper.make_node("Flatten", ["x"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "W"], ["logits"], transB=1)]
    inits = [numpy_helper.from_array(weights.astype(np.float32), "W")]
    if reshape_tail:
        nodes += [helper.make_node("Reshape", ["logits", "s4"], ["l4"]),
                  helper.make_node("Softmax", ["l4"], ["p4"], axis=1),
                  helper.make_node("Reshape", ["p4", "s2"], ["probs"])]
        inits += [numpy_helper.from_array(np.array([-1, classes, 1, 1], np.int64), "s4"),
                  numpy_helper.from_array(np.array([-1, classes], np.int64), "s2")]
    else:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
    model = helper.make_model(helper.make_graph(nodes, "soft", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_a_softmax_behind_a_reshape_is_compared_like_with_like(tmp_path):
    """Two exports with identical outputs, one ending Softmax -> Reshape (the PyTorch exporter's form): both are
    scored on their logits, so compare finds the same network instead of a false EXPORT PROBLEM."""
    weights = np.random.default_rng(0).standard_normal((5, 16)) * 3
    plain, tailed = tmp_path / "plain.onnx", tmp_path / "tailed.onnx"
    onnx.save(_softmax_model(weights, False), plain)
    onnx.save(_softmax_model(weights, True), tailed)
    a, b = onnxviz.load(plain), onnxviz.load(tailed)
    assert b.softmax_tails == {"probs": "l4"} and a.softmax_tails == {"probs": "logits"}
    image = np.random.default_rng(1).random((4, 4, 3)).astype(np.float32)
    x = onnxviz.load_image([image], a, preprocessing="unit")
    np.testing.assert_allclose(a.run(x, ("probs",))[0], b.run(x, ("probs",))[0], atol=1e-6)
    result = onnxviz.compare([plain, tailed], [image], ["saliency"], progress=False)
    (pair,) = result.pairs
    assert not pair.export_problem and pair.max_abs_diff < 1e-5, pair.describe()


def test_every_model_explains_the_first_models_prediction_or_the_given_target(tmp_path):
    """Two linear models that disagree (A says class 0, B says class 1 on every image): B's explanations target A's
    class, not its own; an explicit target is used by both."""
    from tests.tiny_models import linear

    weights = np.zeros((3, 16))
    bias_a, bias_b = np.array([5.0, 0, 0]), np.array([0, 5.0, 0])
    paths = []
    for name, bias in (("a", bias_a), ("b", bias_b)):
        path = tmp_path / f"{name}.onnx"
        onnx.save(linear(weights + 0.01, bias), path)
        paths.append(path)
    images = [np.random.default_rng(k).random((4, 4, 3)).astype(np.float32) for k in range(2)]
    result = onnxviz.compare(paths, images, ["occlusion"], progress=False, window=(2,), stride=(2,))
    assert result.predictions == {"a": [0, 0], "b": [1, 1]}
    assert [e.targets.tolist() for e in result.explanations.values()] == [[0, 0], [0, 0]]
    given = onnxviz.compare(paths, images, ["occlusion"], target=2, progress=False, window=(2,), stride=(2,))
    assert [e.targets.tolist() for e in given.explanations.values()] == [[2, 2], [2, 2]]
