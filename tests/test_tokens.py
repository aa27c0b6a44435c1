"""Token layouts (issue 19): transformer tensors are read as (prefix tokens + an h x w patch grid), the default layer
of a ViT is its last block's attention input, and the CAM family on tokens equals pytorch-grad-cam with the
`reshape_transform` its users write by hand, on the native timm module.

The networks are small timm models with random weights on a non-square 96 x 128 input (a 6 x 8 patch grid, so a
transposed fold or a swapped grid fails): a ViT with a class token, a DeiT with class + distillation tokens, a
ViT with 4 register tokens, and a Swin whose stages are channels-last (N, h, w, C); each exported by the legacy
exporter (dynamic batch: shape inference leaves the token counts symbolic) and by the dynamo exporter."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

import onnxviz
from onnxviz.cli import cli
from onnxviz.errors import LayerError
from onnxviz.layout import layout, tokens
from onnxviz.tensor_layout import infer, plausible_map, token_split

H, W = 96, 128
GRID = (6, 8)
PREFIX = {"vit": 1, "deit": 2, "registers": 5}
CAMS = {"gradcam": "GradCAM", "hirescam": "HiResCAM", "xgradcam": "XGradCAM", "gradcam_plus_plus": "GradCAMPlusPlus",
        "layercam": "LayerCAM"}
SAME = 1e-4  # float32 through two attention blocks, relative to the map's maximum (measured ~2e-6)


# -- layouts without a model ------------------------------------------------------------------------------------
def test_a_token_layout_folds_patches_row_major_and_keeps_the_prefix_on_the_way_back():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for channels_last in (True, False):
        lay = tokens(2, (2, 3), channels_last)
        x = rng.random((2, 8, 4) if channels_last else (2, 4, 8))
        folded = lay.to_channels_first(x)
        assert folded.shape == (2, 4, 2, 3)
        token = x[1, 2 + 1 * 3 + 2] if channels_last else x[1, :, 2 + 1 * 3 + 2]  # row 1, column 2
        np.testing.assert_array_equal(folded[1, :, 1, 2], token)
        np.testing.assert_array_equal(lay.from_channels_first(folded, like=x), x)
        back = lay.from_channels_first(folded)  # no `like`: zero prefix tokens
        assert np.all((back[:, :2] if channels_last else back[:, :, :2]) == 0)
        t = torch.from_numpy(x)
        assert torch.equal(lay.from_channels_first(lay.to_channels_first(t), like=t), t)
    assert layout("tokens:1:14x14") == tokens(1, (14, 14)) and str(layout("ctokens:0:7x7")) == "ctokens:0:7x7"
    assert layout("nhwc").name == "NHWC"
    with pytest.raises(onnxviz.OptionError, match="tokens:P"):
        layout("rows")
    with pytest.raises(onnxviz.OptionError, match=r"does not hold 1 \+ 2x3"):
        tokens(1, (2, 3)).to_channels_first(np.zeros((1, 8, 4)))


@pytest.mark.parametrize(("count", "image", "expected"), [
    (197, (224, 224), (1, (14, 14))),  # ViT: class token
    (198, (224, 224), (2, (14, 14))),  # DeiT: class + distillation
    (201, (224, 224), (5, (14, 14))),  # class + 4 registers
    (196, (224, 224), (0, (14, 14))),  # LeViT / pooled ViTs: no prefix
    (141, (160, 224), (1, (10, 14))),  # non-square: 10 x 14, not 14 x 10
    (49, (224, 224), (0, (7, 7))),
    (8400, (640, 640), None),  # a YOLOv8 head: three grids, not one
    (25200, (640, 640), None),
    (3, (224, 224), None),
])
def test_token_counts_split_into_prefix_tokens_and_a_patch_grid(count, image, expected):
    assert token_split(count, image) == expected


def test_feature_maps_attention_matrices_and_window_partitions_are_told_apart():
    assert plausible_map((7, 7), (224, 224)) and plausible_map((35, 35), (299, 299))  # unpadded convolutions
    assert plausible_map((5, 7), (160, 224)) and not plausible_map((7, 5), (160, 224))
    assert plausible_map((4, 5), (128, 160)) and not plausible_map((6, 8), (128, 160))  # stride 21: a per-head slice
    assert not plausible_map((197, 197), (224, 224)) and not plausible_map((49, 49), (224, 224))
    assert infer((1, 7, 7, 768), (224, 224), "N", "NCHW") == "NHWC"  # Swin's last stage
    assert infer((1, 768, 7, 7), (224, 224), "N", "NCHW") == "NCHW"
    assert infer((1, 3, 197, 197), (224, 224), "N", "NCHW") == ""  # attention, not a 197-pixel map
    assert infer((1, 197, 192), (224, 224), "N", "") == "tokens:1:14x14"
    assert infer((1, 192, 196), (224, 224), "N", "") == "ctokens:0:14x14"
    assert infer((1, 197, 197), (224, 224), "N", "") == ""
    assert infer((64, 49, 96), (224, 224), "N", "") == ""  # 64 windows of 49 tokens: not one image's tokens
    assert infer((1, 16, 16, 16), (224, 224), 1, "NHWC") == "NHWC"  # both fit: the ops decide
    assert infer((1, 197, 192), None, "N", "") == ""


# -- small transformers -------------------------------------------------------------------------------------------
def _build(kind: str):
    timm = pytest.importorskip("timm")
    from timm.models.deit import VisionTransformerDistilled
    from timm.models.swin_transformer import SwinTransformer
    from timm.models.vision_transformer import VisionTransformer

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    common = {"img_size": (H, W), "num_classes": 5}
    vit = {**common, "patch_size": 16, "embed_dim": 48, "depth": 2, "num_heads": 2}
    nets = {"vit": lambda: VisionTransformer(**vit), "deit": lambda: VisionTransformerDistilled(**vit),
            "registers": lambda: VisionTransformer(**vit, reg_tokens=4),
            "swin": lambda: SwinTransformer(**common, patch_size=4, window_size=4, embed_dim=16, depths=(1, 1),
                                            num_heads=(1, 2))}
    assert timm is not None
    return nets[kind]().eval()


def _export(net, path, exporter: str) -> None:
    torch = pytest.importorskip("torch")
    x = torch.rand(1, 3, H, W)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=17, input_names=["input"],
                              output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        else:
            torch.onnx.export(net, (x,), str(path), dynamo=True, input_names=["input"], output_names=["logits"])


_BUILT: dict = {}


@pytest.fixture(scope="module")
def transformer(tmp_path_factory):
    """(native module, loaded export) per (kind, exporter), built once per module."""
    def get(kind: str, exporter: str):
        if kind not in _BUILT:
            _BUILT[kind] = _build(kind)
        key = (kind, exporter)
        if key not in _BUILT:
            path = tmp_path_factory.mktemp("tokens") / f"{kind}.{exporter}.onnx"
            _export(_BUILT[kind], path, exporter)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _BUILT[key] = onnxviz.load(path, preprocessing="unit")
        return _BUILT[kind], _BUILT[key]
    return get


def _images(n: int = 2) -> np.ndarray:
    """Asymmetric content: a dark left third and a bright bottom band."""
    rng = np.random.default_rng(0)
    x = rng.random((n, 3, H, W)).astype(np.float32)
    x[0, :, :, : W // 3] *= 0.2
    x[-1, :, 2 * H // 3 :] = np.clip(x[-1, :, 2 * H // 3 :] + 0.5, 0, 1)
    return x


EXPORTS = [(k, e) for k in ("vit", "deit", "registers") for e in ("legacy", "dynamo")]


@pytest.mark.parametrize(("kind", "exporter"), EXPORTS)
def test_the_default_layer_of_a_vit_is_its_last_blocks_attention_input(transformer, kind, exporter):
    """Never the final norm (only the class token reaches the head from there: a zero map) nor an attention
    matrix: the first LayerNorm of the last block, pytorch-grad-cam's `blocks[-1].norm1`, also `block:-1`."""
    _, model = transformer(kind, exporter)
    layer = model.default_layer
    assert layer.op_type == "LayerNormalization" and layer.layout == f"tokens:{PREFIX[kind]}:6x8"
    assert model.layer("block:-1") == layer and model.layer("block:1") == layer
    assert model.layer("block:0") != layer and model.layer("block:0").layout == layer.layout
    assert model.layer("token_layer:-1").layout == layer.layout
    assert all(not (lay.op_type == "Softmax" and lay.layout) for lay in model.layers)
    with pytest.raises(LayerError, match="out of range: the graph has 2 transformer blocks"):
        model.layer("block:2")


def _reference_cams(net, x, layer_module, reshape, target: int) -> dict:
    import pytorch_grad_cam as grad_cam
    from pytorch_grad_cam import base_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch = pytest.importorskip("torch")
    out = {}
    original = base_cam.scale_cam_image
    base_cam.scale_cam_image = lambda cam, target_size=None: np.float32(cam)  # the raw map: no resize
    try:
        for method, reference in CAMS.items():
            with getattr(grad_cam, reference)(net, [layer_module], reshape_transform=reshape) as cam:
                out[method] = cam(torch.from_numpy(x), [ClassifierOutputTarget(target)] * len(x))
    finally:
        base_cam.scale_cam_image = original
    return out


@pytest.mark.parametrize(("kind", "exporter"), EXPORTS)
def test_the_cam_family_on_tokens_equals_pytorch_grad_cam_with_a_reshape_transform(transformer, kind, exporter):
    pytest.importorskip("pytorch_grad_cam")
    net, model = transformer(kind, exporter)
    x = _images()
    prefix = PREFIX[kind]

    def reshape(t):  # what the pytorch-grad-cam tutorial asks its users to write
        return t[:, prefix:].reshape(t.size(0), *GRID, t.size(2)).permute(0, 3, 1, 2)

    theirs = _reference_cams(net, x, net.blocks[-1].norm1, reshape, target=2)
    for method in CAMS:
        ours = onnxviz.explain(model, x, method, target=2, progress=False).raw
        assert ours.shape == (2, *GRID)
        scale = np.abs(theirs[method]).max()  # over the batch: a map may be all zero after the ReLU
        assert scale > 0, method
        np.testing.assert_allclose(ours / scale, theirs[method] / scale, atol=SAME, err_msg=method)
        flipped = theirs[method][:, ::-1]  # a fold with its rows reversed must not pass
        assert np.abs(ours - flipped).max() / scale > 0.05, method


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_swin_is_read_channels_last_and_matches_pytorch_grad_cam(transformer, exporter):
    pytest.importorskip("pytorch_grad_cam")
    net, model = transformer("swin", exporter)
    layer = model.default_layer
    assert layer.op_type == "LayerNormalization" and layer.layout == "NHWC" and layer.spatial == (12, 16)
    x = _images()
    theirs = _reference_cams(net, x, net.norm, lambda t: t.permute(0, 3, 1, 2), target=1)
    for method in ("gradcam", "hirescam", "layercam"):
        ours = onnxviz.explain(model, x, method, target=1, progress=False).raw
        scale = np.abs(theirs[method]).max()
        assert scale > 0, method
        np.testing.assert_allclose(ours / scale, theirs[method] / scale, atol=SAME, err_msg=method)


def test_saliency_on_a_vit_equals_captum_on_the_native_module(transformer):
    captum_attr = pytest.importorskip("captum.attr")
    torch = pytest.importorskip("torch")
    net, model = transformer("deit", "dynamo")
    x = _images()
    ours = onnxviz.explain(model, x, "saliency", target=[1, 3], progress=False).attributions
    theirs = captum_attr.Saliency(net).attribute(torch.from_numpy(x), target=torch.tensor([1, 3]), abs=True)
    theirs = theirs.detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4 * np.abs(theirs).max())


def test_ablation_cam_on_tokens_zeroes_patch_channels_and_keeps_the_class_token(transformer):
    """Against a direct computation on the native module: channel k of the patch tokens (not the prefix) zeroed at
    the layer, the relative drop of the score is the channel's weight."""
    torch = pytest.importorskip("torch")
    net, model = transformer("vit", "legacy")
    x = _images(1)
    ours = onnxviz.explain(model, x, "ablationcam", target=4, progress=False).raw[0]
    captured = {}

    def keep(module, args, out):
        captured["acts"] = out.detach().clone()

    with torch.no_grad():
        handle = net.blocks[-1].norm1.register_forward_hook(keep)
        base = float(net(torch.from_numpy(x))[0, 4])
        handle.remove()
        acts = captured["acts"]
        channels = acts.shape[2]
        weights = np.empty(channels)
        for k in range(channels):
            def ablate(module, args, out, k=k):
                out = out.clone()
                out[:, 1:, k] = 0
                return out
            handle = net.blocks[-1].norm1.register_forward_hook(ablate)
            weights[k] = (base - float(net(torch.from_numpy(x))[0, 4])) / base
            handle.remove()
    grid = acts[0, 1:].reshape(*GRID, channels).permute(2, 0, 1).numpy()
    expected = np.maximum(np.einsum("c,chw->hw", weights, grid), 0)
    np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


# -- naming a layer's layout, and the errors -----------------------------------------------------------------------
def test_a_layers_layout_can_be_named_and_an_impossible_one_is_refused(transformer):
    _, model = transformer("vit", "dynamo")
    layer = model.default_layer
    assert model.layer(f"{layer.name}@tokens:1").layout == "tokens:1:6x8"
    assert model.layer(f"{layer.name}@tokens").layout == "tokens:1:6x8"  # prefix found as for auto
    assert model.layer(f"{layer.name}@tokens:1:6x8") == layer
    with pytest.raises(LayerError, match=r"49 - 3 prefix tokens make no patch grid of a 96x128 image \(shape \[1, 49"):
        model.layer(f"{layer.name}@tokens:3")
    with pytest.raises(LayerError, match=r"1 \+ 7x7 tokens do not match the 49"):
        model.layer(f"{layer.name}@tokens:1:7x7")
    with pytest.raises(LayerError, match=r"layout nhwc needs a 4-D tensor; this layer has shape \[1, 49, 48\]"):
        model.layer(f"{layer.name}@nhwc")
    with pytest.raises(LayerError, match="unknown layer layout 'rows'; choose NCHW, NHWC, tokens:P"):
        model.layer(f"{layer.name}@rows")
    x = _images(1)
    forced = onnxviz.explain(model, x, "gradcam", target=0, layer=f"{layer.name}@tokens:1", progress=False)
    np.testing.assert_array_equal(forced.raw, onnxviz.explain(model, x, "gradcam", target=0, progress=False).raw)


def test_an_attention_matrix_is_refused_before_any_gradient_with_how_to_fix_it(transformer, monkeypatch):
    _, model = transformer("vit", "legacy")
    attention = next(lay for lay in model.layers if lay.op_type == "Softmax")
    from onnxviz.context import Context

    monkeypatch.setattr(Context, "grad", lambda *a, **k: pytest.fail("the gradient ran before the layer check"))
    with pytest.raises(LayerError, match=rf"has shape \[.*\], which is no feature map.*{attention.name}@nchw"):
        onnxviz.explain(model, _images(1), "gradcam", layer=attention.name, progress=False)


def test_the_cli_lists_layouts_and_explains_a_vit(transformer, tmp_path):
    _, model = transformer("registers", "legacy")
    path = model.source
    listing = CliRunner().invoke(cli, ["layers", str(path), "--spatial"])
    assert listing.exit_code == 0, listing.output
    assert "tokens:5:6x8" in listing.output and "layout" in listing.output.splitlines()[0]
    starred = next(line for line in listing.output.splitlines() if line.startswith("*"))
    assert model.default_layer.name in starred
    image = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray((_images(1)[0].transpose(1, 2, 0) * 255).astype(np.uint8)).save(image)
    attention = next(lay.name for lay in model.layers if lay.op_type == "Softmax")
    bad = CliRunner().invoke(cli, ["explain", str(path), str(image), "-m", "gradcam", "--layer", attention,
                                   "--out", str(tmp_path / "bad")])
    assert bad.exit_code != 0 and "Traceback" not in bad.output and "no feature map" in bad.output
    good = CliRunner().invoke(cli, ["explain", str(path), str(image), "-m", "gradcam", "--preprocess", "unit",
                                    "--out", str(tmp_path / "good")])
    assert good.exit_code == 0, good.output


def test_feature_maps_of_a_token_layer_are_its_patch_grid(transformer):
    from onnxviz.inspect.features import feature_maps

    _, model = transformer("deit", "legacy")
    x = _images(1)
    shown = feature_maps(model, x, top=4)
    assert shown["maps"].shape == (4, *GRID)
    (acts,) = model.ort.run(x, (model.default_layer.name,))
    k = int(shown["channels"][0])
    np.testing.assert_allclose(shown["maps"][0], acts[0, 2:, k].reshape(GRID), rtol=1e-6)


# -- a graph that leaves the image size open ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def open_size_vit(tmp_path_factory):
    """A timm ViT that takes any multiple of 16 (`dynamic_img_size`: its position embedding is resampled with an
    antialiased bicubic Resize), exported by dynamo with symbolic H and W, and by the legacy exporter, whose trace
    fixes the resampled embedding at 6 x 8 while the input still declares H and W open."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("timm")
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    net = VisionTransformer(img_size=(H, W), num_classes=5, patch_size=16, embed_dim=48, depth=2, num_heads=2,
                            dynamic_img_size=True).eval()
    folder = tmp_path_factory.mktemp("open_size")
    x = torch.rand(1, 3, H, W)
    rows, cols = torch.export.Dim("rows", min=2, max=32), torch.export.Dim("cols", min=2, max=32)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(folder / "dynamo.onnx"), dynamo=True, input_names=["input"],
                          dynamic_shapes={"x": {2: 16 * rows, 3: 16 * cols}})
        torch.onnx.export(net, (x,), str(folder / "legacy.onnx"), dynamo=False, opset_version=17,
                          input_names=["input"], dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}})
    return net, folder


def test_a_vit_with_an_open_image_size_gets_token_layers_at_the_size_images_are_read_at(open_size_vit):
    """Shape inference leaves every token count symbolic: without the size, an attention tensor (1, T, 3, 64) was
    the default CAM layer, read as NCHW. The layers are read at the size images are read at (224 guessed, or
    `size=`), and the CAM equals pytorch-grad-cam's on the native module at that size."""
    pytest.importorskip("pytorch_grad_cam")
    net, folder = open_size_vit
    guessed = onnxviz.load(folder / "dynamo.onnx", preprocessing="unit")
    assert guessed.input.spatial == ("16*rows", "16*cols") and guessed.input_size == (224, 224)
    layer = guessed.default_layer
    assert (layer.op_type, layer.layout) == ("LayerNormalization", "tokens:1:14x14")
    assert all(not lay.layout or lay.layout.startswith(("tokens", "NCHW", "NHWC")) for lay in guessed.layers)
    assert all(not (lay.op_type == "Softmax" and lay.layout) for lay in guessed.layers)
    model = onnxviz.load(folder / "dynamo.onnx", preprocessing="unit", size=(H, W))
    assert model.default_layer.layout == "tokens:1:6x8" and model.layer("block:-1") == model.default_layer
    x = _images()

    def reshape(t):
        return t[:, 1:].reshape(t.size(0), *GRID, t.size(2)).permute(0, 3, 1, 2)

    theirs = _reference_cams(net, x, net.blocks[-1].norm1, reshape, target=3)["gradcam"]
    ours = onnxviz.explain(model, x, "gradcam", target=3, progress=False)
    scale = np.abs(theirs).max()
    assert scale > 0 and ours.attributions.shape == (2, H, W)
    np.testing.assert_allclose(ours.raw / scale, theirs / scale, atol=SAME)
    with pytest.raises(LayerError, match=r"read at the 96x128 input size; this batch is 64x80: load the model at that "
                                         r"size \(Python: load\(..., size=\(64, 80\)\); command line: --size 64x80"):
        onnxviz.explain(model, np.zeros((1, 3, 64, 80), np.float32), "gradcam", progress=False)
    other = onnxviz.explain(model, np.zeros((1, 3, 64, 80), np.float32), "saliency", progress=False)
    assert other.attributions.shape == (1, 3, 64, 80)  # pixel methods take any size the graph takes


def test_saliency_through_the_antialiased_position_embedding_equals_captum(open_size_vit):
    """At 224 x 224 the 6 x 8 position embedding is resampled to 14 x 14 inside the graph: its converted
    antialiased Resize carries the gradient as timm's own interpolation does."""
    captum_attr = pytest.importorskip("captum.attr")
    torch = pytest.importorskip("torch")
    net, folder = open_size_vit
    model = onnxviz.load(folder / "dynamo.onnx", preprocessing="unit", size=(224, 160))
    x = np.random.default_rng(3).random((1, 3, 224, 160)).astype(np.float32)
    ours = onnxviz.explain(model, x, "saliency", target=2, abs=False, progress=False).attributions
    theirs = captum_attr.Saliency(net).attribute(torch.from_numpy(x), target=2, abs=False).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4 * np.abs(theirs).max())


def test_a_graph_that_runs_at_one_size_only_says_to_give_it(open_size_vit, tmp_path):
    """The legacy trace declares H and W open but only runs at 96 x 128: the 224 guess fails with how to fix it,
    and --size makes the command line work."""
    _, folder = open_size_vit
    with pytest.raises(onnxviz.ModelError, match=r"leaves its input size open and was tried at 224x224 \(a guess\).*"
                                                 r"--size HxW \(Python: load\(..., size="):
        onnxviz.load(folder / "legacy.onnx", preprocessing="unit")
    listing = CliRunner().invoke(cli, ["layers", str(folder / "legacy.onnx"), "--spatial", "--size", f"{H}x{W}"])
    assert listing.exit_code == 0, listing.output
    starred = next(line for line in listing.output.splitlines() if line.startswith("*"))
    assert "LayerNormalization" in starred and "tokens:1:6x8" in starred
    refused = CliRunner().invoke(cli, ["layers", str(folder / "legacy.onnx")])
    assert refused.exit_code != 0 and "Traceback" not in refused.output and "--size HxW" in refused.output
