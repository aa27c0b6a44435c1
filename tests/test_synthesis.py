"""Synthesis: priors and Gram matrices exactly, objectives that rise, inversions that match, a class
visualization the model recognizes, determinism, the graph cut, results and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import onnxviz
from onnxviz.cli import cli
from onnxviz.demo import demo_images, demo_model_path

torch = pytest.importorskip("torch")

RELU = "/features/features.4/Relu_output_0"  # second conv block of the digits CNN


@pytest.fixture(scope="module")
def model():
    return onnxviz.load(demo_model_path())


def test_priors_are_exact_on_tiny_arrays():
    from onnxviz.synthesis.regularizers import l1, l2, penalty, tv

    x = np.array([[[[0.0, 0.5], [1.0, 0.25]]]], np.float32)  # (1, 1, 2, 2)
    assert l1(x)[0] == pytest.approx(1.75 / 4)
    assert l2(x)[0] == pytest.approx((0.25 + 1 + 0.0625) / 4)
    # vertical |1-0|, |0.25-0.5| over 2 values; horizontal |0.5-0|, |0.25-1| over 2 values
    assert tv(x)[0] == pytest.approx((1 + 0.25) / 2 + (0.5 + 0.75) / 2)
    t = torch.tensor(x)
    assert float(penalty(t, 2.0, 0.0, 3.0)[0]) == pytest.approx(2 * 1.75 / 4 + 3 * 1.25)


def test_gram_matrices_equal_numpy():
    from onnxviz.synthesis.style import gram

    f = np.random.default_rng(0).standard_normal((2, 4, 3, 5)).astype(np.float32)
    flat = f.reshape(2, 4, 15)
    expected = np.einsum("bik,bjk->bij", flat, flat) / (4 * 15)
    np.testing.assert_allclose(gram(torch.tensor(f)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_a_class_visualization_is_classified_as_that_class(model):
    result = onnxviz.synthesize(model, "maximize", "class:0-9", progress=False)
    assert result.images.shape == (10, 32, 32, 1) and result.captions[3] == "class 3"
    x = onnxviz.load_image(list(result.images), model)
    predicted = onnxviz.explain(model, x, "occlusion", window=(32,), progress=False).predictions
    assert predicted.tolist() == list(range(10))
    assert (result.history[:, -10:].mean(axis=1) > result.history[:, :10].mean(axis=1)).all()


def test_the_objective_rises_for_channels_neurons_and_mixes(model):
    for spec in (f"{RELU}:5", f"{RELU}:5:8:8", f"class:2 - 0.5 * {RELU}:1", "conv:-1:3"):
        result = onnxviz.synthesize(model, "maximize", spec, steps=60, param="pixel", progress=False)
        first, last = result.history[0, :5].mean(), result.history[0, -5:].mean()
        assert last > first + 1e-3, (spec, first, last)


def test_seeded_runs_are_deterministic(model):
    a = onnxviz.synthesize(model, "maximize", f"{RELU}:0-3", steps=20, seed=1, progress=False)
    b = onnxviz.synthesize(model, "maximize", f"{RELU}:0-3", steps=20, seed=1, progress=False)
    c = onnxviz.synthesize(model, "maximize", f"{RELU}:0-3", steps=20, seed=2, progress=False)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_inversion_reduces_the_activation_distance_by_90_percent(model):
    result = onnxviz.synthesize(model, "invert", layer=RELU, images=demo_images()[:2], steps=200, progress=False)
    assert min(result.extras["reduction"]) >= 0.9, result.extras


def test_deepdream_raises_the_layer_energy_and_keeps_the_size(model):
    result = onnxviz.synthesize(model, "deepdream", images=demo_images()[:1], steps=5, octaves=2, progress=False)
    assert result.images.shape == (1, 32, 32, 1)
    assert result.history[0, -1] > result.history[0, 0]


def test_style_transfer_moves_the_gram_matrices_towards_the_style(model):
    from onnxviz.synthesis.engine import Engine
    from onnxviz.synthesis.style import default_layers, gram

    content, style = demo_images()[1], demo_images()[3]
    result = onnxviz.synthesize(model, "style_transfer", images=[content], style=style, steps=40, progress=False)
    assert result.history[0, -1] < result.history[0, 0]
    engine = Engine(model, model.preprocessing)
    layers = tuple(default_layers(model)[0])

    def grams(images):
        t = torch.tensor(np.stack(images)).permute(0, 3, 1, 2)
        with torch.no_grad():
            return [gram(a) for a in engine.tensors(t, layers)]

    from onnxviz.attacks.run import read_images

    (c_img, s_img), _ = read_images([content, style], model)
    goal = grams([s_img])
    before = sum(float((g - s).pow(2).sum()) for g, s in zip(grams([c_img]), goal, strict=True))
    after = sum(float((g - s).pow(2).sum()) for g, s in zip(grams([result.images[0]]), goal, strict=True))
    assert after < 0.5 * before


def test_style_transfer_on_an_rgb_nhwc_model_with_lbfgs(build_reference):
    nhwc = onnxviz.load(build_reference("tiny_nhwc").path)
    rng = np.random.default_rng(0)
    content, style = rng.uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    result = onnxviz.synthesize(nhwc, "style_transfer", images=[content], style=style, steps=5, progress=False)
    assert result.images.shape == (1, 16, 16, 3) and result.history[0, -1] <= result.history[0, 0]


def test_shape_texture_probe_counts_every_pair(model):
    result = onnxviz.synthesize(model, "shape_texture", images=demo_images(), pairs=3, steps=10, progress=False)
    extras = result.extras
    assert len(result.images) == 3 == len(extras["pairs"])
    assert extras["shape_decisions"] + extras["texture_decisions"] + extras["other_decisions"] == 3
    assert 0 <= extras["shape_share"] <= 1 or np.isnan(extras["shape_share"])


def test_objectives_only_compute_up_to_the_deepest_layer(model):
    backend = model.gradient_backend()
    early = len(list(backend.view(("/features/features.1/Relu_output_0",)).graph.nodes))
    full = len(list(backend.view((model.outputs[0],)).graph.nodes))
    assert early < full / 2


def test_nhwc_models_take_channel_objectives(build_reference):
    ref = build_reference("tiny_nhwc")
    nhwc = onnxviz.load(ref.path)
    layer = [layer for layer in nhwc.layers if layer.op_type == "Relu" and layer.spatial][-1]
    result = onnxviz.synthesize(nhwc, "maximize", f"{layer.name}:0-1", steps=30, progress=False)
    assert result.images.shape == (2, 16, 16, 3)
    assert (result.history[:, -5:].mean(axis=1) > result.history[:, :5].mean(axis=1)).all()


def test_bad_objectives_and_requests_are_clear(model):
    for spec, message in (("nope:3", "bad objective term"), (f"{RELU}:9-2", "the end comes before"),
                          (f"{RELU}:0-3 + class:0-9", "only one term"), ("class:12", "only 10 classes"),
                          (f"{RELU}:999", "only 32 channels"), (f"{RELU}:0:99:0", "outside the layer"),
                          ("x*class:1", "bad weight")):
        with pytest.raises(onnxviz.OptionError, match=message):
            onnxviz.synthesize(model, "maximize", spec, steps=1, progress=False)
    with pytest.raises(onnxviz.OnnxvizError, match="needs at least 1 image"):
        onnxviz.synthesize(model, "invert", progress=False)
    with pytest.raises(onnxviz.MethodError, match="makes images"):
        onnxviz.explain(model, demo_images()[:1], "maximize")
    with pytest.raises(onnxviz.OptionError, match="needs a style image"):
        onnxviz.synthesize(model, "style_transfer", images=demo_images()[:1], steps=1, progress=False)


def test_result_saves_grid_gif_and_json(model, tmp_path):
    from PIL import Image

    result = onnxviz.synthesize(model, "maximize", "class:1-2", steps=12, frames=4, progress=False)
    names = {p.name for p in result.save(tmp_path)}
    assert names == {"synthesis.png", "image_0.png", "image_1.png", "synthesis.gif", "result.json"}
    with Image.open(tmp_path / "synthesis.gif") as gif:
        assert gif.n_frames == 5  # 4 snapshots and the final image


def test_cli_synthesize(tmp_path):
    out = tmp_path / "out"
    run = CliRunner().invoke(cli, ["synthesize", str(demo_model_path()), "--objective", "class:3", "--steps", "30",
                                   "--out", str(out), "-q"])
    assert run.exit_code == 0, run.output
    assert "class 3:" in run.output and (out / "synthesis.png").is_file()
    bad = CliRunner().invoke(cli, ["synthesize", str(demo_model_path()), "-m", "gradcam"])
    assert bad.exit_code == 1 and "is not a synthesis method; choose one of: deepdream" in bad.output


def test_a_fixed_batch_model_takes_a_class_range():
    """A batch-1 export with a constant Reshape (as the dynamo exporter writes) still optimizes 3 images."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.array([1, 4], np.int64), "shape"),
             numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Reshape", ["g", "shape"], ["flat"]),
             helper.make_node("Gemm", ["flat", "fc"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "fixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    result = onnxviz.synthesize(onnxviz.load(proto), "maximize", "class:0-2", steps=20, progress=False)
    assert result.images.shape == (3, 8, 8, 3)
    assert (result.history[:, -3:].mean(axis=1) > result.history[:, :3].mean(axis=1)).all()


def test_objectives_compose_as_values_and_equal_their_spec(model):
    """channel(L, 3) - 0.5 * neuron(L, 7, 2, 3) is the same objective as its spec; a plugin can add a kind."""
    import torch

    from onnxviz.synthesis import Objective, channel, class_logit, neuron
    from onnxviz.synthesis.engine import Engine
    from onnxviz.synthesis.objectives import as_objective

    engine = Engine(model, model.preprocessing)
    composed = as_objective(channel(RELU, 3) - 0.5 * neuron(RELU, 7, 2, 3) + 2 * class_logit(1), engine)
    parsed = as_objective(f"{RELU}:3 - 0.5*{RELU}:7:2:3 + 2*class:1", engine)
    assert composed.label() == parsed.label() == f"{RELU}:3 - 0.5*{RELU}:7 @ 2,3 + 2*class 1"
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    names = composed.tensors(engine.logits)
    values = dict(zip(names, engine.tensors(images, names), strict=True))
    a, b = composed.value(values, engine.logits, 2), parsed.value(values, engine.logits, 2)
    torch.testing.assert_close(a, b)
    acts = values[names[0]]  # the pre-ReLU tensor, channels first
    logits = values[engine.logits]
    expected = acts[:, 3].mean((1, 2)) - 0.5 * acts[:, 7, 2, 3] + 2 * logits[:, 1]
    torch.testing.assert_close(a, expected)

    class Activity(Objective):  # a new objective kind, as a plugin would write one: a layer's mean activity
        def tensors(self, logits):
            return (RELU,)

        def value(self, values, logits, batch):
            return values[RELU].reshape(batch, -1).mean(1)

        def label(self, i=0):
            return "activity"

    mixed = as_objective(Activity() - 0.1 * class_logit(2), engine)
    names = mixed.tensors(engine.logits)
    values = dict(zip(names, engine.tensors(images, names), strict=True))
    torch.testing.assert_close(mixed.value(values, engine.logits, 2),
                               values[RELU].reshape(2, -1).mean(1) - 0.1 * values[engine.logits][:, 2])
    assert mixed.label() == "activity - 0.1*class 2"
    result = onnxviz.synthesize(model, "maximize", mixed, steps=2, progress=False)
    assert result.images.shape == (1, 32, 32, 1) and result.captions == ["activity - 0.1*class 2"]


def test_style_transfer_moves_on_a_network_with_small_activations(tmp_path):
    """open_nsfw's style loss is about 1e-4: its gradients fell below L-BFGS's tolerance and the image never
    changed. Scaled to its starting value, the loss falls whatever the network's scale (here the digits model
    with its first convolution 1e-4 times weaker)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(demo_model_path())
    first = next(i for i in proto.graph.initializer if len(i.dims) == 4)
    first.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(first) * 1e-4, first.name))
    weak = tmp_path / "weak.onnx"
    onnx.save(proto, weak)
    images = demo_images()
    result = onnxviz.synthesize(weak, "style_transfer", images=images[:1], style=images[1], steps=15, progress=False)
    assert result.history.shape[1] > 1
    assert result.history[0, -1] < 0.9 * result.history[0, 0]


def test_maximize_finds_the_known_optimum_of_a_linear_unit():
    """A linear logit w . x over images in [0, 1] peaks at x = 1 where w > 0 and x = 0 where w < 0: activation
    maximization (pixel parameterization, no transforms) must land there, and on no other image."""
    from tests.tiny_models import linear

    w = np.random.default_rng(4).standard_normal((3, 36)).astype(np.float32)
    model = onnxviz.load(linear(w, np.zeros(3, np.float32), shape=(1, 6, 6)))
    model.use_preprocessing("unit")
    result = onnxviz.synthesize(model, "maximize", "class:2", param="pixel", jitter=0, scale=(1.0, 1.0),
                                steps=300, lr=0.1, progress=False)
    image = result.images[0, ..., 0].ravel()
    strong = np.abs(w[2]) > 0.1 * np.abs(w[2]).max()  # tiny weights barely pull in the steps given
    np.testing.assert_allclose(image[strong], (w[2][strong] > 0).astype(np.float32), atol=0.1)
    optimum = float(np.maximum(w[2], 0).sum())
    assert result.history[0, -1] > 0.95 * optimum  # the objective reached 95% of the best any image can


@pytest.fixture(scope="module")
def conv_net():
    """gap_net on 10 x 14 RGB (not square) with unit preprocessing: its "conv" and "act" layers are known in numpy."""
    from tests.tiny_models import gap_net

    rng = np.random.default_rng(3)
    weights = (0.3 * rng.standard_normal((8, 3, 3, 3))).astype(np.float32)
    model = onnxviz.load(gap_net(weights, rng.standard_normal((4, 8)).astype(np.float32), size=(10, 14)))
    model.use_preprocessing("unit")
    images = rng.uniform(0.1, 0.9, (2, 10, 14, 3)).astype(np.float32)
    return model, weights, images


def _conv(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    from tests.tiny_models import conv3x3

    return conv3x3(image.transpose(2, 0, 1).astype(np.float64), weights.astype(np.float64))


def test_inversion_reconstructs_the_image_from_an_injective_layer(conv_net):
    """A 3 -> 8 channel convolution is injective: matching its activations means recovering the image. The distance
    reported is the one numpy measures on the result (normalized by ||A(image)||^2, as the paper)."""
    model, weights, images = conv_net
    result = onnxviz.synthesize(model, "invert", layer="conv", images=[images[0]], steps=300, tv=0.0, progress=False)
    goal, got = _conv(images[0], weights), _conv(result.images[0], weights)
    distance = ((got - goal) ** 2).sum() / (goal**2).sum()
    assert distance < 1e-5
    np.testing.assert_allclose(result.extras["final_distance"][0], distance, rtol=0.5)  # one Adam step apart
    assert np.linalg.norm(result.images[0] - images[0]) < 0.01 * np.linalg.norm(images[0])


def test_a_deepdream_step_is_the_normalized_gradient_of_the_mean_squared_activation(conv_net):
    """One octave, one step, no jitter: energy E = mean(relu(conv(x))^2) and the step x + lr g / mean|g| with
    g = dE/dx = conv^T(2 relu(conv(x)) / n), all in numpy (conv^T from the convolution's matrix)."""
    model, weights, images = conv_net
    x = images[0]
    lr = 0.05
    result = onnxviz.synthesize(model, "deepdream", images=[x], layers=("act",), octaves=1, steps=1, jitter=0, lr=lr,
                                progress=False)
    pre = _conv(x, weights)
    energy = (np.maximum(pre, 0) ** 2).mean()
    np.testing.assert_allclose(result.history[0, 0], energy, rtol=1e-5)
    basis = np.eye(x.size).reshape(x.size, *x.shape)
    matrix = np.stack([_conv(b, weights).ravel() for b in basis], axis=1)  # (outputs, inputs in HWC order)
    grad = (matrix.T @ (2 * np.maximum(pre, 0).ravel() / pre.size)).reshape(x.shape)
    expected = np.clip(x + lr * grad / np.abs(grad).mean(), 0, 1)
    np.testing.assert_allclose(result.images[0], expected, atol=1e-5)


def test_style_loss_is_the_gram_distance_numpy_computes(conv_net):
    """From the content image the content term is 0: the first loss is beta times the style term, sum over layers
    of mean((G - G_style)^2), G = F F^T / (C H W), in numpy; after 40 Adam steps numpy's distance has halved."""
    model, weights, (content, style) = conv_net

    def grams(image):
        pre = _conv(image, weights)
        return [f.reshape(8, -1) @ f.reshape(8, -1).T / f.size for f in (pre, np.maximum(pre, 0))]

    def style_distance(image):
        return sum(((g - s) ** 2).mean() for g, s in zip(grams(image), grams(style), strict=True))

    beta = 10.0
    result = onnxviz.synthesize(model, "style_transfer", images=[content], style=style, style_layers=("conv", "act"),
                                content_layer="act", beta=beta, optimizer="adam", lr=0.02, steps=40, progress=False)
    np.testing.assert_allclose(result.history[0, 0], beta * style_distance(content), rtol=1e-4)
    assert style_distance(result.images[0]) < 0.5 * style_distance(content)
