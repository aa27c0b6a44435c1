"""Recipro-CAM (Byun & Lee 2022) equals its definition computed on the native module: the layer's activations kept
at one position (or a 3 x 3 Gaussian around it) and the head run on the copies, the target's softmax probability
per copy. On a Flatten -> Linear head (every position reaches the head through its own weights), a non-square
40 x 56 input, NCHW and NHWC exports, and a ViT token layer whose class token is kept."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")
from models.exports import FlattenHead, Nhwc  # noqa: E402

H, W = 40, 56
SAME = 1e-3  # of the map's span (max - min): float32 probabilities that vary by ~1e-2 across positions


def _export(net, path, shape) -> None:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(*shape),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


@pytest.fixture(scope="module", params=["NCHW", "NHWC"])
def setup(request, tmp_path_factory):
    net = FlattenHead(H, W, seed=2, head_scale=200).eval()  # confident: probabilities differ by position
    nhwc = request.param == "NHWC"
    path = tmp_path_factory.mktemp("reciprocam") / f"flatten_{request.param}.onnx"
    _export(Nhwc(net).eval() if nhwc else net, path, (1, H, W, 3) if nhwc else (1, 3, H, W))
    model = onnxviz.load(path, preprocessing="unit")
    rng = np.random.default_rng(0)
    images = rng.random((2, H, W, 3)).astype(np.float32)
    images[0, :, : W // 3] *= 0.2
    images[1, 2 * H // 3 :] = 1.0
    x = onnxviz.load_image(list(images), model)
    layer = next(layer.name for layer in model.layers if layer.op_type == "Relu" and layer.spatial == (H // 2, W // 2))
    return net, model, x, np.ascontiguousarray(images.transpose(0, 3, 1, 2)), layer


def _masks(h: int, w: int, kernel: str) -> torch.Tensor:
    """One-hot positions, row-major; the Gaussian ones by convolving them with the paper's 3 x 3 kernel."""
    points = torch.eye(h * w).reshape(h * w, 1, h, w)
    if kernel == "point":
        return points[:, 0]
    gauss = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]).reshape(1, 1, 3, 3) / 16
    return torch.nn.functional.conv2d(points, gauss, padding=1)[:, 0]


def _reference(net, x_nchw: np.ndarray, target: int, kernel: str, softmax: bool = True) -> np.ndarray:
    with torch.no_grad():
        feats = net.features(torch.from_numpy(x_nchw))
        n, _, h, w = feats.shape
        masks = _masks(h, w, kernel)
        maps = []
        for i in range(n):
            logits = net.head((feats[i : i + 1] * masks[:, None]).flatten(1))
            scores = logits.softmax(dim=1)[:, target] if softmax else logits[:, target].clamp(min=0)
            maps.append(scores.reshape(h, w))
    return torch.stack(maps).numpy()


@pytest.mark.parametrize("kernel", ["point", "gaussian"])
def test_reciprocam_equals_its_definition_on_the_native_module(setup, kernel):
    net, model, x, x_nchw, layer = setup
    for target in (1, 4):
        ours = onnxviz.explain(model, x, "reciprocam", layer=layer, target=target, kernel=kernel, progress=False).raw
        theirs = _reference(net, x_nchw, target, kernel)
        assert ours.shape == (2, H // 2, W // 2)
        span = np.ptp(theirs)
        np.testing.assert_allclose(ours, theirs, atol=SAME * span)
        other = _reference(net, x_nchw, target, "gaussian" if kernel == "point" else "point")
        assert np.abs(ours - other).max() > 0.05 * span  # the kernel matters
        assert np.abs(ours - theirs[:, ::-1]).max() > 0.05 * span  # and so do the rows


def test_reciprocam_can_keep_the_targets_own_score(setup):
    net, model, x, x_nchw, layer = setup
    ours = onnxviz.explain(model, x, "reciprocam", layer=layer, target=2, score="target", progress=False).raw
    theirs = _reference(net, x_nchw, 2, "point", softmax=False)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.ptp(theirs))
    probabilities = _reference(net, x_nchw, 2, "point")
    assert np.abs(ours - probabilities).max() > 0.05 * np.ptp(probabilities)


def test_reciprocam_on_vit_tokens_keeps_the_class_token(tiny_vit):
    """At a token layer (the last block's norm1): the patch tokens are masked, the class token stays as it was."""
    timm = pytest.importorskip("timm")
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)  # the same weights as the tiny_vit fixture
    net = VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2, num_classes=300).eval()
    assert timm is not None
    model = onnxviz.load(tiny_vit, preprocessing="unit")
    x = np.random.default_rng(1).random((1, 3, 32, 32)).astype(np.float32)
    ours = onnxviz.explain(model, x, "reciprocam", target=7, progress=False).raw[0]
    masks = _masks(4, 4, "point").reshape(16, 16)

    def mosaic(_module, _inputs, output):
        copies = output.repeat(16, 1, 1)
        copies[:, 1:] = copies[:, 1:] * masks[:, :, None]
        return copies

    hook = net.blocks[-1].norm1.register_forward_hook(mosaic)
    try:
        with torch.no_grad():
            theirs = net(torch.from_numpy(x)).softmax(dim=1)[:, 7].reshape(4, 4).numpy()
    finally:
        hook.remove()
    np.testing.assert_allclose(ours, theirs, atol=SAME * np.ptp(theirs))
    assert np.abs(ours - theirs.T.reshape(4, 4)).max() > 0.05 * np.ptp(theirs)


def test_reciprocam_refuses_a_target_without_classes(setup):
    _, model, x, _, layer = setup
    with pytest.raises(onnxviz.OptionError, match="score"):
        onnxviz.explain(model, x, "reciprocam", layer=layer, score="logit", progress=False)


# -- ViT-ReciproCAM -------------------------------------------------------------------------------------------------
VH, VW = 96, 128  # a 6 x 8 patch grid


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    pytest.importorskip("timm")
    from timm.models.deit import VisionTransformerDistilled

    torch.manual_seed(4)
    net = VisionTransformerDistilled(img_size=(VH, VW), patch_size=16, embed_dim=32, depth=2, num_heads=2,
                                     num_classes=5).eval()
    with torch.no_grad():
        net.head.weight.mul_(15)
        net.head_dist.weight.mul_(15)
    path = tmp_path_factory.mktemp("vit_reciprocam") / "deit.onnx"
    _export(net, path, (1, 3, VH, VW))
    x = np.random.default_rng(5).random((2, 3, VH, VW)).astype(np.float32)
    x[0, :, :, : VW // 3] *= 0.1
    return net, onnxviz.load(path, preprocessing="unit"), x


def _vit_reference(net, x: np.ndarray, targets, kernel: str, keep_prefix: bool = True, k: int = -1) -> np.ndarray:
    """Block k rebuilt by hand on masked copies of its input (residual path) and of norm1(input), then the rest."""
    block, prefix = net.blocks[k], 2
    masks = _masks(6, 8, kernel).reshape(48, 48, 1)
    seen = {}
    hook = block.register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0]))
    maps = []
    try:
        with torch.no_grad():
            for i in range(len(x)):
                seen.clear()
                net(torch.from_numpy(x[i : i + 1]))
                tokens = seen["x"]

                def mosaic(t):
                    copies = t.repeat(48, 1, 1)
                    copies[:, prefix:] = copies[:, prefix:] * masks
                    if not keep_prefix:
                        copies[:, :prefix] = 0
                    return copies

                out = mosaic(tokens) + block.ls1(block.attn(mosaic(block.norm1(tokens))))
                out = out + block.ls2(block.mlp(block.norm2(out)))
                for later in net.blocks[k % len(net.blocks) + 1 :]:
                    out = later(out)
                logits = net.forward_head(net.norm(out))
                maps.append(logits.softmax(dim=1)[:, targets[i]].reshape(6, 8))
    finally:
        hook.remove()
    return torch.stack(maps).numpy()


@pytest.mark.parametrize(("kernel", "block"), [("gaussian", -1), ("point", -1), ("gaussian", 0)])
def test_vit_reciprocam_equals_the_block_rebuilt_by_hand(vit, kernel, block):
    net, model, x = vit
    assert model.default_layer == model.layer("block:-1")
    with torch.no_grad():
        top = net(torch.from_numpy(x)).argmax(dim=1).tolist()  # probabilities far from 0 and 1
    run = {"target": top, "kernel": kernel, "layer": f"block:{block}", "progress": False}
    ours = onnxviz.explain(model, x, "vit_reciprocam", **run).raw
    theirs = _vit_reference(net, x, top, kernel, k=block)
    span = np.ptp(theirs)
    assert ours.shape == (2, 6, 8) and span > 1e-3
    np.testing.assert_allclose(ours, theirs, atol=SAME * span)
    assert np.abs(ours - theirs[:, ::-1]).max() > 0.05 * span
    zeroed = onnxviz.explain(model, x, "vit_reciprocam", class_token=False, **run).raw
    unkept = _vit_reference(net, x, top, kernel, keep_prefix=False, k=block)
    np.testing.assert_allclose(zeroed, unkept, atol=SAME * np.ptp(unkept))
    assert np.abs(zeroed - theirs).max() > 0.05 * span
    if block == 0:  # before a later block the residual's patch tokens matter: masking norm1 alone differs
        one_path = onnxviz.explain(model, x, "reciprocam", **run).raw
        assert np.abs(one_path - theirs).max() > 0.05 * span


def test_vit_reciprocam_needs_a_blocks_layernorm(vit, setup):
    _, model, x = vit
    with pytest.raises(onnxviz.MethodError, match="pass --layer block:-1"):
        onnxviz.explain(model, x, "vit_reciprocam", layer="token_layer:0", progress=False)
    _, cnn, cnn_x, _, layer = setup
    with pytest.raises(onnxviz.MethodError, match="masks a transformer block's input"):
        onnxviz.explain(cnn, cnn_x, "vit_reciprocam", layer=layer, progress=False)
