"""Inspection: receptive fields by hand, top-k against brute force, kernels and statistics of known weights,
deterministic embeddings, the model summary and the CLI."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import onnxviz
from onnxviz.cli import cli
from onnxviz.demo import demo_model_path
from onnxviz.inspect.embed import embed
from onnxviz.inspect.folders import labelled_images
from onnxviz.inspect.kernels import kernel_grid, scale_to_unit, weight_stats
from onnxviz.inspect.patches import crop, top_patches
from onnxviz.inspect.receptive import receptive_fields
from onnxviz.inspect.summary import totals


def _conv_stack(specs: list[tuple[int, int, int, int]], channels: int = 3, size: int = 32, weights=None):
    """Convs (kernel, stride, pad, dilation) in a row; returns the model (tensor names c0, c1, ...)."""
    nodes, inits, prev = [], [], "x"
    rng = np.random.default_rng(0)
    for i, (k, s, p, d) in enumerate(specs):
        w = weights if (weights is not None and i == 0) else rng.standard_normal((channels, channels, k, k))
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"w{i}"))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], kernel_shape=[k, k], strides=[s, s],
                                      pads=[p, p, p, p], dilations=[d, d]))
        prev = f"c{i}"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, size, size])
    y = helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", channels, "h", "w"])
    graph = helper.make_graph(nodes, "stack", [x], [y], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return onnxviz.load(proto)


def test_receptive_fields_of_conv_stacks_equal_hand_computation():
    fields = receptive_fields(_conv_stack([(3, 1, 1, 1)] * 3).proto)
    assert [fields[f"c{i}"].size for i in range(3)] == [(3, 3), (5, 5), (7, 7)]
    assert fields["c2"].jump == (1, 1) and fields["c2"].box(0, 0) == (-3, -3, 4, 4)  # centred on pixel 0
    # 3x3 s2 p1 -> 3, jump 2; then 3x3 dilation 2 -> 3 + 2*2*2 = 11; then 5x5 s1 p0 -> 11 + 4*2 = 19
    fields = receptive_fields(_conv_stack([(3, 2, 1, 1), (3, 1, 2, 2), (5, 1, 0, 1)]).proto)
    assert fields["c0"].size == (3, 3) and fields["c0"].jump == (2, 2)
    assert fields["c1"].size == (11, 11) and fields["c2"].size == (19, 19) and fields["c2"].jump == (2, 2)
    # the unpadded 5x5 moves the centre of position 0 by 2 positions of the previous tensor (jump 2): +4 px
    assert fields["c2"].start == (4.0, 4.0)


def test_receptive_fields_of_resnet18_stages(build_reference):
    model = onnxviz.load(build_reference("resnet18_legacy").path)
    fields = receptive_fields(model.proto)
    last = {}
    for layer in model.layers:  # the last tensor of each stage, as the layer table names them
        for stage in ("layer1", "layer2", "layer3", "layer4"):
            if f"/{stage}/" in layer.name:
                last[stage] = layer.name
    # conv1 7 (jump 2), maxpool +2*2 = 11 (jump 4), layer1 four 3x3 convs +4*2*4 = 43, layer2 +8 (s2 conv at jump 4)
    # then three more at jump 8 = 99, layer3 +16 +3*32 = 211, layer4 +32 +3*64 = 435
    assert [fields[last[s]].size[0] for s in ("layer1", "layer2", "layer3", "layer4")] == [43, 99, 211, 435]
    assert fields[last["layer4"]].jump == (32, 32)


def test_model_summary_counts_resnet18(build_reference):
    params, flops = totals(onnxviz.load(build_reference("resnet18_legacy").path))
    # torchvision counts 11,689,512; the export folds BatchNorm into the convs, which changes the count by 0.07%
    assert params == pytest.approx(11_689_512, rel=1e-3)
    stack = _conv_stack([(3, 1, 1, 1)] * 2, size=8)
    assert totals(stack) == (2 * 3 * 3 * 9, 2 * (2 * 27 * 3 * 8 * 8))  # two 3x3 convs, 3 -> 3 channels, 8x8
    assert flops == pytest.approx(2 * 1.814e9, rel=0.01)  # 1.81 G multiply-adds, the published figure


def test_the_kernel_grid_reproduces_a_known_initializer():
    w = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2) - 5
    model = _conv_stack([(2, 1, 0, 1)], weights=w)
    picture, what = kernel_grid(model, mode="rgb", cell=2)
    expected = scale_to_unit(w).transpose(0, 2, 3, 1)  # each filter as a 2x2 RGB tile
    np.testing.assert_allclose(picture[0:2, 0:2], expected[0], atol=1e-6)
    np.testing.assert_allclose(picture[0:2, 4:6], expected[1], atol=1e-6)  # after a 2-pixel gap
    assert "rgb" in what
    (stats,) = weight_stats(model)
    assert (stats.min, stats.max, stats.params) == (-5.0, 18.0, 24)
    assert stats.mean == pytest.approx(w.mean()) and stats.std == pytest.approx(w.std())
    assert stats.sparsity == pytest.approx(1 / 24)  # one exact zero


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    from models.digits import digit_images

    root = tmp_path_factory.mktemp("digits")
    images, labels = digit_images()
    for i in range(24):
        folder = root / str(labels[i])
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"{i:03d}.png"), (images[i] * 255).astype(np.uint8))
    return root


def test_top_patches_equal_brute_force(digit_folder):
    model = onnxviz.load(demo_model_path())
    paths, labels = labelled_images([digit_folder])
    assert labels is not None and len(set(labels)) == 10
    layer = "/features/features.4/Relu_output_0"
    hits, _, _ = top_patches(model, paths, layer, [0, 2, 5], k=4, batch_size=5, progress=False)
    (acts,) = model.ort.run(onnxviz.load_image(paths, model), (layer,))
    for c in (0, 2, 5):
        flat = acts[:, c].reshape(len(paths), -1)
        order = sorted(range(len(paths)), key=lambda i: (-flat[i].max(), i))[:4]
        assert [h.image for h in hits[c]] == order
        np.testing.assert_allclose([h.value for h in hits[c]], [flat[i].max() for i in order], rtol=1e-6)
        top = hits[c][0]
        assert top.patch.shape[:2] == (8, 8)  # the 8x8 receptive field of this layer
        y, x = divmod(int(flat[top.image].argmax()), acts.shape[3])
        assert (top.y, top.x) == (y, x)


def test_top_patches_are_shown_with_the_projection_of_their_single_activation(digit_folder, tmp_path):
    """Zeiler & Fergus: each hit's deconvnet reconstruction of that one unit (unit:LAYER:C:Y:X, which equals
    Captum's NeuronDeconvolution: tests/test_targets_kinds.py), cropped to the patch's receptive field. Hits at
    different positions project to different pixels."""
    pytest.importorskip("torch")
    from onnxviz.inspect.projections import as_picture, project

    model = onnxviz.load(demo_model_path())
    paths, _ = labelled_images([digit_folder])
    layer = "/features/features.4/Relu_output_0"
    hits, rf, name = top_patches(model, paths, layer, [2], k=3, batch_size=8, progress=False)
    shown = project(model, hits, paths, name, rf, "deconvnet", progress=False)
    assert len(shown[2]) == 3 and shown[2][0].shape == hits[2][0].patch.shape
    top = hits[2][0]
    whole = onnxviz.explain(model, onnxviz.load_image(paths[top.image], model), "deconvnet",
                            target=f"unit:{name}:2:{top.y}:{top.x}", progress=False).attributions[0]
    np.testing.assert_allclose(shown[2][0], crop(as_picture(whole, "NCHW"), rf.box(top.y, top.x)), atol=1e-6)
    outside = np.ones(whole.shape[1:], bool)
    t, left, b, r = rf.box(top.y, top.x)
    outside[max(t, 0) : b, max(left, 0) : r] = False
    assert np.abs(whole[:, outside]).max() == 0  # nothing outside the receptive field reaches the unit
    run = CliRunner().invoke(cli, ["inspect", "top-patches", str(demo_model_path()), str(digit_folder), "--layer",
                                   layer, "--channels", "2", "-k", "2", "--project", "guided_backprop", "-q", "--out",
                                   str(tmp_path)])
    assert run.exit_code == 0, run.output
    assert (tmp_path / "top_patches.png").is_file()


def test_embeddings_are_deterministic(digit_folder):
    model = onnxviz.load(demo_model_path())
    paths, labels = labelled_images([digit_folder])
    a = embed(model, paths, None, "pca", labels, progress=False)
    b = embed(model, paths, None, "pca", labels, batch_size=7, progress=False)
    np.testing.assert_allclose(a.points, b.points, atol=1e-5)
    centred = a.features - a.features.mean(axis=0)
    assert np.var(a.points[:, 0]) == pytest.approx(np.linalg.svd(centred, compute_uv=False)[0] ** 2 / len(paths))
    t1 = embed(model, paths, None, "tsne", labels, seed=3, progress=False)
    t2 = embed(model, paths, None, "tsne", labels, seed=3, progress=False)
    np.testing.assert_allclose(t1.points, t2.points)


def test_cli_inspect_commands(digit_folder, tmp_path):
    model = str(demo_model_path())
    image = str(demo_model_path().parent / "digit_3.png")
    runner = CliRunner()
    for args, written in ((["kernels", model], "kernels.png"),
                          (["features", model, image, "--top", "6", "--overlay"], "features.png"),
                          (["embed", model, str(digit_folder), "-q"], "embed.html"),
                          (["top-patches", model, str(digit_folder), "--channels", "0-2", "-k", "3", "-q"],
                           "top_patches.png")):
        result = runner.invoke(cli, ["inspect", *args, "--out", str(tmp_path), "--overwrite"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / written).is_file()
    page = (tmp_path / "embed.html").read_text()
    assert page.count("<circle") == 24 and "data:image/png;base64," in page
    info = runner.invoke(cli, ["info", model, "--no-torch"])
    assert "23.95k parameters" in info.output and "18x18 px, stride 4x4" in info.output
    bad = runner.invoke(cli, ["inspect", "kernels", model, "--layer", "output"])
    assert bad.exit_code == 1 and "is not a Conv output" in bad.output
    bad = runner.invoke(cli, ["inspect", "top-patches", model, str(digit_folder), "--channels", "0,x"])
    assert bad.exit_code == 1 and "--channels takes indices" in bad.output


def test_receptive_fields_keep_height_and_width_apart():
    """Non-square everything: a 3 x 5 kernel with strides 2 x 1 and pads (1, 2) — the kernel given only by the
    weight's shape, no kernel_shape attribute — then a 1 x 3 max-pool, stride 1 x 2, no pads. Height and width must
    not trade places anywhere: sizes (3, 5) -> (3, 7), jumps (2, 1) -> (2, 2), starts (0, 0) -> (0, 1)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 20, 30])
    y = helper.make_tensor_value_info("p", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((2, 1, 3, 5), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 1], pads=[1, 2, 1, 2]),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[1, 3], strides=[1, 2])]
    proto = helper.make_model(helper.make_graph(nodes, "rect", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 17)])
    fields = receptive_fields(proto)
    conv, pool = fields["c"], fields["p"]
    assert (conv.size, conv.jump, conv.start) == ((3, 5), (2, 1), (0.0, 0.0))
    assert (pool.size, pool.jump, pool.start) == ((3, 7), (2, 2), (0.0, 1.0))
    # position (row 2, column 3) of the pool sees rows 4 +/- 1 and columns 1 + 3 * 2 +/- 3
    assert pool.box(2, 3) == (3, 4, 6, 11)
    assert str(pool) == "3x7 px, stride 2x2" and str(conv) == "3x5 px, stride 2x1"
    assert str(fields["x"]) == "1x1 px, stride 1x1"


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_same_padding_centres_the_receptive_field(auto_pad):
    """auto_pad SAME pads (d (k - 1)) / 2 in front: a 3 x 5 kernel with dilation 2 x 1 stays centred on its pixel."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 20, 30])
    y = helper.make_tensor_value_info("c", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((2, 1, 3, 5), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 5], dilations=[2, 1], auto_pad=auto_pad)
    proto = helper.make_model(helper.make_graph([node], "same", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 17)])
    field = receptive_fields(proto)["c"]
    assert (field.size, field.jump, field.start) == ((5, 5), (1, 1), (0.0, 0.0))
    assert field.box(4, 7) == (2, 5, 7, 10)
