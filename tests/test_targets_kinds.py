"""Units, similarities and output elements as targets (issue 20), against the native modules: Captum's neuron
methods (NeuronGradient, NeuronIntegratedGradients, NeuronGuidedBackprop, NeuronDeconvolution) and Occlusion on a
unit's reduction, autograd of a cosine similarity for an embedding model, and of an output element for a regression.
Networks: a Flatten-head CNN on a non-square 40 x 56 input (NCHW and an NHWC export of the same weights), and a ViT
whose token layer is folded to its 6 x 8 grid."""

from __future__ import annotations

import numpy as np
import pytest

import onnxviz
from onnxviz.errors import LayerError, TargetError

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
from models.exports import FlattenHead, Nhwc  # noqa: E402

H, W = 40, 56
SAME = 1e-4  # float32 gradients through a few layers, relative to the largest value


def _export(net, path, shape, outputs=("out",)) -> onnxviz.Model:
    import contextlib
    import io
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(*shape),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=list(outputs),
                          dynamic_axes={"input": {0: "batch"}, **{o: {0: "batch"} for o in outputs}})
    return onnxviz.load(path, preprocessing="unit")


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    net = FlattenHead(H, W, seed=3).eval()
    folder = tmp_path_factory.mktemp("units")
    nchw = _export(net, folder / "nchw.onnx", (1, 3, H, W))
    nhwc = _export(Nhwc(net).eval(), folder / "nhwc.onnx", (1, H, W, 3))
    layer = [layer.name for layer in nchw.layers if layer.op_type == "Relu"][-1]  # features[3]: (8, 20, 28)
    return net, nchw, nhwc, layer


def _images(n: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.random((n, 3, H, W)).astype(np.float32)
    x[0, :, :, : W // 3] *= 0.2
    return x


def _close(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    scale = np.abs(theirs).max()
    assert scale > 0, what
    np.testing.assert_allclose(ours, theirs, atol=SAME * scale, err_msg=what)


@pytest.mark.parametrize(("ours", "reference", "options"), [
    ("saliency", "NeuronGradient", {"abs": False}),
    ("integrated_gradients", "NeuronIntegratedGradients", {"n_steps": 16}),
    ("guided_backprop", "NeuronGuidedBackprop", {}),
    ("deconvnet", "NeuronDeconvolution", {}),
])
def test_a_neuron_target_equals_captums_neuron_methods(cnn, ours, reference, options):
    net, model, _, layer = cnn
    x = _images()
    c, y, xx = 5, 7, 19  # not on a diagonal: rows and columns must not trade places
    mine = onnxviz.explain(model, x, ours, target=f"unit:{layer}:{c}:{y}:{xx}", progress=False, **options)
    method = getattr(captum_attr, reference)(net, net.features[3])
    kwargs = {"n_steps": 16, "method": "gausslegendre"} if ours == "integrated_gradients" else {}
    theirs = method.attribute(torch.from_numpy(x), neuron_selector=(c, y, xx), **kwargs).detach().numpy()
    _close(mine.attributions, theirs, ours)
    transposed = method.attribute(torch.from_numpy(x), neuron_selector=(c, xx % 20, y), **kwargs).detach().numpy()
    assert np.abs(mine.attributions - transposed).max() > 0.05 * np.abs(theirs).max()
    assert mine.label(0).startswith(f"{ours} | position (7, 19) of channel 5 of {layer}: ")


@pytest.mark.parametrize(("suffix", "reduce"), [("", "mean"), (":max", "max")])
def test_a_channel_target_is_its_mean_or_its_strongest_position(cnn, suffix, reduce):
    net, model, nhwc, layer = cnn
    x = _images()
    mine = onnxviz.explain(model, x, "saliency", target=f"unit:{layer}:2{suffix}", abs=False, progress=False)

    def selector(out):
        return out[:, 2].mean((1, 2)) if reduce == "mean" else out[:, 2].amax((1, 2))

    theirs = captum_attr.NeuronGradient(net, net.features[3]).attribute(torch.from_numpy(x), neuron_selector=selector)
    _close(mine.attributions, theirs.detach().numpy(), reduce)
    with torch.no_grad():
        np.testing.assert_allclose(mine.scores, selector(net.features(torch.from_numpy(x))).numpy(), rtol=1e-5)
    inner = [layer.name for layer in nhwc.layers if layer.op_type == "Relu"][-1]  # the same tensor, /net/ first
    channels_last = onnxviz.explain(nhwc, np.ascontiguousarray(x.transpose(0, 2, 3, 1)), "saliency", abs=False,
                                    target=f"unit:{inner}:2{suffix}", progress=False)
    _close(channels_last.attributions.transpose(0, 3, 1, 2), theirs.detach().numpy(), f"{reduce}, NHWC input")


def test_occlusion_of_a_units_strongest_response_equals_captums(cnn):
    """The seed material's occlusion of a feature map: for every position of the square, the drop of a channel's
    maximum response; Captum's Occlusion on the same function, same window and stride."""
    net, model, _, layer = cnn
    x = _images(1)
    mine = onnxviz.explain(model, x, "occlusion", target=f"unit:{layer}:6:max", window=(8, 12), stride=(4, 6),
                           progress=False)

    def strongest(inp):
        return net.features(inp)[:, 6].amax((1, 2))

    theirs = captum_attr.Occlusion(strongest).attribute(torch.from_numpy(x), sliding_window_shapes=(3, 8, 12),
                                                        strides=(3, 4, 6), baselines=0.0)
    _close(mine.attributions, theirs.numpy(), "occlusion")


def test_a_token_unit_is_read_on_its_patch_grid(tmp_path):
    """unit:LAYER:C:Y:X on a ViT's token layer is token 1 + Y * 8 + X (after the class token) of a 6 x 8 grid."""
    pytest.importorskip("timm")
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    net = VisionTransformer(img_size=(96, 128), num_classes=5, patch_size=16, embed_dim=32, depth=2,
                            num_heads=2).eval()
    model = _export(net, tmp_path / "vit.onnx", (1, 3, 96, 128))
    layer = model.layer("block:-1")
    assert layer.layout == "tokens:1:6x8"
    x = np.random.default_rng(1).random((1, 3, 96, 128)).astype(np.float32)
    mine = onnxviz.explain(model, x, "saliency", target=f"unit:{layer.name}:3:2:5", abs=False, progress=False)
    theirs = captum_attr.NeuronGradient(net, net.blocks[-1].norm1).attribute(torch.from_numpy(x),
                                                                              neuron_selector=(1 + 2 * 8 + 5, 3))
    _close(mine.attributions, theirs.detach().numpy(), "token unit")


def test_bad_units_are_refused_with_the_valid_range(cnn):
    _, model, _, layer = cnn
    x = _images(1)
    for spec, message in [
        (f"unit:{layer}:8", rf"channel 8 is out of range: layer {layer} has 8 channels \(0..7\)"),
        (f"unit:{layer}:1:20:3", r"position 20,3 is outside layer .*'s 20 x 28 grid \(rows 0..19, columns 0..27\)"),
        ("unit:nothing:1", "no layer named 'nothing'"),
        (f"unit:{layer}", "use unit:LAYER:C"),
        (f"unit:{layer}:1:row", "use unit:LAYER:C"),
    ]:
        with pytest.raises((TargetError, LayerError), match=message):
            onnxviz.explain(model, x, "saliency", target=spec, progress=False)


class Embedder(torch.nn.Module):
    """A face-matcher-shaped network: features and a 16-d projection, L2-normalized or raw (many exports leave the
    normalization to the caller), optionally with a second, logits output."""

    def __init__(self, two_outputs: bool = False, normalized: bool = True):
        super().__init__()
        torch.manual_seed(4)
        self.body = FlattenHead(H, W, seed=4)
        self.project = torch.nn.Linear(5, 16)
        self.two, self.normalized = two_outputs, normalized

    def forward(self, x):
        logits = self.body(x)
        e = self.project(torch.tanh(logits))
        e = e / e.norm(dim=1, keepdim=True) if self.normalized else e
        return (e, logits) if self.two else e


@pytest.mark.parametrize("normalized", [False, True])
def test_a_similarity_target_is_the_cosine_to_the_reference_embedding(tmp_path, normalized):
    net = Embedder(normalized=normalized).eval()
    model = _export(net, tmp_path / "embed.onnx", (1, 3, H, W), ("embedding",))
    x = _images()
    reference = np.random.default_rng(9).random((H, W, 3)).astype(np.float32)
    from PIL import Image

    Image.fromarray((reference * 255).round().astype(np.uint8)).save(tmp_path / "ref.png")
    mine = onnxviz.explain(model, x, "saliency", target=f"similar:{tmp_path / 'ref.png'}", abs=False, progress=False)
    read = np.asarray(Image.open(tmp_path / "ref.png"), np.float32).transpose(2, 0, 1)[None] / 255
    with torch.no_grad():
        ref = net(torch.from_numpy(read))[0]
    expected = []
    for i in range(len(x)):
        xi = torch.from_numpy(x[i : i + 1]).requires_grad_(True)
        e = net(xi)[0]
        (g,) = torch.autograd.grad(torch.dot(e, ref) / (e.norm() * ref.norm()), xi)
        expected.append(g[0].numpy())
    _close(mine.attributions, np.stack(expected), "similarity")
    with torch.no_grad():
        cosine = torch.nn.functional.cosine_similarity(net(torch.from_numpy(x)), ref[None]).numpy()
    np.testing.assert_allclose(mine.scores, cosine, rtol=1e-5)
    assert mine.label(0).startswith("saliency | cosine similarity to ref.png: ")
    np.save(tmp_path / "ref.npy", ref.numpy())
    by_vector = onnxviz.explain(model, x, "saliency", target=f"similar:{tmp_path / 'ref.npy'}", abs=False,
                                progress=False)
    _close(by_vector.attributions, np.stack(expected), "similarity to a .npy embedding")
    occluded = onnxviz.explain(model, x, "occlusion", target=f"similar:{tmp_path / 'ref.npy'}", progress=False)
    assert occluded.attributions.shape == x.shape and np.abs(occluded.attributions).max() > 0
    if normalized:  # a tensor inside, named like an output: the projection before its L2 norm, same cosine
        inner = next(layer.name for layer in model.layers if layer.op_type == "Gemm" and layer.shape[-1] == 16)
        unnormed = onnxviz.explain(model, x, "saliency", target=f"{inner}:similar:{tmp_path / 'ref.png'}",
                                   abs=False, progress=False)
        _close(unnormed.attributions, np.stack(expected), "similarity of a tensor inside")


def test_bad_similarity_targets_say_what_is_wrong(tmp_path, build_reference):
    net = Embedder(two_outputs=True).eval()
    model = _export(net, tmp_path / "two.onnx", (1, 3, H, W), ("embedding", "logits"))
    x = _images(1)
    np.save(tmp_path / "short.npy", np.ones(7, np.float32))
    np.save(tmp_path / "ref.npy", np.ones(16, np.float32))
    with pytest.raises(TargetError, match=r"the model has 2 outputs \(embedding \['batch', 16\], logits \['batch', "
                                          r"5\]\); choose the embedding output with --output NAME"):
        onnxviz.explain(model, x, "saliency", target=f"similar:{tmp_path / 'ref.npy'}", progress=False)
    with pytest.raises(TargetError, match=r"short.npy holds 7 float32 values; output 'embedding' gives 16 per image"):
        onnxviz.explain(model, x, "saliency", target=f"embedding:similar:{tmp_path / 'short.npy'}", progress=False)
    with pytest.raises(onnxviz.ImageError):
        onnxviz.explain(model, x, "saliency", target=f"embedding:similar:{tmp_path / 'missing.png'}",
                        progress=False)
    seg = onnxviz.load(build_reference("tiny_seg").path, preprocessing="unit")
    with pytest.raises(TargetError, match=r"output '.*' of shape \[1, \d+, \d+, \d+\] \(float32\) is no embedding"):
        onnxviz.explain(seg, onnxviz.load_image(np.zeros((32, 32, 3), np.float32), seg), "saliency",
                        target=f"similar:{tmp_path / 'ref.npy'}", progress=False)


def test_a_value_target_explains_one_regression_output(tmp_path):
    net = FlattenHead(H, W, seed=5).eval()
    model = _export(net, tmp_path / "reg.onnx", (1, 3, H, W), ("values",))
    x = _images()
    mine = onnxviz.explain(model, x, "saliency", target="values:value:3", abs=False, progress=False)
    xt = torch.from_numpy(x).requires_grad_(True)
    (g,) = torch.autograd.grad(net(xt)[:, 3].sum(), xt)
    _close(mine.attributions, g.numpy(), "value")
    assert list(mine.targets) == [3, 3]


class ChannelsLastInside(torch.nn.Module):
    """A layer that is channels-last inside the graph (as Swin's stages, ConvNeXt's norms, tf2onnx graphs are): a
    convolution, a transpose to (N, H, W, C), a ReLU there, a per-position linear map and a Flatten head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(6)
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.mix = torch.nn.Linear(8, 8)
        self.head = torch.nn.Linear(8 * (H // 2) * (W // 2), 4)

    def inner(self, x):
        return torch.relu(self.conv(x).permute(0, 2, 3, 1))

    def forward(self, x):
        return self.head(self.mix(self.inner(x)).flatten(1))


def test_a_unit_of_a_channels_last_layer_is_read_in_its_layout(tmp_path):
    net = ChannelsLastInside().eval()
    model = _export(net, tmp_path / "inside.onnx", (1, 3, H, W))
    layer = next(layer for layer in model.layers if layer.op_type == "Relu")
    assert layer.layout == "NHWC" and layer.spatial == (H // 2, W // 2)
    x = _images()
    with torch.no_grad():
        c = int(net.inner(torch.from_numpy(x))[0, 3, 17].argmax())  # a live unit (after the ReLU)
    mine = onnxviz.explain(model, x, "saliency", target=f"unit:{layer.name}:{c}:3:17", abs=False, progress=False)
    xt = torch.from_numpy(x).requires_grad_(True)
    (g,) = torch.autograd.grad(net.inner(xt)[:, 3, 17, c].sum(), xt)
    _close(mine.attributions, g.numpy(), "NHWC unit")
